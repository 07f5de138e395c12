/* A single-producer, single-consumer ring of fixed-size slots, one per
 * thread. The owning thread reserves and commits records; the exporter thread
 * peeks and releases them. A record never wraps: when it does not fit before
 * the end, a pad record fills the rest and the record starts at slot 0. */
#ifndef OTLPAUTO_RING_H
#define OTLPAUTO_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "record.h"

struct oa_ring {
	/* producer's cache line */
	_Alignas(64) uint64_t head; /* slots ever committed */
	uint64_t records;	    /* records ever committed (spans: head counts slots) */
	uint64_t sampled_out;	    /* spans the sampler left out (the hooks that count here) */
	uint64_t reserved_head;	    /* head + slots reserved but not committed */
	uint64_t tail_cache;	    /* producer's last view of tail */
	uint32_t high_water;	    /* used slots that make the producer wake the exporter */
	/* consumer's cache line */
	_Alignas(64) uint64_t tail; /* slots ever released */
	uint64_t records_released;
	/* The consumer's last view of head: it reads the producer's line only
	 * when it has caught up with this, not for every record. */
	uint64_t head_seen;
	const char *name; /* thread name for the current batch */
	uint8_t name_read;
	char live_name[16];	/* the exporter's copy of the name */
	uint32_t name_seq_seen; /* the name_seq live_name was copied at */
	uint32_t renames_seen;	/* oa_thread_renames when /proc was last read */
	/* The exporter's last view of head: apart from tail, which changes with
	 * every record released, as the producer reads it for every record. */
	_Alignas(64) uint64_t head_at_scan;
	uint64_t records_at_scan;
	/* shared, read-mostly */
	_Alignas(64) uint32_t capacity; /* a power of two */
	uint32_t mask;
	uint32_t tid;
	uint8_t orphaned; /* its thread has exited: drain, then free */
	/* Set by the producer as it passes the high-water mark, cleared by the
	 * consumer below half of it: both only then, so it may share this
	 * read-mostly line. */
	uint8_t high_water_signalled;
	char exit_name[16]; /* written by the thread as it exits, when /proc loses it */
	/* The name the thread gave itself (oa_ring_set_name): written by the
	 * thread, read by the exporter, so it reads no /proc file for it. */
	uint64_t name_words[2];
	uint32_t name_seq;    /* odd while name_words is written */
	struct oa_ring *next; /* the exporter's registry */
	void *map_base;	      /* the mapping the ring lives in (with its thread's state) */
	size_t map_size;
	_Alignas(64) uint8_t slots[];
};

/* Used slots past which a ring of `capacity` slots wakes the exporter. */
uint32_t oa_ring_high_water(uint32_t capacity);
/* Bytes a ring of `capacity` slots takes (capacity rounded up to a power of
 * two, at least 16). */
size_t oa_ring_bytes(uint32_t capacity);
/* Lays a ring out in zeroed memory of oa_ring_bytes(capacity) bytes at mem,
 * which belongs to the mapping [map_base, map_base + map_size). */
struct oa_ring *oa_ring_place(void *mem, uint32_t capacity, uint32_t tid, void *map_base,
			      size_t map_size);
/* A ring in its own mapping: pages are touched only as they are used. NULL
 * when memory is short. */
struct oa_ring *oa_ring_create(uint32_t capacity, uint32_t tid);
/* Unmaps the ring's whole mapping. */
void oa_ring_destroy(struct oa_ring *ring);
/* Empties the ring (the parent's records, in a forked child). */
void oa_ring_reset(struct oa_ring *ring);
/* Producer: the thread's name is now `name` (up to 15 bytes are kept). */
void oa_ring_set_name(struct oa_ring *ring, const char *name);
/* Consumer: copies the name into out (NUL-terminated) when it changed since
 * *seen, and updates *seen; false when unchanged or being written. */
bool oa_ring_get_name(struct oa_ring *ring, uint32_t *seen, char out[16]);

