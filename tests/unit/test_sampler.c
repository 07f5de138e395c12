/* Samplers: the trace-id ratio keeps its share within 4 sigma and a higher
 * ratio keeps a superset; the adaptive sampler, driven by a fake clock,
 * holds the sampled roots per second near its target in a steady flood, in
 * the first second of a burst, recovers after a lull, stays deterministic on
 * the trace id at its current ratio, and keeps its budget under threads.
 * Ids come from a fixed seed: every run sees the same ids. */
#include <math.h>
#include <pthread.h>

#include "check.h"
#include "ids.h"
#include "sampling.h"

#define SECOND 1000000000ull

static struct oa_rng fixed_rng(void)
{
	return (struct oa_rng){{0x1234, 0x5678, 0x9abc, 0xdef0}};
}

static void id_with_low_bits(uint8_t id[16], uint64_t low)
{
	for (int i = 0; i < 8; i++) {
		id[i] = 0xab;
		id[8 + i] = (uint8_t)(low >> (56 - 8 * i));
	}
}

static void test_ratio_edges(void)
{
	uint8_t id[16];
	id_with_low_bits(id, 0);
	CHECK(oa_ratio_keeps(id, 1e-9));
	CHECK(!oa_ratio_keeps(id, 0.0));
	CHECK(!oa_ratio_keeps(id, -1.0));
	CHECK(!oa_ratio_keeps(id, NAN));
	id_with_low_bits(id, UINT64_MAX);
	CHECK(oa_ratio_keeps(id, 1.0));
	CHECK(oa_ratio_keeps(id, 2.0));
	CHECK(!oa_ratio_keeps(id, 0.999999));
	/* 2^63 >> 1 = 2^62: kept exactly when ratio * 2^63 > 2^62. */
	id_with_low_bits(id, 1ull << 63);
	CHECK(!oa_ratio_keeps(id, 0.5));
	CHECK(oa_ratio_keeps(id, 0.5000001));
	/* Only the last 8 bytes count. */
	uint8_t other[16];
	id_with_low_bits(other, 1ull << 63);
	other[0] = 0x01;
	CHECK(oa_ratio_keeps(other, 0.5000001) == oa_ratio_keeps(id, 0.5000001));
}

enum { RATIO_IDS = 100000 };
static const double ratios[] = {0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.9, 1.0};
#define N_RATIOS (sizeof ratios / sizeof ratios[0])

static void test_ratio_share_and_superset(void)
{
	struct oa_rng rng = fixed_rng();
	long kept[N_RATIOS] = {0};
	long not_superset = 0, not_deterministic = 0;
	for (int n = 0; n < RATIO_IDS; n++) {
		uint8_t id[16];
		oa_new_trace_id(&rng, id);
		bool kept_lower = false;
		for (size_t r = 0; r < N_RATIOS; r++) {
			bool k = oa_ratio_keeps(id, ratios[r]);
			kept[r] += k;
			not_superset += kept_lower && !k;
			kept_lower = k;
			not_deterministic += k != oa_ratio_keeps(id, ratios[r]);
		}
	}
	CHECK_EQ_INT(not_superset, 0);
	CHECK_EQ_INT(not_deterministic, 0);
	CHECK_EQ_INT(kept[0], 0);
	CHECK_EQ_INT(kept[N_RATIOS - 1], RATIO_IDS);
	for (size_t r = 1; r + 1 < N_RATIOS; r++) {
		/* Outside 4 sigma: (kept - expected)^2 > 16 * variance. */
		double p = ratios[r], expected = RATIO_IDS * p;
		double variance = RATIO_IDS * p * (1 - p);
		double error = (double)kept[r] - expected;
		if (error * error > 16 * variance) {
			check_failed++;
			fprintf(stderr, "ratio %g: kept %ld of %d, expected %.0f, variance %.0f\n",
				p, kept[r], RATIO_IDS, expected, variance);
		} else {
			check_passed++;
		}
	}
}

/* Drives `rate` roots per second, evenly spaced, from *now for `seconds`;
 * stores the roots kept in each second. */
static void drive(struct oa_adaptive *a, double target, struct oa_rng *rng, uint64_t *now,
		  double rate, int seconds, long kept_per_second[])
{
	uint64_t step = (uint64_t)(SECOND / rate);
	for (int s = 0; s < seconds; s++) {
		long kept = 0;
		uint64_t second_end = *now + SECOND;
		for (; *now < second_end; *now += step) {
			uint8_t id[16];
			oa_new_trace_id(rng, id);
			kept += oa_adaptive_decide(a, target, id, *now);
		}
		*now = second_end;
		kept_per_second[s] = kept;
	}
}

static void check_range(const char *what, int second, long value, long lo, long hi)
{
	if (value < lo || value > hi) {
		check_failed++;
		fprintf(stderr, "%s, second %d: %ld not in [%ld, %ld]\n", what, second, value, lo,
			hi);
	} else {
		check_passed++;
	}
}

