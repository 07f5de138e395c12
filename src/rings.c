#include "rings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "batch.h"
#include "fdguard.h"
#include "ring.h"
#include "thread.h"

static struct {
	struct oa_ring *head;	  /* pushed by producers, unlinked by the exporter */
	uint64_t records_of_gone; /* spans committed to rings since freed */
	uint64_t sampled_out_of_gone;
} rings;

void oa_rings_register(struct oa_ring *ring)
{
	struct oa_ring *head = __atomic_load_n(&rings.head, __ATOMIC_RELAXED);
	do
		ring->next = head;
	while (!__atomic_compare_exchange_n(&rings.head, &head, ring, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
}

static struct oa_ring *first(void)
{
	return __atomic_load_n(&rings.head, __ATOMIC_ACQUIRE);
}

/* Removes a drained ring of an exited thread and unmaps it. Producers only
 * push at the head, so the exporter unlinks anything but the head freely. */
static void unlink_ring(struct oa_ring *prev, struct oa_ring *ring)
{
	if (prev) {
		prev->next = ring->next;
	} else {
		struct oa_ring *expected = ring;
		if (!__atomic_compare_exchange_n(&rings.head, &expected, ring->next, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			/* New rings were pushed in front: find the predecessor. */
			struct oa_ring *p = expected;
			while (p->next != ring)
				p = p->next;
			p->next = ring->next;
		}
	}
	rings.records_of_gone += __atomic_load_n(&ring->records, __ATOMIC_RELAXED);
	rings.sampled_out_of_gone += __atomic_load_n(&ring->sampled_out, __ATOMIC_RELAXED);
	oa_ring_destroy(ring);
}

/* The ring's thread name: as the thread gave it itself (see
 * oa_thread_renamed), read from /proc after another thread renamed one of
 * ours, kept from its exit afterwards. */
static const char *ring_thread_name(struct oa_ring *r)
{
	if (__atomic_load_n(&r->orphaned, __ATOMIC_ACQUIRE))
		return r->exit_name[0] ? r->exit_name : NULL;
	uint32_t renames = __atomic_load_n(&oa_thread_renames, __ATOMIC_ACQUIRE);
	if (renames == r->renames_seen) {
		oa_ring_get_name(r, &r->name_seq_seen, r->live_name);
	} else {
		r->renames_seen = renames;
		r->name_seq_seen = __atomic_load_n(&r->name_seq, __ATOMIC_ACQUIRE);
		char path[64], buf[sizeof r->live_name];
		snprintf(path, sizeof path, "/proc/self/task/%u/comm", r->tid);
		ssize_t n = oa_fd_read_file(path, buf, sizeof buf - 1);
		if (n > 0) {
			if (buf[n - 1] == '\n')
				n--;
			buf[n] = '\0';
			memcpy(r->live_name, buf, (size_t)n + 1);
		}
	}
	return r->live_name[0] ? r->live_name : NULL;
}

/* Whether the thread of an orphaned ring is gone (it still records while
 * the destructors of thread-specific data after ours run). A main thread
 * left by pthread_exit stays a zombie while the others run. */
static bool thread_gone(uint32_t tid)
{
	pid_t pid = getpid();
	if (syscall(SYS_tgkill, pid, (pid_t)tid, 0) != 0)
		return errno == ESRCH;
	if ((pid_t)tid != pid)
		return false;
	char stat[256];
	ssize_t n = oa_fd_read_file("/proc/self/stat", stat, sizeof stat - 1);
	if (n <= 0)
		return false;
	stat[n] = '\0';
	const char *state = strrchr(stat, ')'); /* the name may hold anything */
	return state && (state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X'));
}

void oa_rings_scan(struct oa_rings_scan *scan)
{
	uint64_t queued = 0, arrivals = 0, slots = 0;
	bool pressure = false;
	struct oa_ring *prev = NULL;
	struct oa_ring *r = first();
	while (r) {
		struct oa_ring *next = r->next;
		/* Spans are counted in records (a record may take several slots). */
		uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		uint64_t records = __atomic_load_n(&r->records, __ATOMIC_RELAXED);
		arrivals += records - r->records_at_scan;
		slots += head - r->head_at_scan;
		__atomic_store_n(&r->head_at_scan, head, __ATOMIC_RELAXED);
		__atomic_store_n(&r->records_at_scan, records, __ATOMIC_RELAXED);
		if (head == r->tail && __atomic_load_n(&r->orphaned, __ATOMIC_ACQUIRE) &&
		    thread_gone(r->tid) && __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == r->tail) {
			unlink_ring(prev, r);
		} else {
			queued += records - r->records_released;
			/* A ring past its high-water mark is drained now, whatever
			 * the batch target: its producer is about to drop or wait. */
			pressure |= head - r->tail >= r->high_water;
			prev = r;
		}
		r = next;
	}
	*scan = (struct oa_rings_scan){queued, arrivals, slots, pressure};
}

/* Oldest data first within each ring, rings in turn. */
size_t oa_rings_fill(struct oa_batch *batch, size_t limit, bool until_scan)
{
	size_t taken = 0;
	bool progress = true;
	for (struct oa_ring *r = first(); r; r = r->next)
		r->name_read = 0;
	while (taken < limit && progress) {
		progress = false;
		for (struct oa_ring *r = first(); r && taken < limit; r = r->next) {
			/* A few records per ring per turn keeps busy threads from
			 * starving the others. */
			for (int k = 0; k < 64 && taken < limit; k++) {
				/* Else rings that refill as fast as they drain would
				 * take every batch of a flush and starve the ring of
				 * the thread that asked for it. */
				if (until_scan && r->tail >= r->head_at_scan)
					break;
				struct oa_record *rec = oa_ring_peek(r);
				if (!rec)
					break;
				if (!r->name_read) {
					r->name = ring_thread_name(r);
					r->name_read = 1;
				}
				oa_batch_add(batch, rec, r->name);
				oa_ring_release(r, rec);
				taken++;
				progress = true;
			}
		}
	}
	return taken;
}

uint64_t oa_rings_discard_scanned(void)
{
	uint64_t n = 0;
	for (struct oa_ring *r = first(); r; r = r->next)
		n += oa_ring_discard(r, r->head_at_scan, r->records_at_scan);
	return n;
}

bool oa_rings_empty(void)
{
	for (struct oa_ring *r = first(); r; r = r->next)
		if (__atomic_load_n(&r->head, __ATOMIC_ACQUIRE) != r->tail)
			return false;
	return true;
}

uint64_t oa_rings_unsent(bool discard)
{
	uint64_t n = 0;
	for (struct oa_ring *r = first(); r; r = r->next) {
		uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		uint64_t records = __atomic_load_n(&r->records, __ATOMIC_RELAXED);
		if (discard)
			n += oa_ring_discard(r, head, records);
		else
			n += records - r->records_released;
	}
	return n;
}

void oa_rings_totals(uint64_t *recorded, uint64_t *sampled_out)
{
	*recorded = rings.records_of_gone;
	*sampled_out = rings.sampled_out_of_gone;
	for (struct oa_ring *r = first(); r; r = r->next) {
		*recorded += __atomic_load_n(&r->records, __ATOMIC_RELAXED);
		*sampled_out += __atomic_load_n(&r->sampled_out, __ATOMIC_RELAXED);
	}
}

void oa_rings_atfork_child(void)
{
	rings.head = NULL;
	rings.records_of_gone = rings.sampled_out_of_gone = 0;
}
