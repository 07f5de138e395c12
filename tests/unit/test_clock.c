/* Clock: ticks are monotonic, convert to Unix time within a small error of
 * CLOCK_REALTIME, durations convert both ways; also with the TSC forced off.
 * The rate known at start (which sets the thresholds) is within 1% of the
 * TSC's, whether it came from CPUID, a 10 us measurement or a parent
 * (OTLPAUTO_TSC_HZ), and a parent's decision is taken as it is. */
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "log.h"

static char warning[256];
static int warnings;

static void capture(const char *line)
{
	snprintf(warning, sizeof warning, "%s", line);
	warnings++;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t absdiff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

static bool within_percent(double value, double reference, double percent)
{
	return value > reference * (1 - percent / 100) && value < reference * (1 + percent / 100);
}

#if OA_HAVE_TSC
/* The TSC's rate over 100 ms: the reference. */
static double reference_tsc_hz(void)
{
	uint64_t t0 = __rdtsc(), m0 = oa_mono_ns();
	usleep(100000);
	uint64_t t1 = __rdtsc(), m1 = oa_mono_ns();
	return (double)(t1 - t0) * 1e9 / (double)(m1 - m0);
}
#endif

static void check_source(bool force_monotonic)
{
	oa_clock_init(force_monotonic, NULL);
	if (force_monotonic)
		CHECK(!oa_clock_use_tsc);
	uint64_t prev = oa_now();
	int backwards = 0;
	for (int i = 0; i < 100000; i++) {
		uint64_t t = oa_now();
		backwards += t < prev;
		prev = t;
	}
	CHECK_EQ_INT(backwards, 0);
	usleep(20000);
	oa_clock_calibrate();
	uint64_t t0 = oa_now();
	uint64_t wall = realtime_ns();
	uint64_t conv = oa_clock_to_unix_ns(t0);
	CHECK(absdiff(conv, wall) < 200000); /* within 0.2 ms */
	/* A 10 ms sleep measures as 10 ms (+ scheduling slack). */
	uint64_t a = oa_now();
	usleep(10000);
	uint64_t d = oa_clock_ticks_to_ns(oa_now() - a);
	CHECK(d >= 9900000 && d < 60000000);
	uint64_t ticks = oa_clock_ns_to_ticks(1000000);
	CHECK(absdiff(oa_clock_ticks_to_ns(ticks), 1000000) < 1000);
}

#if OA_HAVE_TSC
/* What a threshold of 100 us becomes right after start-up, against the
 * reference rate. */
static void check_start_rate(const char *inherited, double reference_hz)
{
	oa_clock_init(false, inherited);
	CHECK(oa_clock_use_tsc);
	double ticks = (double)oa_clock_ns_to_ticks(100000);
	CHECK(within_percent(ticks, reference_hz / 1e4, 1));
}

static void test_start_rates(void)
{
	if (!oa_clock_tsc_invariant())
		return;
	double reference = reference_tsc_hz();
	/* Every source the CPU offers, and the measurement 50 times (the
	 * machine is shared: a preemption must not spoil one). */
	uint64_t cpuid = oa_clock_cpuid_tsc_hz();
	if (cpuid)
		CHECK(within_percent((double)cpuid, reference, 1));
	int off = 0;
	for (int i = 0; i < 50; i++)
		off += !within_percent((double)oa_clock_measured_tsc_hz(), reference, 1);
	CHECK_EQ_INT(off, 0);
	/* The cheap path as start-up takes it, and a parent's rate. */
	check_start_rate(NULL, reference);
	char inherited[32];
	snprintf(inherited, sizeof inherited, "%.0f", reference);
	check_start_rate(inherited, reference);
	CHECK_EQ_INT(warnings, 0);
}
#endif

/* A parent's decision is taken as it is, and passed on unchanged. */
static void test_inherited(void)
{
	oa_clock_init(false, "0");
	CHECK(!oa_clock_use_tsc);
	CHECK_EQ_STR(oa_clock_setting(), "OTLPAUTO_TSC_HZ=0");
	CHECK_EQ_INT(oa_clock_ns_to_ticks(123456), 123456);
#if OA_HAVE_TSC
	oa_clock_init(false, "2445406000");
	CHECK(oa_clock_use_tsc);
	CHECK_EQ_STR(oa_clock_setting(), "OTLPAUTO_TSC_HZ=2445406000");
	CHECK(absdiff(oa_clock_ns_to_ticks(1000000000), 2445406000u) <= 1);
	CHECK(absdiff(oa_clock_ns_to_ticks(100000), 244541) <= 1);
	CHECK(absdiff(oa_clock_ticks_to_ns(2445406), 1000000) <= 1);
#endif
	CHECK_EQ_INT(warnings, 0);
}

/* A value no parent of ours sets: one warning, and the process decides. */
static void test_inherited_invalid(void)
{
	const char *bad[] = {
	    "abc", "12abc", "-1", " 2400000000", "2.4e9", "999", "99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		warnings = 0;
		oa_clock_init(false, bad[i]);
		CHECK_EQ_INT(warnings, 1);
		char expected[128];
		snprintf(expected, sizeof expected,
			 "otlpauto: OTLPAUTO_TSC_HZ=%s is not a TSC rate in Hz; measuring it",
			 bad[i]);
		CHECK_EQ_STR(warning, expected);
		CHECK(oa_clock_use_tsc == oa_clock_tsc_invariant());
	}
	warnings = 0;
}

int main(void)
{
	oa_log_set_sink(capture);
	if (oa_clock_tsc_invariant())
		check_source(false);
	check_source(true);
	CHECK_EQ_STR(oa_clock_setting(), "OTLPAUTO_TSC_HZ=0");
	test_inherited();
	test_inherited_invalid();
#if OA_HAVE_TSC
	test_start_rates();
#endif
	oa_log_set_sink(NULL);
	CHECK_DONE();
}