static void test_adaptive_flood(void)
{
	/* 10x the target: the first second is held by the budget, then the
	 * ratio settles at 0.1. */
	struct oa_adaptive a = OA_ADAPTIVE_INIT;
	struct oa_rng rng = fixed_rng();
	uint64_t now = SECOND;
	long kept[10];
	drive(&a, 100, &rng, &now, 1000, 10, kept);
	check_range("flood", 0, kept[0], 100, 100);
	for (int s = 1; s < 10; s++)
		check_range("flood", s, kept[s], 75, 100);
	double ratio = oa_adaptive_current_ratio(&a);
	CHECK(ratio > 0.09 && ratio < 0.11);
}

static void test_adaptive_burst_and_lull(void)
{
	struct oa_adaptive a = OA_ADAPTIVE_INIT;
	struct oa_rng rng = fixed_rng();
	uint64_t now = SECOND;
	long kept[6];
	/* Below the target everything is kept. */
	drive(&a, 100, &rng, &now, 50, 3, kept);
	for (int s = 0; s < 3; s++)
		check_range("quiet", s, kept[s], 50, 50);
	CHECK(oa_adaptive_current_ratio(&a) == 1.0);
	/* A burst of 100x the target: held from its first second. */
	drive(&a, 100, &rng, &now, 10000, 6, kept);
	for (int s = 0; s < 6; s++)
		check_range("burst", s, kept[s], 80, 100);
	/* After the burst, a lull under the target: all kept again from the
	 * second second on. */
	drive(&a, 100, &rng, &now, 20, 6, kept);
	check_range("lull", 0, kept[0], 0, 20);
	for (int s = 1; s < 6; s++)
		check_range("lull", s, kept[s], 20, 20);
	CHECK(oa_adaptive_current_ratio(&a) == 1.0);
}

static void test_adaptive_deterministic(void)
{
	/* Two samplers fed the same ids at the same times decide alike, and
	 * every kept root is one the ratio in force keeps. */
	struct oa_adaptive a = OA_ADAPTIVE_INIT, b = OA_ADAPTIVE_INIT;
	struct oa_rng rng = fixed_rng();
	uint64_t now = SECOND;
	long differ = 0, kept_outside_ratio = 0, kept = 0;
	for (int i = 0; i < 5000; i++, now += SECOND / 1000) {
		uint8_t id[16];
		oa_new_trace_id(&rng, id);
		double ratio_before = oa_adaptive_current_ratio(&a);
		bool ka = oa_adaptive_decide(&a, 50, id, now);
		bool kb = oa_adaptive_decide(&b, 50, id, now);
		differ += ka != kb;
		/* The ratio moves only at a window's first decision. */
		double ratio = oa_adaptive_current_ratio(&a);
		if (ka && ratio == ratio_before) {
			kept++;
			kept_outside_ratio += !oa_ratio_keeps(id, ratio);
		}
	}
	CHECK_EQ_INT(differ, 0);
	CHECK_EQ_INT(kept_outside_ratio, 0);
	CHECK(kept > 200);
}

static void test_adaptive_floor(void)
{
	struct oa_adaptive a = OA_ADAPTIVE_INIT;
	struct oa_rng rng = fixed_rng();
	uint64_t now = SECOND;
	long kept[3];
	drive(&a, 0.001, &rng, &now, 10000, 3, kept);
	CHECK(oa_adaptive_current_ratio(&a) == OA_ADAPTIVE_FLOOR);
	for (int s = 0; s < 3; s++)
		check_range("floor: budget of 1", s, kept[s], 0, 1);
}

/* Threads share one sampler and one clock that advances 1 us per decision:
 * the sampled roots never exceed the budget of each window. */
enum { THREADS = 4, DECISIONS_PER_THREAD = 1000000 };
static struct oa_adaptive shared = OA_ADAPTIVE_INIT;
static uint64_t shared_clock = SECOND;
static long shared_kept[THREADS];

static void *decide_many(void *arg)
{
	long index = (long)arg;
	struct oa_rng rng = fixed_rng();
	rng.s[0] += (uint64_t)index;
	for (int i = 0; i < DECISIONS_PER_THREAD; i++) {
		uint8_t id[16];
		oa_new_trace_id(&rng, id);
		uint64_t now = __atomic_fetch_add(&shared_clock, 1000, __ATOMIC_RELAXED);
		shared_kept[index] += oa_adaptive_decide(&shared, 200, id, now);
	}
	return NULL;
}

static void test_adaptive_threads(void)
{
	pthread_t threads[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, decide_many, (void *)i);
	long kept = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		kept += shared_kept[i];
	}
	/* 4 * 10^6 decisions 1 us apart: four windows of 10^6 roots, each
	 * keeping its budget of 200 (less the ratio's binomial shortfall). */
	long windows = (long)((shared_clock - SECOND) / SECOND);
	CHECK_EQ_INT(windows, 4);
	check_range("threads: kept", 0, kept, 600, 200 * windows);
}

int main(void)
{
	test_ratio_edges();
	test_ratio_share_and_superset();
	test_adaptive_flood();
	test_adaptive_burst_and_lull();
	test_adaptive_deterministic();
	test_adaptive_floor();
	test_adaptive_threads();
	CHECK_DONE();
}
