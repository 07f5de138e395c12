#include "clock.h"

#include <inttypes.h>
#include <string.h>
#if OA_HAVE_TSC
#include <cpuid.h>
#endif

#include "log.h"
#include "text.h"

bool oa_clock_use_tsc;

uint64_t oa_now_fallback(void)
{
	return oa_mono_ns();
}

static struct {
	uint64_t ticks0;
	uint64_t mono0;
	uint64_t unix0;
	double ns_per_tick;
	bool calibrated_for_good; /* baseline long enough that the rate is final */
	char setting[sizeof OA_CLOCK_VARIABLE "=" + 20];
} base;

#define MIN_TSC_HZ     1000000ull      /* 1 MHz */
#define MAX_TSC_HZ     100000000000ull /* 100 GHz */
#define MEASURE_NS     10000	       /* see measured_tsc_hz */
#define MEASURE_MAX_NS 200000

/* CPUID.80000007H:EDX[8], invariant TSC: the bit from which the kernel sets
 * both constant_tsc and nonstop_tsc. */
bool oa_clock_tsc_invariant(void)
{
#if OA_HAVE_TSC
	unsigned eax, ebx, ecx, edx;
	return __get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx) && (edx & (1u << 8));
#else
	return false;
#endif
}

uint64_t oa_clock_cpuid_tsc_hz(void)
{
#if OA_HAVE_TSC
	unsigned eax, ebx, ecx, edx;
	/* Leaf 0x15: TSC = crystal (ECX Hz) * EBX / EAX, where all are given. */
	if (__get_cpuid_max(0, NULL) >= 0x15) {
		__cpuid(0x15, eax, ebx, ecx, edx);
		if (eax && ebx && ecx)
			return (uint64_t)ecx * ebx / eax;
	}
	/* A hypervisor's timing leaf (VMware, some KVM setups): EAX in kHz. */
	if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 31))) {
		__cpuid(0x40000000, eax, ebx, ecx, edx);
		if (eax >= 0x40000010) {
			__cpuid(0x40000010, eax, ebx, ecx, edx);
			return (uint64_t)eax * 1000;
		}
	}
#endif
	return 0;
}

#if OA_HAVE_TSC
/* Both clocks at one instant: the TSC read on both sides of the monotonic
 * clock, the narrowest of a few tries (an interrupt widens one), the
 * midpoint kept. *width is the uncertainty in ticks. */
static void read_both(uint64_t *ticks, uint64_t *ns, uint64_t *width)
{
	*width = UINT64_MAX;
	for (int i = 0; i < 4; i++) {
		uint64_t before = __rdtsc(), mono = oa_mono_ns(), after = __rdtsc();
		if (after - before < *width) {
			*width = after - before;
			*ticks = before + (after - before) / 2;
			*ns = mono;
		}
	}
}
#endif

/* The two clocks compared over 10 us: 2000 times against a 200 ms
 * reference on a KVM guest, worst error 0.12% (0.05% mean). The interval
 * is extended while the readings' widths could make the error over 0.5%
 * (each midpoint is off by at most half its width), up to 200 us: a
 * monotonic clock that is a system call reads in ~1 us. */
uint64_t oa_clock_measured_tsc_hz(void)
{
#if OA_HAVE_TSC
	uint64_t t0, m0, w0, t1, m1, w1;
	read_both(&t0, &m0, &w0);
	for (;;) {
		while (oa_mono_ns() - m0 < MEASURE_NS)
			;
		read_both(&t1, &m1, &w1);
		if ((w0 + w1) * 100 <= t1 - t0 || m1 - m0 >= MEASURE_MAX_NS)
			break;
	}
	return m1 > m0 ? (uint64_t)((double)(t1 - t0) * 1e9 / (double)(m1 - m0)) : 0;
#else
	return 0;
#endif
}

/* OTLPAUTO_TSC_HZ as a traced parent set it: 0 (no TSC) or a rate in Hz. */
static bool parse_inherited(const char *value, uint64_t *hz)
{
	if (!value || !*value)
		return false;
	*hz = 0;
	for (size_t i = 0; value[i]; i++) {
		if (value[i] < '0' || value[i] > '9' || i == 12)
			return false;
		*hz = *hz * 10 + (uint64_t)(value[i] - '0');
	}
	return *hz == 0 || (OA_HAVE_TSC && *hz >= MIN_TSC_HZ && *hz <= MAX_TSC_HZ);
}

/* OA_CLOCK_VARIABLE=<hz>, by hand like the few other strings made at start
 * (text.h): printf's code is pages a short program may never touch
 * otherwise. */
static void format_setting(uint64_t hz)
{
	struct oa_text t = oa_text_into(base.setting, sizeof base.setting);
	oa_text_str(&t, OA_CLOCK_VARIABLE "=");
	oa_text_uint(&t, hz);
}

static uint64_t unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void oa_clock_init(bool force_monotonic, const char *inherited)
{
	uint64_t hz = 0;
	const char *source;
	if (inherited && !*inherited) /* empty is unset, as for every variable */
		inherited = NULL;
	if (force_monotonic) {
		source = "forced";
	} else if (parse_inherited(inherited, &hz)) {
		source = "inherited";
	} else {
		if (inherited)
			oa_warn("%s=%s is not a TSC rate in Hz; measuring it", OA_CLOCK_VARIABLE,
				inherited);
		source = "no invariant TSC";
		if (oa_clock_tsc_invariant()) {
			source = "CPUID";
			hz = oa_clock_cpuid_tsc_hz();
			if (!hz) {
				source = "measured";
				hz = oa_clock_measured_tsc_hz();
			}
		}
	}
	oa_clock_use_tsc = hz != 0;
	base.mono0 = oa_mono_ns();
	base.unix0 = unix_ns();
	base.ticks0 = oa_now();
	/* Thresholds use this rate; conversions refine it (oa_clock_calibrate). */
	base.ns_per_tick = oa_clock_use_tsc ? 1e9 / (double)hz : 1.0;
	base.calibrated_for_good = !oa_clock_use_tsc;
	format_setting(hz);
	if (oa_clock_use_tsc)
		oa_debug("clock: TSC at %" PRIu64 " Hz (%s)", hz, source);
	else
		oa_debug("clock: CLOCK_MONOTONIC (%s)", source);
}

const char *oa_clock_setting(void)
{
	return base.setting;
}

void oa_clock_calibrate(void)
{
	if (base.calibrated_for_good)
		return;
	uint64_t ticks = oa_now(), mono = oa_mono_ns();
	uint64_t elapsed = mono - base.mono0;
	if (ticks <= base.ticks0 || elapsed < 1000000)
		return;
	base.ns_per_tick = (double)elapsed / (double)(ticks - base.ticks0);
	/* After 10 s the rate is good to ~1e-8; freezing it keeps timestamps of
	 * spans exported in different batches consistent with each other. */
	if (elapsed >= 10ull * 1000000000u)
		base.calibrated_for_good = true;
}

uint64_t oa_clock_to_unix_ns(uint64_t ticks)
{
	if (!oa_clock_use_tsc)
		return base.unix0 + (ticks - base.mono0);
	int64_t delta = (int64_t)(ticks - base.ticks0);
	return base.unix0 + (uint64_t)((double)delta * base.ns_per_tick);
}

uint64_t oa_clock_ticks_to_ns(uint64_t ticks)
{
	return oa_clock_use_tsc ? (uint64_t)((double)ticks * base.ns_per_tick) : ticks;
}

uint64_t oa_clock_ns_to_ticks(uint64_t ns)
{
	return oa_clock_use_tsc ? (uint64_t)((double)ns / base.ns_per_tick) : ns;
}
