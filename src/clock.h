/* Timestamps. The hot path reads raw ticks: the TSC where the CPU has an
 * invariant TSC (constant_tsc + nonstop_tsc), else CLOCK_MONOTONIC in ns.
 * The exporter converts ticks to Unix nanoseconds against a baseline taken
 * at start-up; the TSC rate is measured over the time since then, so it
 * gets more precise the longer the process runs. The rate known at start
 * (inherited, from CPUID or measured in ~10 us) sets the thresholds. */
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

/* Set by a traced process for the programs it starts: its decision and
 * TSC rate ("0": CLOCK_MONOTONIC), so that they measure nothing. */
#define OA_CLOCK_VARIABLE "OTLPAUTO_TSC_HZ"

/* Decides the tick source and its rate, and takes the baseline.
 * `inherited` is OA_CLOCK_VARIABLE's value (NULL: unset): taken as it is
 * when valid. Otherwise the TSC is used where CPUID says it is invariant,
 * at the rate CPUID gives, else at one measured in ~10 us. `force_monotonic`
 * is for tests. Safe to call again (it re-takes the baseline). */
void oa_clock_init(bool force_monotonic, const char *inherited);
/* "OTLPAUTO_TSC_HZ=<decision>" for the programs this process starts. */
const char *oa_clock_setting(void);
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
/* The TSC rate in Hz from CPUID (leaf 0x15, or a hypervisor's leaf
 * 0x40000010); 0 where the CPU does not say. */
uint64_t oa_clock_cpuid_tsc_hz(void);
/* The TSC rate in Hz measured against CLOCK_MONOTONIC over ~10 us. */
uint64_t oa_clock_measured_tsc_hz(void);

#endif
