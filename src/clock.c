#include "clock.h"

#include <stdio.h>
#include <string.h>

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
} base;

/* The kernel already decided whether the TSC is trustworthy: it lists
 * constant_tsc and nonstop_tsc, and uses "tsc" as clocksource only when the
 * TSC is synchronised across CPUs. */
bool oa_clock_tsc_invariant(void)
{
#if OA_HAVE_TSC
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool constant = false, nonstop = false;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		constant = strstr(line, " constant_tsc") != NULL;
		nonstop = strstr(line, " nonstop_tsc") != NULL;
		break;
	}
	fclose(f);
	return constant && nonstop;
#else
	return false;
#endif
}

static uint64_t unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void oa_clock_init(bool force_monotonic)
{
	oa_clock_use_tsc = !force_monotonic && oa_clock_tsc_invariant();
	base.mono0 = oa_mono_ns();
	base.unix0 = unix_ns();
	base.ticks0 = oa_now();
	/* A nominal rate until the first calibration: the exporter calibrates
	 * before converting, so this is only a placeholder for thresholds. */
	base.ns_per_tick = oa_clock_use_tsc ? 1.0 / 2.5 : 1.0;
	base.calibrated_for_good = !oa_clock_use_tsc;
	if (oa_clock_use_tsc) {
		/* 200 us gives thresholds to ~0.1%; conversions recalibrate later. */
		uint64_t t0 = oa_now(), m0 = oa_mono_ns();
		while (oa_mono_ns() - m0 < 200000)
			;
		uint64_t t1 = oa_now(), m1 = oa_mono_ns();
		base.ns_per_tick = (double)(m1 - m0) / (double)(t1 - t0);
	}
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
