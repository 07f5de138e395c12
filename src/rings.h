/* Every thread's ring as the exporter reads them: the registry threads add
 * their ring to, the scan that counts what they hold, the drain into a
 * batch, and the freeing of rings whose thread is gone. The consumer side
 * is the exporter's work alone (its thread, or one doing its work). */
#ifndef OTLPAUTO_RINGS_H
#define OTLPAUTO_RINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct oa_batch;
struct oa_ring;

/* Producer: adds the thread's ring (lock-free, any thread). */
void oa_rings_register(struct oa_ring *ring);

/* What one scan found. */
struct oa_rings_scan {
	uint64_t queued;   /* records in the rings */
	uint64_t arrivals; /* records committed since the last scan */
	uint64_t slots;	   /* slots committed since the last scan */
	bool pressure;	   /* a ring is past its high-water mark */
};

/* Counts what the rings hold and frees the rings of exited threads once
 * drained. */
void oa_rings_scan(struct oa_rings_scan *scan);
/* Moves up to `limit` records into the batch; with `until_scan`, only
 * records committed before the last scan. Returns how many. */
size_t oa_rings_fill(struct oa_batch *batch, size_t limit, bool until_scan);
/* Releases unread what the last scan saw; returns how many records. */
uint64_t oa_rings_discard_scanned(void);
bool oa_rings_empty(void);
/* Records the rings hold; with `discard`, they are released. Without it,
 * only memory is read (async-signal-safe). */
uint64_t oa_rings_unsent(bool discard);
/* Spans this process committed to its rings so far, and the spans its
 * threads counted in their rings as sampled out, rings freed included. */
void oa_rings_totals(uint64_t *recorded, uint64_t *sampled_out);
/* In a forked child: the parent's rings are not ours (the forking thread
 * registers its own again). */
void oa_rings_atfork_child(void);

#endif
