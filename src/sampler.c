/* Root sampling decisions (OpenTelemetry SDK samplers). Children follow the
 * parent's decision in the parent-based samplers (thread.c). */
#include <string.h>

#include "clock.h"
#include "runtime.h"

/* TraceIdRatioBased: the last 8 bytes of the trace id, big-endian, shifted
 * to 63 bits, below ratio * 2^63. Deterministic per trace, and a higher
 * ratio keeps a superset of what a lower one keeps. */
bool oa_ratio_keeps(const uint8_t trace_id[16], double ratio)
{
	if (ratio >= 1.0)
		return true;
	if (ratio <= 0.0)
		return false;
	uint64_t x = 0;
	for (int i = 8; i < 16; i++)
		x = x << 8 | trace_id[i];
	x >>= 1;
	return (double)x < ratio * 9223372036854775808.0;
}

bool oa_sample_root(const uint8_t trace_id[16])
{
	switch (oa_rt.cfg.sampler) {
	case OA_SAMPLER_ALWAYS_OFF:
	case OA_SAMPLER_PARENTBASED_ALWAYS_OFF:
		return false;
	case OA_SAMPLER_TRACEIDRATIO:
	case OA_SAMPLER_PARENTBASED_TRACEIDRATIO:
		return oa_ratio_keeps(trace_id, oa_rt.cfg.sampler_arg);
	case OA_SAMPLER_ADAPTIVE:
	case OA_SAMPLER_PARENTBASED_ADAPTIVE:
		return oa_adaptive_keeps(trace_id);
	default:
		return true;
	}
}

/* Adaptive sampling toward a target of sampled roots per second: once a
 * second the ratio becomes target / (smoothed root rate), bounded by
 * ADAPTIVE_FLOOR and 1; decisions stay deterministic on the trace id at that
 * ratio; and a per-second budget of `target` holds a sudden burst near the
 * target before the next adjustment catches up. */
#define ADAPTIVE_FLOOR 1e-6
#define ADAPTIVE_WINDOW_NS 1000000000ull

static struct {
	uint64_t window_start_ns;
	uint64_t roots; /* roots seen in the current window */
	uint64_t kept;  /* roots sampled in the current window */
	double smoothed_rate;
	double ratio;
	bool measured;
} adaptive = {.ratio = 1.0};

double oa_adaptive_ratio(void)
{
	double ratio;
	__atomic_load(&adaptive.ratio, &ratio, __ATOMIC_RELAXED);
	return ratio;
}

static void adaptive_adjust(uint64_t start, uint64_t now)
{
	uint64_t roots = __atomic_exchange_n(&adaptive.roots, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&adaptive.kept, 0, __ATOMIC_RELAXED);
	double rate = (double)roots * 1e9 / (double)(now - start);
	adaptive.smoothed_rate =
		adaptive.measured ? 0.5 * adaptive.smoothed_rate + 0.5 * rate : rate;
	adaptive.measured = true;
	double target = oa_rt.cfg.sampler_arg;
	double ratio = adaptive.smoothed_rate > target ? target / adaptive.smoothed_rate : 1.0;
	if (ratio < ADAPTIVE_FLOOR)
		ratio = ADAPTIVE_FLOOR;
	__atomic_store(&adaptive.ratio, &ratio, __ATOMIC_RELAXED);
}

bool oa_adaptive_keeps(const uint8_t trace_id[16])
{
	uint64_t now = oa_mono_ns();
	uint64_t start = __atomic_load_n(&adaptive.window_start_ns, __ATOMIC_ACQUIRE);
	if (start == 0) {
		__atomic_compare_exchange_n(&adaptive.window_start_ns, &start, now, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	} else if (now - start >= ADAPTIVE_WINDOW_NS &&
		   __atomic_compare_exchange_n(&adaptive.window_start_ns, &start, now, false,
					       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		adaptive_adjust(start, now); /* only the thread that moved the window */
	}
	__atomic_fetch_add(&adaptive.roots, 1, __ATOMIC_RELAXED);
	if (!oa_ratio_keeps(trace_id, oa_adaptive_ratio()))
		return false;
	uint64_t budget = oa_rt.cfg.sampler_arg < 1 ? 1 : (uint64_t)oa_rt.cfg.sampler_arg;
	return __atomic_fetch_add(&adaptive.kept, 1, __ATOMIC_RELAXED) < budget;
}
