#include "sampling.h"

/* The last 8 bytes of the trace id, big-endian, shifted to 63 bits, below
 * ratio * 2^63: the comparison is monotonic in ratio, hence the superset. */
bool oa_ratio_keeps(const uint8_t trace_id[16], double ratio)
{
	if (ratio >= 1.0)
		return true;
	if (!(ratio > 0.0)) /* also NaN */
		return false;
	uint64_t x = 0;
	for (int i = 8; i < 16; i++)
		x = x << 8 | trace_id[i];
	x >>= 1;
	return (double)x < ratio * 9223372036854775808.0;
}

double oa_adaptive_current_ratio(struct oa_adaptive *a)
{
	double ratio;
	__atomic_load(&a->ratio, &ratio, __ATOMIC_RELAXED);
	return ratio;
}

static void adaptive_adjust(struct oa_adaptive *a, double target, uint64_t start, uint64_t now)
{
	uint64_t roots = __atomic_exchange_n(&a->roots, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&a->kept, 0, __ATOMIC_RELAXED);
	double rate = (double)roots * 1e9 / (double)(now - start);
	/* Atomic: the thread that moves the next window may start before this
	 * one is done. */
	double smoothed;
	__atomic_load(&a->smoothed_rate, &smoothed, __ATOMIC_RELAXED);
	/* Down at once, up by halves. The budget caps what a rate estimated
	 * too low lets through; a rate estimated too high (a burst just
	 * ended) would under-sample the quiet that follows for seconds. */
	if (!__atomic_load_n(&a->measured, __ATOMIC_RELAXED) || rate < smoothed)
		smoothed = rate;
	else
		smoothed = 0.5 * smoothed + 0.5 * rate;
	__atomic_store(&a->smoothed_rate, &smoothed, __ATOMIC_RELAXED);
	__atomic_store_n(&a->measured, true, __ATOMIC_RELAXED);
	double ratio = smoothed > target ? target / smoothed : 1.0;
	if (ratio < OA_ADAPTIVE_FLOOR)
		ratio = OA_ADAPTIVE_FLOOR;
	__atomic_store(&a->ratio, &ratio, __ATOMIC_RELAXED);
}

bool oa_adaptive_decide(struct oa_adaptive *a, double target, const uint8_t trace_id[16],
			uint64_t now_ns)
{
	uint64_t start = __atomic_load_n(&a->window_start_ns, __ATOMIC_ACQUIRE);
	if (start == 0) {
		__atomic_compare_exchange_n(&a->window_start_ns, &start, now_ns, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	} else if ((int64_t)(now_ns - start) >= (int64_t)OA_ADAPTIVE_WINDOW_NS &&
		   __atomic_compare_exchange_n(&a->window_start_ns, &start, now_ns, false,
					       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* Only the thread that moved the window. Signed: a thread that
		 * read its clock before another moved the window sees a
		 * negative age, not a huge one. */
		adaptive_adjust(a, target, start, now_ns);
	}
	__atomic_fetch_add(&a->roots, 1, __ATOMIC_RELAXED);
	if (!oa_ratio_keeps(trace_id, oa_adaptive_current_ratio(a)))
		return false;
	uint64_t budget = target < 1 ? 1 : (uint64_t)target;
	return __atomic_fetch_add(&a->kept, 1, __ATOMIC_RELAXED) < budget;
}
