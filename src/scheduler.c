#include "scheduler.h"

void oa_schedule_init(struct oa_schedule *s, uint32_t max_batch, uint64_t delay_ns,
		      uint32_t ring_high_water, uint64_t now_ns)
{
	*s = (struct oa_schedule){
	    .max_batch = max_batch,
	    .delay_ns = delay_ns,
	    .ring_high_water = ring_high_water,
	    .last_scan_ns = now_ns,
	    .last_export_ns = now_ns,
	    .batch_target =
		max_batch < OA_SCHEDULE_BATCH_FLOOR ? max_batch : OA_SCHEDULE_BATCH_FLOOR,
	};
}

/* The batch size follows the arrival rate: about OA_SCHEDULE_WINDOW_NS worth
 * of spans, between the floor and the configured maximum. */
void oa_schedule_adapt(struct oa_schedule *s, uint64_t arrivals, uint64_t slots, uint64_t now_ns)
{
	arrivals += s->carried_arrivals;
	slots += s->carried_slots;
	s->carried_arrivals = s->carried_slots = 0;
	uint64_t dt = now_ns - s->last_scan_ns;
	s->last_scan_ns = now_ns;
	if (dt == 0)
		return;
	double rate = (double)arrivals * 1e9 / (double)dt;
	s->arrival_rate = s->arrival_rate * 0.7 + rate * 0.3;
	s->slot_rate = s->slot_rate * 0.7 + (double)slots * 1e9 / (double)dt * 0.3;
	uint32_t max = s->max_batch;
	uint32_t floor = max < OA_SCHEDULE_BATCH_FLOOR ? max : OA_SCHEDULE_BATCH_FLOOR;
	double want = s->arrival_rate * (double)OA_SCHEDULE_WINDOW_NS / 1e9;
	s->batch_target = want < floor ? floor : want > max ? max : (uint32_t)want;
}

void oa_schedule_carry(struct oa_schedule *s, uint64_t arrivals, uint64_t slots)
{
	s->carried_arrivals = arrivals;
	s->carried_slots = slots;
}

bool oa_schedule_due(const struct oa_schedule *s, uint64_t now_ns)
{
	return now_ns - s->last_export_ns >= s->delay_ns;
}

/* The schedule delay, or less under load, so that the rings are drained
 * about when one batch has accumulated and well before the busiest could
 * pass its high-water mark (the total slot rate stands for the busiest
 * ring's): producers then seldom pay for a wake-up call, and never wait for
 * the exporter to be scheduled. */
uint64_t oa_schedule_sleep_ns(const struct oa_schedule *s)
{
	uint64_t delay = s->delay_ns;
	if (s->arrival_rate > 0) {
		uint64_t fill = (uint64_t)((double)s->batch_target * 1e9 / s->arrival_rate);
		if (s->slot_rate > 0) {
			double half_mark = (double)s->ring_high_water / 2;
			uint64_t ring_fill = (uint64_t)(half_mark * 1e9 / s->slot_rate);
			if (ring_fill < fill)
				fill = ring_fill;
		}
		if (fill < delay)
			delay = fill < OA_SCHEDULE_MIN_SLEEP_NS ? OA_SCHEDULE_MIN_SLEEP_NS : fill;
	}
	return delay;
}
