/* The adaptive batch rule: the target is clamp(rate x 50 ms, 64, max) of a
 * rate smoothed 0.7/0.3; the sleep is the schedule delay, or the time a batch
 * takes to arrive, or the time the slots take to fill half a ring's wake-up
 * mark (a quarter of the ring), whichever is least, never under 50 us. */
#include "check.h"
#include "ring.h"
#include "scheduler.h"

#define MS 1000000ull
#define S  1000000000ull

/* A schedule of max_batch, a 5 s delay and rings of 4096 slots, at t=0. */
static struct oa_schedule schedule(uint32_t max_batch)
{
	struct oa_schedule s;
	oa_schedule_init(&s, max_batch, 5000 * MS, oa_ring_high_water(4096), 0);
	return s;
}

static void check_start(void)
{
	struct oa_schedule s = schedule(512);
	CHECK_EQ_INT(s.batch_target, 64);
	CHECK_EQ_INT(oa_schedule_sleep_ns(&s), 5000 * MS);
	CHECK(!oa_schedule_due(&s, 5000 * MS - 1));
	CHECK(oa_schedule_due(&s, 5000 * MS));
	/* a maximum under the floor is the target */
	s = schedule(10);
	CHECK_EQ_INT(s.batch_target, 10);
}

static void check_target(void)
{
	struct oa_schedule s = schedule(512);
	/* 10,000 spans in 1 s: rate 0.3 x 10,000 = 3,000/s, 50 ms of it 150 */
	oa_schedule_adapt(&s, 10000, 10000, 1 * S);
	CHECK_EQ_INT(s.batch_target, 150);
	/* again: 0.7 x 3,000 + 3,000 = 5,100/s, 255 */
	oa_schedule_adapt(&s, 10000, 10000, 2 * S);
	CHECK_EQ_INT(s.batch_target, 255);
	/* nothing for 10 s: the rate decays, the target stops at the floor */
	for (int i = 0; i < 10; i++)
		oa_schedule_adapt(&s, 0, 0, (3 + (uint64_t)i) * S);
	CHECK_EQ_INT(s.batch_target, 64);
	/* a million a second: capped at the maximum */
	for (int i = 0; i < 10; i++)
		oa_schedule_adapt(&s, 1000000, 1000000, (13 + (uint64_t)i) * S);
	CHECK_EQ_INT(s.batch_target, 512);
	/* below the floor, a maximum of 10 is the floor */
	s = schedule(10);
	oa_schedule_adapt(&s, 100, 100, 1 * S);
	CHECK_EQ_INT(s.batch_target, 10);
}

static void check_no_time(void)
{
	struct oa_schedule s = schedule(512);
	oa_schedule_adapt(&s, 10000, 10000, 1 * S);
	oa_schedule_adapt(&s, 1000000, 1000000, 1 * S);
	CHECK_EQ_INT(s.batch_target, 150);
	CHECK(s.arrival_rate == 3000);
}

static void check_carry(void)
{
	/* what a scan after an export counted adds to the next adapt */
	struct oa_schedule s = schedule(512);
	oa_schedule_carry(&s, 6000, 6000);
	oa_schedule_adapt(&s, 4000, 4000, 1 * S);
	CHECK_EQ_INT(s.batch_target, 150);
	/* and only to that one */
	oa_schedule_adapt(&s, 10000, 10000, 2 * S);
	CHECK_EQ_INT(s.batch_target, 255);
}

static void check_sleep(void)
{
	/* the batch's arrival time: 150 spans at 3,000/s is 50 ms; the slots
	 * (one per span) fill half the mark, 512 of 4096, in 170 ms */
	struct oa_schedule s = schedule(512);
	oa_schedule_adapt(&s, 10000, 10000, 1 * S);
	CHECK_EQ_INT(oa_schedule_sleep_ns(&s), 50 * MS);
	/* spans of 8 slots: half the mark fills in 512 / 24,000 s */
	s = schedule(512);
	oa_schedule_adapt(&s, 10000, 80000, 1 * S);
	CHECK_EQ_INT(oa_schedule_sleep_ns(&s), 512 * S / 24000);
	/* a ring of 1024 slots: its mark is 256 (a quarter), half of it 128 */
	CHECK_EQ_INT(oa_ring_high_water(1024), 256);
	oa_schedule_init(&s, 512, 5000 * MS, oa_ring_high_water(1024), 0);
	oa_schedule_adapt(&s, 10000, 80000, 1 * S);
	CHECK_EQ_INT(oa_schedule_sleep_ns(&s), 128 * S / 24000);
	/* the schedule delay when it is shorter */
	oa_schedule_init(&s, 512, 20 * MS, oa_ring_high_water(4096), 0);
	oa_schedule_adapt(&s, 10000, 10000, 1 * S);
	CHECK_EQ_INT(oa_schedule_sleep_ns(&s), 20 * MS);
	/* never under 50 us, however fast the rings fill */
	s = schedule(512);
	oa_schedule_adapt(&s, 1000000000, 1000000000, 1 * S);
	CHECK_EQ_INT(oa_schedule_sleep_ns(&s), 50000);
}

int main(void)
{
	check_start();
	check_target();
	check_no_time();
	check_carry();
	check_sleep();
	CHECK_DONE();
}
