/* The exporter's adaptive batch rule (DESIGN.md, "Batching"): from what each
 * scan of the rings counted, a smoothed arrival rate, the batch target and
 * how long the exporter sleeps. Pure: the caller gives the counts and the
 * time. */
#ifndef OTLPAUTO_SCHEDULER_H
#define OTLPAUTO_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

/* Batches never shrink below this (unless the configured maximum is lower). */
#define OA_SCHEDULE_BATCH_FLOOR 64
/* The adaptive batch holds about this much time's worth of arrivals. */
#define OA_SCHEDULE_WINDOW_NS 50000000ull
/* The shortest sleep, however fast the rings fill. */
#define OA_SCHEDULE_MIN_SLEEP_NS 50000ull

struct oa_schedule {
	/* settings */
	uint32_t max_batch;	  /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE */
	uint64_t delay_ns;	  /* OTEL_BSP_SCHEDULE_DELAY */
	uint32_t ring_high_water; /* a ring's wake-up mark, in slots */
	/* state */
	uint64_t last_scan_ns;
	uint64_t last_export_ns;   /* a batch sent, or a round the delay made due */
	double arrival_rate;	   /* spans per second, smoothed */
	double slot_rate;	   /* ring slots per second, smoothed */
	uint64_t carried_arrivals; /* counted by a scan that did not adapt */
	uint64_t carried_slots;
	uint32_t batch_target;
};

/* No rate yet: the target is the floor, the sleep the schedule delay. */
void oa_schedule_init(struct oa_schedule *s, uint32_t max_batch, uint64_t delay_ns,
		      uint32_t ring_high_water, uint64_t now_ns);
/* A scan at now_ns counted these new records and slots (with what was
 * carried, which is then cleared): rate = 0.7 rate + 0.3 measured, and the
 * batch target clamp(rate x 50 ms, 64, max). */
void oa_schedule_adapt(struct oa_schedule *s, uint64_t arrivals, uint64_t slots, uint64_t now_ns);
/* A scan that does not adapt (after an export): its counts go to the next. */
void oa_schedule_carry(struct oa_schedule *s, uint64_t arrivals, uint64_t slots);
/* Whether the schedule delay has passed since the last export. */
bool oa_schedule_due(const struct oa_schedule *s, uint64_t now_ns);
/* min(schedule delay, target / rate, half a ring's mark / slot rate), at
 * least 50 us when under the delay. */
uint64_t oa_schedule_sleep_ns(const struct oa_schedule *s);

#endif
