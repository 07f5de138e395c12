/* Ring: capacity rounding, wrap with pad records, full, multi-slot records,
 * high-water signalling, a producer/consumer pair on two threads, and the
 * thread name the producer sets while the consumer reads it. */
#include <pthread.h>
#include <sched.h>

#include "check.h"
#include "ring.h"

static void test_capacity(void)
{
	struct oa_ring *r = oa_ring_create(100, 7);
	CHECK(r != NULL);
	CHECK_EQ_INT(r->capacity, 128);
	CHECK_EQ_INT(r->mask, 127);
	CHECK_EQ_INT(r->tid, 7);
	CHECK_EQ_INT(r->high_water, 32); /* a quarter */
	oa_ring_destroy(r);
	r = oa_ring_create(1, 0);
	CHECK_EQ_INT(r->capacity, 16);
	oa_ring_destroy(r);
}

static void test_fill_and_full(void)
{
	struct oa_ring *r = oa_ring_create(16, 1);
	for (uint64_t i = 0; i < 16; i++) {
		struct oa_record *rec = oa_ring_reserve(r, 1);
		CHECK(rec != NULL);
		rec->span_id = i + 1;
		oa_ring_commit(r, rec);
	}
	CHECK(oa_ring_reserve(r, 1) == NULL); /* full: the caller drops */
	CHECK_EQ_INT(oa_ring_used(r), 16);
	for (uint64_t i = 0; i < 16; i++) {
		struct oa_record *rec = oa_ring_peek(r);
		CHECK(rec != NULL);
		CHECK_EQ_INT(rec->span_id, i + 1);
		CHECK_EQ_INT(rec->type, OA_REC_SPAN);
		oa_ring_release(r, rec);
	}
	CHECK(oa_ring_peek(r) == NULL);
	CHECK_EQ_INT(oa_ring_used(r), 0);
	oa_ring_destroy(r);
}

static void test_wrap_with_pad(void)
{
	struct oa_ring *r = oa_ring_create(16, 1);
	/* Advance to slot 14, then a 4-slot record must start at slot 0. */
	for (int i = 0; i < 14; i++) {
		struct oa_record *rec = oa_ring_reserve(r, 1);
		oa_ring_commit(r, rec);
		oa_ring_release(r, oa_ring_peek(r));
	}
	struct oa_record *big = oa_ring_reserve(r, 4);
	CHECK(big != NULL);
	CHECK((uint8_t *)big == r->slots); /* did not wrap inside the record */
	big->span_id = 99;
	oa_ring_commit(r, big);
	CHECK_EQ_INT(r->head, 14 + 2 + 4); /* two pad slots were consumed */
	struct oa_record *got = oa_ring_peek(r);
	CHECK(got == big);
	CHECK_EQ_INT(got->n_slots, 4);
	CHECK_EQ_INT(got->span_id, 99);
	oa_ring_release(r, got);
	CHECK(oa_ring_peek(r) == NULL);
	/* A record that needs the pad and more room than is free is refused. */
	for (int i = 0; i < 11; i++)
		oa_ring_commit(r, oa_ring_reserve(r, 1));
	/* 5 slots are free (slot 15 and 0..3) but not 5 contiguous ones. */
	CHECK(oa_ring_reserve(r, 5) == NULL);
	CHECK(oa_ring_reserve(r, 4) != NULL);
	oa_ring_destroy(r);
}

static void test_high_water(void)
{
	struct oa_ring *r = oa_ring_create(16, 1);
	int signals = 0;
	for (int i = 0; i < 12; i++)
		signals += oa_ring_commit(r, oa_ring_reserve(r, 1));
	CHECK_EQ_INT(signals, 1); /* once on crossing 4, not on every commit */
	for (int i = 0; i < 12; i++)
		oa_ring_release(r, oa_ring_peek(r));
	CHECK_EQ_INT(r->high_water_signalled, 0); /* re-armed */
	signals = 0;
	for (int i = 0; i < 9; i++)
		signals += oa_ring_commit(r, oa_ring_reserve(r, 1));
	CHECK_EQ_INT(signals, 1);
	oa_ring_destroy(r);
}

/* Discarding (OTEL_TRACES_EXPORTER=none) frees what a snapshot saw, pads
 * included, counts its records, and leaves later records readable. */
