/* Timestamps. The hot path reads raw ticks: the TSC where the CPU has an
 * invariant TSC (constant_tsc + nonstop_tsc), else CLOCK_MONOTONIC in ns.
 * The exporter converts ticks to Unix nanoseconds against a baseline taken
 * at start-up; the TSC rate is measured over the time since then, so it
 * gets more precise the longer the process runs and costs nothing at start. */
#ifndef OTLPAUTO_CLOCK_H
#define OTLPAUTO_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define OA_HAVE_TSC 1
#else
#define OA_HAVE_TSC 0
#endif

extern bool oa_clock_use_tsc;

static inline uint64_t oa_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Out of line so the hooks' fast path stays a leaf on TSC machines. */
uint64_t oa_now_fallback(void) __attribute__((noinline, cold));

static inline uint64_t oa_now(void)
{
#if OA_HAVE_TSC
	if (__builtin_expect(oa_clock_use_tsc, 1))
		return __rdtsc();
#endif
	return oa_now_fallback();
}

/* Decides the tick source and takes the baseline; `force_monotonic` is for
 * tests. Safe to call again (it re-takes the baseline). */
void oa_clock_init(bool force_monotonic);
/* Ticks -> Unix ns (exporter side). Call oa_clock_calibrate first per batch. */
uint64_t oa_clock_to_unix_ns(uint64_t ticks);
/* Ticks -> duration in ns. */
uint64_t oa_clock_ticks_to_ns(uint64_t ticks);
/* Duration in ns -> ticks (thresholds are compared in ticks on the hot path). */
uint64_t oa_clock_ns_to_ticks(uint64_t ns);
/* Refreshes the TSC rate from the baseline to now (exporter side). */
void oa_clock_calibrate(void);
/* True when the CPU advertises an invariant TSC. */
bool oa_clock_tsc_invariant(void);

#endif