static inline struct oa_record *oa_ring_slot(struct oa_ring *ring, uint64_t pos)
{
	return (struct oa_record *)(ring->slots + (size_t)(pos & ring->mask) * OA_SLOT_SIZE);
}

static inline uint32_t oa_ring_used(const struct oa_ring *ring)
{
	return (uint32_t)(ring->head - __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE));
}

/* Producer: room for n_slots contiguous slots, or NULL when full. */
static inline struct oa_record *oa_ring_reserve(struct oa_ring *ring, uint32_t n_slots)
{
	uint64_t head = ring->head;
	uint32_t pos = (uint32_t)(head & ring->mask);
	uint32_t pad = pos + n_slots > ring->capacity ? ring->capacity - pos : 0;
	uint64_t need = head + pad + n_slots;
	if (need - ring->tail_cache > ring->capacity) {
		ring->tail_cache = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
		if (need - ring->tail_cache > ring->capacity)
			return 0;
	}
	if (pad) {
		struct oa_record *p = oa_ring_slot(ring, head);
		p->type = OA_REC_PAD;
		p->n_slots = (uint8_t)pad;
		head += pad;
	}
	ring->reserved_head = head;
	struct oa_record *rec = oa_ring_slot(ring, head);
	rec->n_slots = (uint8_t)n_slots;
	return rec;
}

/* Producer: publishes the record returned by the last reserve. Returns true
 * when the ring just passed its high-water mark (wake the exporter). */
static inline bool oa_ring_commit(struct oa_ring *ring, struct oa_record *rec)
{
	rec->type = OA_REC_SPAN;
	uint64_t head = ring->reserved_head + rec->n_slots;
	__atomic_store_n(&ring->records, ring->records + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
	/* The exporter re-arms the flag (oa_ring_release): both sides access it
	 * atomically. */
	if (head - ring->tail_cache >= ring->high_water &&
	    !__atomic_load_n(&ring->high_water_signalled, __ATOMIC_RELAXED)) {
		__atomic_store_n(&ring->high_water_signalled, 1, __ATOMIC_RELAXED);
		return true;
	}
	return false;
}

/* Consumer: the oldest committed record, skipping pads; NULL when empty. */
static inline struct oa_record *oa_ring_peek(struct oa_ring *ring)
{
	for (;;) {
		if (ring->tail == ring->head_seen) {
			ring->head_seen = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
			if (ring->tail == ring->head_seen)
				return 0;
		}
		struct oa_record *rec = oa_ring_slot(ring, ring->tail);
		if (rec->type != OA_REC_PAD)
			return rec;
		__atomic_store_n(&ring->tail, ring->tail + rec->n_slots, __ATOMIC_RELEASE);
	}
}

/* Consumer: re-arms the producer's wake-up once the ring has drained below
 * half the mark (as far as the consumer has seen). */
static inline void ring_rearm(struct oa_ring *ring)
{
	if (ring->head_seen - ring->tail < ring->high_water / 2 &&
	    __atomic_load_n(&ring->high_water_signalled, __ATOMIC_RELAXED))
		__atomic_store_n(&ring->high_water_signalled, 0, __ATOMIC_RELAXED);
}

/* Consumer: frees everything before slot `head`, `records` records in all
 * since the start (a consistent snapshot: head loaded before records),
 * without reading it. Returns how many records that was. */
static inline uint64_t oa_ring_discard(struct oa_ring *ring, uint64_t head, uint64_t records)
{
	if (head <= ring->tail)
		return 0;
	uint64_t n = records - ring->records_released;
	ring->records_released = records;
	if (ring->head_seen < head)
		ring->head_seen = head;
	__atomic_store_n(&ring->tail, head, __ATOMIC_RELEASE);
	ring_rearm(ring);
	return n;
}

/* Consumer: frees the record returned by peek. */
static inline void oa_ring_release(struct oa_ring *ring, const struct oa_record *rec)
{
	ring->records_released++;
	__atomic_store_n(&ring->tail, ring->tail + rec->n_slots, __ATOMIC_RELEASE);
	ring_rearm(ring);
}

#endif