static void test_discard(void)
{
	struct oa_ring *r = oa_ring_create(16, 1);
	for (int i = 0; i < 5; i++)
		oa_ring_commit(r, oa_ring_reserve(r, 2)); /* slots 0-9 */
	oa_ring_commit(r, oa_ring_reserve(r, 4));	  /* slots 10-13 */
	CHECK_EQ_INT(oa_ring_discard(r, r->head, r->records), 6);
	CHECK(oa_ring_peek(r) == NULL);
	CHECK_EQ_INT(oa_ring_discard(r, r->head, r->records), 0);
	struct oa_record *rec = oa_ring_reserve(r, 3); /* pads 14-15, takes 0-2 */
	rec->payload_len = 7;
	uint64_t head = r->head, records = r->records; /* the snapshot misses it */
	oa_ring_commit(r, rec);
	CHECK_EQ_INT(oa_ring_discard(r, head, records), 0);
	struct oa_record *got = oa_ring_peek(r);
	CHECK(got != NULL && got->payload_len == 7);
	oa_ring_release(r, got);
	CHECK_EQ_INT(r->records_released, r->records);
	CHECK_EQ_INT(oa_ring_used(r), 0);
	oa_ring_destroy(r);
}

static void test_reset(void)
{
	struct oa_ring *r = oa_ring_create(16, 1);
	for (int i = 0; i < 5; i++)
		oa_ring_commit(r, oa_ring_reserve(r, 1));
	oa_ring_reset(r);
	CHECK(oa_ring_peek(r) == NULL);
	CHECK_EQ_INT(oa_ring_used(r), 0);
	oa_ring_destroy(r);
}

#define SPSC_RECORDS 2000000

static void *producer(void *arg)
{
	struct oa_ring *r = arg;
	for (uint64_t i = 1; i <= SPSC_RECORDS;) {
		uint32_t slots = (uint32_t)(i % 3) + 1;
		struct oa_record *rec = oa_ring_reserve(r, slots);
		if (!rec)
			continue; /* spin: the test wants every record */
		rec->span_id = i;
		rec->start = slots;
		oa_ring_commit(r, rec);
		i++;
	}
	return NULL;
}

static void test_spsc_threads(void)
{
	struct oa_ring *r = oa_ring_create(256, 1);
	pthread_t th;
	pthread_create(&th, NULL, producer, r);
	uint64_t expect = 1, bad = 0;
	while (expect <= SPSC_RECORDS) {
		struct oa_record *rec = oa_ring_peek(r);
		if (!rec)
			continue;
		if (rec->span_id != expect || rec->n_slots != rec->start)
			bad++;
		expect++;
		oa_ring_release(r, rec);
	}
	pthread_join(th, NULL);
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(expect, SPSC_RECORDS + 1);
	CHECK(oa_ring_peek(r) == NULL);
	oa_ring_destroy(r);
}

static void test_name(void)
{
	struct oa_ring *r = oa_ring_create(16, 1);
	uint32_t seen = 0;
	char name[16] = "unchanged";
	CHECK(!oa_ring_get_name(r, &seen, name)); /* never set */
	oa_ring_set_name(r, "worker");
	CHECK(oa_ring_get_name(r, &seen, name));
	CHECK_EQ_STR(name, "worker");
	CHECK(!oa_ring_get_name(r, &seen, name)); /* unchanged since */
	oa_ring_set_name(r, "a-name-longer-than-fifteen");
	CHECK(oa_ring_get_name(r, &seen, name));
	CHECK_EQ_STR(name, "a-name-longer-t"); /* what the kernel keeps, too */
	oa_ring_destroy(r);
}

#define RENAMES 50000

static void *renamer(void *arg)
{
	for (int i = 0; i < RENAMES; i++)
		oa_ring_set_name(arg, i % 2 ? "bbbbbbbbbbbbbbb" : "aaaaaaaaaaaaaaa");
	oa_ring_set_name(arg, "done");
	return NULL;
}

/* The consumer never sees half of one name and half of another. */
static void test_name_threads(void)
{
	struct oa_ring *r = oa_ring_create(16, 1);
	pthread_t th;
	pthread_create(&th, NULL, renamer, r);
	uint32_t seen = 0;
	char name[16] = "";
	uint64_t copies = 0, torn = 0;
	while (strcmp(name, "done") != 0) {
		if (!oa_ring_get_name(r, &seen, name)) {
			sched_yield();
			continue;
		}
		copies++;
		torn += strcmp(name, "done") != 0 && strcmp(name, "aaaaaaaaaaaaaaa") != 0 &&
			strcmp(name, "bbbbbbbbbbbbbbb") != 0;
	}
	pthread_join(th, NULL);
	CHECK(copies > 0);
	CHECK_EQ_INT(torn, 0);
	oa_ring_destroy(r);
}

int main(void)
{
	test_capacity();
	test_fill_and_full();
	test_wrap_with_pad();
	test_high_water();
	test_discard();
	test_reset();
	test_spsc_threads();
	test_name();
	test_name_threads();
	CHECK_DONE();
}
