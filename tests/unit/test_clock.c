/* Clock: ticks are monotonic, convert to Unix time within a small error of
 * CLOCK_REALTIME, durations convert both ways; also with the TSC forced off. */
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"

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

static void check_source(bool force_monotonic)
{
	oa_clock_init(force_monotonic);
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

int main(void)
{
	if (oa_clock_tsc_invariant())
		check_source(false);
	check_source(true);
	CHECK_DONE();
}
