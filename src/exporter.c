/* The exporter thread: the single consumer of every thread's ring. It wakes
 * on its schedule, when a ring passes its high-water mark, or for a flush;
 * drains records into a batch, encodes it into one buffer and hands it to the
 * transport (or the console, a file, nowhere). It is invisible to the hooks,
 * starts lazily with every signal blocked, and is recreated on demand in a
 * forked child. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "batch.h"
#include "buf.h"
#include "clock.h"
#include "encode_console.h"
#include "encode_pb.h"
#include "fdguard.h"
#include "filesink.h"
#include "log.h"
#include "metrics_export.h"
#include "parcel.h"
#include "relay.h"
#include "resource.h"
#include "runtime.h"
#include "symbols.h"
#include "sys.h"
#include "transport.h"
#if OA_FEATURE_JSON
#include "encode_json.h"
#endif

#define MAX_REQUEST_BYTES (64u << 20)
/* Batches never shrink below this (unless the configured maximum is lower). */
#define BATCH_FLOOR 64
/* The adaptive batch holds about this much time's worth of arrivals. */
#define BATCH_WINDOW_NS 50000000ull
/* The shortest sleep, however fast the rings fill. */
#define MIN_POLL_NS 50000ull
/* Parcels from other processes go out when this much waits (or on the
 * schedule, or for a flush); protobuf parcels are sent this many bytes per
 * request at most, concatenated (one message with their ResourceSpans). */
#define PARCEL_SEND_BYTES  (1u << 20)
#define PARCEL_REQUEST_MAX (8u << 20)

enum exporter_state { EXPORTER_STOPPED, EXPORTER_STARTING, EXPORTER_RUNNING };

static struct {
	struct oa_ring *rings; /* registry: pushed by producers, unlinked by the exporter */
	int state;	       /* enum exporter_state */
	uint32_t wake_word;    /* futex: bumped by every wake-up request */
	int sleeping;
	uint32_t flush_requested; /* futex-free counters: requests and completions */
	uint32_t flush_done;
	uint64_t flush_deadline_ns;
	int exit_flush; /* the flush requested is the exit's: what it leaves is counted */
	/* The exit path may take the rings and the batch over from an exporter
	 * that does not finish in time (a request started before the exit):
	 * busy while the exporter touches them (not while it sleeps or waits
	 * on I/O), abandoned once the exit path counts them itself. */
	int busy;
	int abandoned;
	pthread_t thread;
	/* Held by the exporter while it works, not while it sleeps or waits
	 * on the network (the transport releases it around its polls and
	 * backoffs): a fork waits (boundedly) for it, so that the child does
	 * not inherit a lock the exporter held inside a library (libcurl,
	 * libelf, the allocator) and deadlock on it when its own exporter
	 * starts, and never waits for a collector that is down or slow. */
	pthread_mutex_t working;
	bool fork_holds_working; /* the forking thread took it in prepare */
	bool borrowed;		 /* another thread does the exporter's work now */
	/* From pthread_create until the new thread holds the working lock: the
	 * thread's start-up allocates (in an ASan build, in ASan's allocator,
	 * which a fork does not lock), so a fork waits for this too. */
	int thread_starting;
} ex = {.working = PTHREAD_MUTEX_INITIALIZER};

/* A fork waits for the exporter to leave a library (OA_FORK_WAIT_NS). */
#define FORK_POLL_NS 100000L

/* State owned by the exporter thread alone. */
static struct {
	struct oa_batch *batch;
	struct oa_symbols *syms;
	struct oa_transport *transport;
	struct oa_resource resource;
	struct oa_buf out;
	uint64_t last_export_ns;
	uint64_t last_scan_ns;
	double arrival_rate;	   /* spans per second, smoothed */
	double slot_rate;	   /* ring slots per second, smoothed */
	uint64_t carried_arrivals; /* counted by a scan that did not adapt */
	uint64_t carried_slots;
	uint32_t batch_target;
	bool flushing; /* exporting for a flush request (exit, exec, signal) */
	bool set_up;   /* exporter_state_setup ran */
	bool sending_parcels;
	/* During an exec: requests go into the hand-over file for the new
	 * program when there is one, and to the relay as this frame type. */
	int handoff_fd;
	uint64_t handoff_tentative_from; /* offset where the tentative part starts */
	uint8_t relay_frame;		 /* enum oa_relay_frame */
	bool tentative_escaped;		 /* a tentative request went out for good */
	uint64_t records_of_gone_rings;	 /* spans committed to rings since unlinked */
	uint64_t sampled_out_of_gone_rings;
} xs = {.handoff_fd = -1, .relay_frame = OA_RELAY_PARCEL};

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *timeout)
{
	return syscall(SYS_futex, word, op, val, timeout, NULL, 0);
}

void oa_exporter_wake(void)
{
	__atomic_fetch_add(&ex.wake_word, 1, __ATOMIC_RELEASE);
	if (__atomic_load_n(&ex.sleeping, __ATOMIC_ACQUIRE))
		futex(&ex.wake_word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

void oa_exporter_register_ring(struct oa_ring *ring)
{
	struct oa_ring *head = __atomic_load_n(&ex.rings, __ATOMIC_RELAXED);
	do
		ring->next = head;
	while (!__atomic_compare_exchange_n(&ex.rings, &head, ring, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
}

/* Removes a drained ring of an exited thread and unmaps it. Producers only
 * push at the head, so the exporter unlinks anything but the head freely. */
static void unlink_ring(struct oa_ring *prev, struct oa_ring *ring)
{
	if (prev) {
		prev->next = ring->next;
	} else {
		struct oa_ring *expected = ring;
		if (!__atomic_compare_exchange_n(&ex.rings, &expected, ring->next, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			/* New rings were pushed in front: find the predecessor. */
			struct oa_ring *p = expected;
			while (p->next != ring)
				p = p->next;
			p->next = ring->next;
		}
	}
	xs.records_of_gone_rings += __atomic_load_n(&ring->records, __ATOMIC_RELAXED);
	xs.sampled_out_of_gone_rings += __atomic_load_n(&ring->sampled_out, __ATOMIC_RELAXED);
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

static struct oa_transport *create_transport(void)
{
	struct oa_transport *t = oa_transport_create(&oa_rt.cfg);
	if (t)
		oa_transport_release_while_waiting(t, &ex.working);
	return t;
}

static void enter_busy(void);
static void leave_busy(void);

static bool write_all(int fd, const char *p, size_t len)
{
	leave_busy(); /* a full pipe or a slow disk may block */
	bool ok = true;
	while (len) {
		ssize_t w = syscall(SYS_write, fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ok = false;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	enter_busy();
	return ok;
}

/* Encodes one view per the protocol into xs.out; false when too large or
 * out of memory. */
static bool encode(const struct oa_export_batch *view, bool json)
{
	xs.out.len = 0;
#if OA_FEATURE_JSON
	if (json)
		return oa_json_batch_encode(view, &xs.out) && xs.out.len <= MAX_REQUEST_BYTES;
#else
	(void)json;
#endif
	size_t size = oa_pb_batch_size(view);
	if (size > MAX_REQUEST_BYTES || !oa_buf_reserve(&xs.out, size))
		return false;
	xs.out.len = oa_pb_batch_encode(view, (uint8_t *)xs.out.data, size);
	return true;
}

/* Spans of other processes (parcels) are counted apart from our own. */
static struct {
	uint64_t exported, failed;
} parcel_counts;

static void count_exported(size_t n, uint64_t rejected)
{
	if (rejected > n)
		rejected = n;
	if (xs.sending_parcels) {
		parcel_counts.exported += n - rejected;
		parcel_counts.failed += rejected;
		return;
	}
	__atomic_fetch_add(&oa_rt.spans_exported, n - rejected, __ATOMIC_RELAXED);
	__atomic_fetch_add(&oa_rt.dropped[OA_DROP_REJECTED], rejected, __ATOMIC_RELAXED);
}

static void count_failed(size_t n)
{
	if (xs.sending_parcels) {
		parcel_counts.failed += n;
		return;
	}
	__atomic_fetch_add(&oa_rt.dropped[OA_DROP_EXPORT_FAILED], n, __ATOMIC_RELAXED);
}

/* Writes xs.out (count spans, one OTLP JSON line per request for the file)
 * to the file, or posts it to the collector; counts the outcome but for a
 * request the collector found too large, which the caller may split. */
static enum oa_send_result send_encoded(size_t count, uint64_t deadline_ns)
{
	const struct oa_config *cfg = &oa_rt.cfg;
	if (cfg->exporter == OA_EXPORTER_FILE) {
		if (!oa_filesink_write(xs.out.data, xs.out.len)) {
			count_failed(count);
			return OA_SEND_GAVE_UP;
		}
		count_exported(count, 0);
		return OA_SEND_OK;
	}
	if (!xs.transport)
		xs.transport = create_transport();
	if (!xs.transport) {
		count_failed(count);
		return OA_SEND_GAVE_UP;
	}
	oa_transport_set_flushing(xs.transport, xs.flushing);
	uint64_t rejected = 0;
	leave_busy();
	enum oa_send_result r = oa_transport_send(xs.transport, (const uint8_t *)xs.out.data,
						  xs.out.len, deadline_ns, &rejected);
	enter_busy();
	if (r == OA_SEND_OK)
		count_exported(count, rejected);
	else if (r != OA_SEND_TOO_LARGE)
		count_failed(count);
	return r;
}

static uint8_t sink_format(void)
{
	const struct oa_config *cfg = &oa_rt.cfg;
	bool json = cfg->exporter == OA_EXPORTER_FILE || cfg->protocol == OA_PROTOCOL_JSON;
	return json ? OA_PARCEL_JSON : OA_PARCEL_PROTOBUF;
}

/* A hand-over record: u32 length, u32 spans, u8 format, 3 zero bytes, then
 * the request. */
#define HANDOFF_HEADER 12

/* Passes an encoded request on to the next program (during an exec) or to
 * the relay; false when neither takes it and this process sends it. */
static bool pass_on(const void *data, uint32_t len, uint32_t spans, uint8_t format,
		    uint64_t deadline_ns)
{
	if (xs.handoff_fd >= 0) {
		uint8_t header[HANDOFF_HEADER] = {0};
		memcpy(header, &len, 4);
		memcpy(header + 4, &spans, 4);
		header[8] = format;
		if (write_all(xs.handoff_fd, (const char *)header, sizeof header) &&
		    write_all(xs.handoff_fd, data, len))
			count_exported(spans, 0);
		else
			count_failed(spans);
		return true;
	}
	leave_busy(); /* a relay slow to read may make this wait */
	bool sent = oa_relay_connected() &&
		    oa_relay_send(xs.relay_frame, data, len, spans, format, deadline_ns);
	enter_busy();
	if (!sent) {
		xs.tentative_escaped |= xs.relay_frame == OA_RELAY_TENTATIVE;
		return false;
	}
	count_exported(spans, 0);
	if (!xs.sending_parcels)
		__atomic_fetch_add(&oa_rt.spans_relayed, spans, __ATOMIC_RELAXED);
	return true;
}

/* Sends spans [first, first+count) of the batch, halving a request that
 * would exceed 64 MiB. */
static void send_range(size_t first, size_t count, uint64_t deadline_ns)
{
	const struct oa_config *cfg = &oa_rt.cfg;
	uint8_t format = sink_format();
	const struct oa_export_batch *view =
	    oa_batch_view_range(xs.batch, xs.resource.attrs, xs.resource.n_attrs, first, count);
	if (cfg->exporter == OA_EXPORTER_CONSOLE) {
		xs.out.len = 0;
		if (oa_console_batch_encode(view, &xs.out) && write_all(2, xs.out.data, xs.out.len))
			count_exported(count, 0);
		else
			count_failed(count);
		return;
	}
	bool encoded = encode(view, format == OA_PARCEL_JSON);
	if (encoded &&
	    pass_on(xs.out.data, (uint32_t)xs.out.len, (uint32_t)count, format, deadline_ns))
		return;
	if (encoded && cfg->exporter == OA_EXPORTER_FILE)
		encoded = oa_buf_append(&xs.out, "\n", 1);
	if (encoded && send_encoded(count, deadline_ns) != OA_SEND_TOO_LARGE)
		return;
	if (count > 1) {
		send_range(first, count / 2, deadline_ns);
		send_range(first + count / 2, count - count / 2, deadline_ns);
	} else {
		count_failed(count);
	}
}

static void export_batch(uint64_t deadline_ns)
{
	size_t n = oa_batch_count(xs.batch);
	if (n)
		send_range(0, n, deadline_ns);
	oa_batch_reset(xs.batch);
	xs.last_export_ns = oa_mono_ns();
}

/* Sends one request made of parcels [p, stop): relayed on, written to the
 * file, or posted (protobuf parcels concatenated: one message). */
static void send_parcel_run(struct oa_parcel *p, struct oa_parcel *stop, uint64_t deadline_ns)
{
	size_t spans = 0;
	for (struct oa_parcel *q = p; q != stop; q = q->next)
		spans += q->spans;
	if (p->format != sink_format()) {
		count_failed(spans);
		return;
	}
	if (xs.handoff_fd >= 0 || oa_relay_connected()) {
		while (p != stop && pass_on(p->data, p->len, p->spans, p->format, deadline_ns))
			p = p->next;
		if (p != stop)
			send_parcel_run(p, stop, deadline_ns);
		return;
	}
	xs.out.len = 0;
	for (struct oa_parcel *q = p; q != stop; q = q->next)
		if (!oa_buf_append(&xs.out, (const char *)q->data, q->len) ||
		    (oa_rt.cfg.exporter == OA_EXPORTER_FILE && !oa_buf_append(&xs.out, "\n", 1))) {
			count_failed(spans);
			return;
		}
	if (send_encoded(spans, deadline_ns) == OA_SEND_TOO_LARGE)
		count_failed(spans);
}

/* Sends the parcels waiting (all of them, or only when enough wait). */
static void send_parcels(bool everything, uint64_t deadline_ns)
{
	if (!everything && oa_parcels_bytes() < PARCEL_SEND_BYTES)
		return;
	struct oa_parcel *p = oa_parcels_take();
	while (p) {
		/* protobuf requests concatenate; JSON ones go one by one (a file
		 * takes any number of lines at once) */
		struct oa_parcel *stop = p->next;
		size_t bytes = p->len;
		bool concatenates =
		    p->format == OA_PARCEL_PROTOBUF || oa_rt.cfg.exporter == OA_EXPORTER_FILE;
		while (concatenates && stop && stop->format == p->format &&
		       bytes + stop->len <= PARCEL_REQUEST_MAX) {
			bytes += stop->len;
			stop = stop->next;
		}
		xs.sending_parcels = true;
		send_parcel_run(p, stop, deadline_ns);
		xs.sending_parcels = false;
		while (p != stop) {
			struct oa_parcel *next = p->next;
			oa_parcel_free(p);
			p = next;
		}
	}
}

void oa_exporter_ring_totals(uint64_t *recorded, uint64_t *sampled_out)
{
	*recorded = xs.records_of_gone_rings;
	*sampled_out = xs.sampled_out_of_gone_rings;
	for (struct oa_ring *r = __atomic_load_n(&ex.rings, __ATOMIC_ACQUIRE); r; r = r->next) {
		*recorded += __atomic_load_n(&r->records, __ATOMIC_RELAXED);
		*sampled_out += __atomic_load_n(&r->sampled_out, __ATOMIC_RELAXED);
	}
}

void oa_exporter_parcel_totals(uint64_t *exported, uint64_t *failed)
{
	*exported = parcel_counts.exported;
	*failed = parcel_counts.failed;
}

void oa_exporter_parcels_queued(size_t bytes);
void oa_exporter_parcels_queued(size_t bytes)
{
	(void)bytes;
	oa_exporter_start_if_needed();
	if (oa_parcels_bytes() >= PARCEL_SEND_BYTES)
		oa_exporter_wake();
}

/* OTEL_TRACES_EXPORTER=none: what the last scan saw is released unread
 * (reading records only to drop them would pull the producers' lines into
 * this thread's cache, and make their next writes wait). */
static size_t discard_rings(void)
{
	uint64_t n = 0;
	for (struct oa_ring *r = __atomic_load_n(&ex.rings, __ATOMIC_ACQUIRE); r; r = r->next)
		n += oa_ring_discard(r, r->head_at_scan, r->records_at_scan);
	count_exported(n, 0);
	return n;
}

/* Moves up to `limit` records from the rings into the batch, oldest ring
 * data first within each ring, rings in turn; with `until_scan`, only records
 * committed before the last scan. Returns how many. */
static size_t fill_batch(size_t limit, bool until_scan)
{
	if (oa_rt.cfg.exporter == OA_EXPORTER_NONE)
		return discard_rings();
	size_t taken = 0;
	bool progress = true;
	for (struct oa_ring *r = __atomic_load_n(&ex.rings, __ATOMIC_ACQUIRE); r; r = r->next)
		r->name_read = 0;
	while (taken < limit && progress) {
		progress = false;
		for (struct oa_ring *r = __atomic_load_n(&ex.rings, __ATOMIC_ACQUIRE);
		     r && taken < limit; r = r->next) {
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
				oa_batch_add(xs.batch, rec, r->name);
				oa_ring_release(r, rec);
				taken++;
				progress = true;
			}
		}
	}
	return taken;
}

/* Spans in the batch, waiting for it to fill. */
static size_t pending(void)
{
	return xs.batch ? oa_batch_count(xs.batch) : 0;
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

/* Counts what the rings hold (for the queue bound and the batch size) and
 * frees rings of exited threads once drained. Returns the total. */
static uint64_t scan_rings(uint64_t *arrivals, uint64_t *slots, bool *pressure)
{
	uint64_t total = 0;
	*arrivals = *slots = 0;
	*pressure = false;
	struct oa_ring *prev = NULL;
	struct oa_ring *r = __atomic_load_n(&ex.rings, __ATOMIC_ACQUIRE);
	while (r) {
		struct oa_ring *next = r->next;
		/* Spans are counted in records (a record may take several slots). */
		uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		uint64_t records = __atomic_load_n(&r->records, __ATOMIC_RELAXED);
		*arrivals += records - r->records_at_scan;
		*slots += head - r->head_at_scan;
		__atomic_store_n(&r->head_at_scan, head, __ATOMIC_RELAXED);
		__atomic_store_n(&r->records_at_scan, records, __ATOMIC_RELAXED);
		if (head == r->tail && __atomic_load_n(&r->orphaned, __ATOMIC_ACQUIRE) &&
		    thread_gone(r->tid) && __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == r->tail) {
			unlink_ring(prev, r);
		} else {
			total += records - r->records_released;
			/* A ring past its high-water mark is drained now, whatever
			 * the batch target: its producer is about to drop or wait. */
			*pressure |= head - r->tail >= r->high_water;
			prev = r;
		}
		r = next;
	}
	/* Spans already moved into the batch are still queued. */
	__atomic_store_n(&oa_rt.queued_estimate, total + pending(), __ATOMIC_RELAXED);
	return total;
}

/* The batch size follows the arrival rate: about BATCH_WINDOW_NS worth of
 * spans, between BATCH_FLOOR and OTEL_BSP_MAX_EXPORT_BATCH_SIZE. */
static void adapt(uint64_t arrivals, uint64_t slots, uint64_t now)
{
	uint64_t dt = now - xs.last_scan_ns;
	xs.last_scan_ns = now;
	if (dt == 0)
		return;
	double rate = (double)arrivals * 1e9 / (double)dt;
	xs.arrival_rate = xs.arrival_rate * 0.7 + rate * 0.3;
	xs.slot_rate = xs.slot_rate * 0.7 + (double)slots * 1e9 / (double)dt * 0.3;
	uint32_t max = oa_rt.cfg.max_export_batch_size;
	uint32_t floor = max < BATCH_FLOOR ? max : BATCH_FLOOR;
	double want = xs.arrival_rate * (double)BATCH_WINDOW_NS / 1e9;
	xs.batch_target = want < floor ? floor : want > max ? max : (uint32_t)want;
}

/* How long to sleep: the schedule delay, or less under load, so that the
 * rings are drained about when one batch has accumulated and well before
 * the busiest could pass its high-water mark (the total slot rate stands
 * for the busiest ring's): producers then seldom pay for a wake-up call,
 * and never wait for the exporter to be scheduled. */
static uint64_t sleep_ns(void)
{
	uint64_t delay = (uint64_t)oa_rt.cfg.schedule_delay_ms * 1000000u;
	if (xs.arrival_rate > 0) {
		uint64_t fill = (uint64_t)((double)xs.batch_target * 1e9 / xs.arrival_rate);
		if (xs.slot_rate > 0) {
			double half_mark = (double)oa_ring_high_water(oa_rt.cfg.buffer_spans) / 2;
			uint64_t ring_fill = (uint64_t)(half_mark * 1e9 / xs.slot_rate);
			if (ring_fill < fill)
				fill = ring_fill;
		}
		if (fill < delay)
			delay = fill < MIN_POLL_NS ? MIN_POLL_NS : fill;
	}
	return delay;
}

/* Moves records into the batch until it holds a full one; returns how many. */
static size_t top_up(bool until_scan)
{
	size_t have = pending();
	return have < xs.batch_target ? fill_batch(xs.batch_target - have, until_scan) : 0;
}

/* Exports full batches, or, when `everything`, all that was queued at the
 * scan and what the batch held (records arriving meanwhile wait for the
 * next round: bounded work). */
static void export_available(bool everything, uint64_t queued, uint64_t deadline_ns)
{
	while (everything ? queued + pending() > 0 : queued + pending() >= xs.batch_target) {
		size_t got = top_up(everything);
		if (pending() == 0)
			break;
		export_batch(deadline_ns);
		queued = queued > got ? queued - got : 0;
	}
}

/* The exporter's state, made once: by the exporter thread when it starts, or
 * by an exit or exec that exports inline (then the thread, if it starts
 * later, finds it made). */
static void exporter_state_setup(void)
{
	if (xs.set_up)
		return;
	xs.set_up = true;
	xs.last_export_ns = xs.last_scan_ns = oa_mono_ns();
	xs.batch_target = oa_rt.cfg.max_export_batch_size < BATCH_FLOOR
			      ? oa_rt.cfg.max_export_batch_size
			      : BATCH_FLOOR;
	/* With OTEL_TRACES_EXPORTER=none records are released unread: nothing
	 * to describe, name or batch (a traced shell's every command flushes
	 * its exec span). */
	if (oa_rt.cfg.exporter == OA_EXPORTER_NONE)
		return;
	oa_resource_build(&xs.resource, &oa_rt.cfg);
	xs.syms = oa_symbols_create();
	xs.batch = oa_batch_create(&oa_rt.cfg, xs.syms, oa_clock_to_unix_ns);
	if (xs.batch) {
		struct oa_batch_process process = {.span_id = oa_rt.process_ctx.span_id,
						   .flags = oa_rt.process_ctx.flags};
		memcpy(process.trace_id, oa_rt.process_ctx.trace_id, 16);
		/* The process span carries the command line of the resource. */
		for (size_t i = 0; i < xs.resource.n_attrs; i++)
			if (strcmp(xs.resource.attrs[i].key.ptr, "process.command_args") == 0) {
				process.attrs = &xs.resource.attrs[i];
				process.n_attrs = 1;
			}
		oa_batch_set_process(xs.batch, &process);
	}
	/* libcurl loads now, while the program runs, not at the first send:
	 * that may be the exit flush, after the application's OpenSSL was shut
	 * down (see oa_transport_load_early). Not at all while a relay sends
	 * for us. */
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP && !oa_relay_connected())
		xs.transport = create_transport();
}

/* The exporter thread itself (not a thread exporting inline: an exec, a
 * relay client's exit): only it hands over to the exit path. */
static __thread bool on_exporter_thread __attribute__((tls_model("initial-exec")));

static void enter_busy(void)
{
	if (!on_exporter_thread)
		return;
	__atomic_store_n(&ex.busy, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&ex.abandoned, __ATOMIC_SEQ_CST))
		return;
	/* The exit path counted what this thread holds: it does nothing more
	 * until the process is gone. */
	__atomic_store_n(&ex.busy, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&ex.working);
	for (;;)
		pause();
}

static void leave_busy(void)
{
	if (!on_exporter_thread)
		return;
	__atomic_store_n(&ex.busy, 0, __ATOMIC_SEQ_CST);
}

/* Spans queued in the rings and, when `batch`, the batch: the ones the exit
 * flush leaves. With `discard`, the rings are emptied and the batch reset.
 * Without it, only memory is read (async-signal-safe): for the exit path,
 * when no exporter runs or it has abandoned them. */
static uint64_t unsent_spans(bool batch, bool discard)
{
	uint64_t n = 0;
	for (struct oa_ring *r = __atomic_load_n(&ex.rings, __ATOMIC_ACQUIRE); r; r = r->next) {
		uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		uint64_t records = __atomic_load_n(&r->records, __ATOMIC_RELAXED);
		if (discard)
			n += oa_ring_discard(r, head, records);
		else
			n += records - r->records_released;
	}
	if (batch && xs.batch) {
		n += oa_batch_count(xs.batch);
		if (discard)
			oa_batch_reset(xs.batch);
	}
	return n;
}

static void count_unsent(uint64_t n)
{
	__atomic_fetch_add(&oa_rt.dropped[OA_DROP_UNSENT_AT_EXIT], n, __ATOMIC_RELAXED);
}

static void exporter_setup(void)
{
	oa_tls.internal = 1;
	if (oa_rt.cfg.exporter_cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(oa_rt.cfg.exporter_cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
			oa_warn("OTLPAUTO_EXPORTER_CPU=%d cannot be used; no affinity",
				oa_rt.cfg.exporter_cpu);
	}
	exporter_state_setup();
}

/* Another thread doing the exporter's work (an exec, an exit without the
 * thread, a chroot's preparation) holds the working lock, but lets go of it
 * while the transport waits on the network, so that a fork does not wait:
 * the exporter thread must not take over then. */
static void take_work(void)
{
	pthread_mutex_lock(&ex.working);
	while (__atomic_load_n(&ex.borrowed, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&ex.working);
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
		pthread_mutex_lock(&ex.working);
	}
}

static void borrow_work(void)
{
	pthread_mutex_lock(&ex.working);
	__atomic_store_n(&ex.borrowed, true, __ATOMIC_RELEASE);
}

static void return_work(void)
{
	__atomic_store_n(&ex.borrowed, false, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&ex.working);
}

static void *exporter_main(void *arg)
{
	(void)arg;
	on_exporter_thread = true;
	take_work();
	__atomic_store_n(&ex.thread_starting, 0, __ATOMIC_RELEASE);
	oa_sys_clean_thread_stack();
	exporter_setup();
	__atomic_store_n(&ex.state, EXPORTER_RUNNING, __ATOMIC_RELEASE);
	for (;;) {
		enter_busy();
		uint32_t seen = __atomic_load_n(&ex.wake_word, __ATOMIC_ACQUIRE);
		uint32_t flush_req = __atomic_load_n(&ex.flush_requested, __ATOMIC_ACQUIRE);
		uint64_t now = oa_mono_ns();
		oa_clock_calibrate();
		uint64_t arrivals, slots;
		bool pressure;
		uint64_t queued = scan_rings(&arrivals, &slots, &pressure);
		adapt(arrivals + xs.carried_arrivals, slots + xs.carried_slots, now);
		xs.carried_arrivals = xs.carried_slots = 0;
		bool flushing = flush_req != __atomic_load_n(&ex.flush_done, __ATOMIC_RELAXED);
		bool due =
		    now - xs.last_export_ns >= (uint64_t)oa_rt.cfg.schedule_delay_ms * 1000000u;
		bool everything = flushing || due;
		bool parcels_wait = oa_parcels_bytes() >= PARCEL_SEND_BYTES;
		if (everything || pressure || parcels_wait ||
		    queued + pending() >= xs.batch_target) {
			uint64_t deadline =
			    flushing ? __atomic_load_n(&ex.flush_deadline_ns, __ATOMIC_ACQUIRE)
				     : now + (uint64_t)oa_rt.cfg.export_timeout_ms * 1000000u;
			xs.flushing = flushing;
			export_available(everything, queued, deadline);
			send_parcels(everything, deadline);
			/* A ring past its mark is drained now, but into the batch,
			 * which goes out when full: a small ring does not make
			 * requests small (each costs tens of µs in libcurl, the
			 * kernel and the receiver, whatever its size). */
			if (!everything)
				top_up(false);
			/* Refresh the queue estimate producers check; what arrived
			 * during the export counts toward the next rate. */
			scan_rings(&arrivals, &slots, &pressure);
			xs.carried_arrivals = arrivals;
			xs.carried_slots = slots;
			if (due)
				xs.last_export_ns = oa_mono_ns();
		}
		/* Metrics touch neither rings nor batch: not busy meanwhile. */
		leave_busy();
		uint64_t metrics_wait = oa_metrics_export_round(
		    now, flushing, __atomic_load_n(&ex.flush_deadline_ns, __ATOMIC_ACQUIRE),
		    &ex.working);
		enter_busy();
		if (flushing) {
			if (__atomic_load_n(&ex.exit_flush, __ATOMIC_ACQUIRE))
				count_unsent(unsent_spans(true, true));
			__atomic_store_n(&ex.flush_done, flush_req, __ATOMIC_RELEASE);
			futex(&ex.flush_done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
			continue;
		}
		uint64_t wait = sleep_ns();
		if (metrics_wait < wait)
			wait = metrics_wait;
		struct timespec ts = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
		leave_busy();
		__atomic_store_n(&ex.sleeping, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&ex.working);
		if (__atomic_load_n(&ex.wake_word, __ATOMIC_SEQ_CST) == seen)
			futex(&ex.wake_word, FUTEX_WAIT_PRIVATE, seen, &ts);
		take_work();
		__atomic_store_n(&ex.sleeping, 0, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* atexit handlers run newest first, so this one runs before OpenSSL's
 * cleanup when the application set OpenSSL up before its first span.
 * libcurl cannot be initialised after that cleanup: it is here, if the
 * exporter has not done it yet (or this waits for the exporter). Nor can a
 * request be sent over TLS after it: what is queued for an https endpoint
 * goes now (the final flush sends what comes later, if it can). */
static void load_transport_before_exit(void)
{
	oa_tls.guard++;
	if (oa_transport_load() && oa_transport_tls_ends_before_exit() &&
	    strncasecmp(oa_rt.cfg.endpoint, "https:", 6) == 0)
		oa_exporter_flush((uint32_t)(oa_rt.cfg.exit_timeout_ns / 1000000u));
	oa_tls.guard--;
}

/* Starts the exporter if it is not running; false when it cannot be. */
static bool ensure_started(void)
{
	static bool exit_load_registered;
	oa_fork_check(); /* the parent's exporter is not ours to wait for */
	int state = __atomic_load_n(&ex.state, __ATOMIC_ACQUIRE);
	if (state != EXPORTER_STOPPED)
		return true;
	/* A thread made in a vfork child would be the child's, in the
	 * parent's memory: the parent starts its exporter at its next span. */
	if (oa_in_vfork_child())
		return false;
	if (!__atomic_compare_exchange_n(&ex.state, &state, EXPORTER_STARTING, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return true;
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP && !exit_load_registered) {
		exit_load_registered = true;
		atexit(load_transport_before_exit);
	}
	/* Every signal blocked: the application's handlers must never run on
	 * our thread, and process-directed signals must go to its threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	uint8_t was_internal = oa_tls.internal;
	oa_tls.internal = 1; /* our pthread_create hook must not wrap it */
	__atomic_store_n(&ex.thread_starting, 1, __ATOMIC_RELEASE);
	int err = oa_sys_pthread_create(&ex.thread, &attr, exporter_main, NULL);
	if (err)
		__atomic_store_n(&ex.thread_starting, 0, __ATOMIC_RELEASE);
	oa_tls.internal = was_internal;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		__atomic_store_n(&ex.state, EXPORTER_STOPPED, __ATOMIC_RELEASE);
		oa_warn("cannot start the exporter thread: %s", strerror(err));
		return false;
	}
	return true;
}

/* Not once the process exits, nor in a program's signal handler: starting a
 * thread allocates and calls pthread_create, neither async-signal-safe (the
 * exit path sends what is left without one, see oa_exporter_exit_flush). */
void oa_exporter_start_if_needed(void)
{
	if (__builtin_expect(__atomic_load_n(&ex.state, __ATOMIC_RELAXED) == EXPORTER_STOPPED, 0) &&
	    __atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) == OA_STATE_ACTIVE && !oa_tls.in_signal)
		ensure_started();
}

bool oa_exporter_running(void)
{
	return __atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) != EXPORTER_STOPPED;
}

static bool rings_empty(void)
{
	for (struct oa_ring *r = __atomic_load_n(&ex.rings, __ATOMIC_ACQUIRE); r; r = r->next)
		if (__atomic_load_n(&r->head, __ATOMIC_ACQUIRE) != r->tail)
			return false;
	return true;
}

/* Whether a flush without the exporter thread can be done by the caller:
 * sending to the relay, writing the file or stderr, or releasing records
 * unread cost less than starting a thread; posting to the collector needs
 * libcurl, loaded on the exporter thread. */
static bool exports_inline(void)
{
	return oa_relay_connected() || oa_rt.cfg.exporter != OA_EXPORTER_OTLP;
}

/* With no exporter thread, the calling thread exports what is queued
 * itself (see exports_inline). False when the thread runs (or starts). */
static bool export_inline(uint64_t deadline_ns)
{
	int state = EXPORTER_STOPPED;
	if (!__atomic_compare_exchange_n(&ex.state, &state, EXPORTER_STARTING, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	borrow_work();
	uint8_t was_internal = oa_tls.internal;
	oa_tls.internal = 1;
	exporter_state_setup();
	uint64_t arrivals, slots;
	bool pressure;
	uint64_t queued = scan_rings(&arrivals, &slots, &pressure);
	xs.flushing = true;
	export_available(true, queued, deadline_ns);
	send_parcels(true, deadline_ns);
	xs.flushing = false;
	/* After the spans: their outcomes are counted in otlpauto.spans. */
	oa_metrics_export_round(oa_mono_ns(), true, deadline_ns, &ex.working);
	oa_tls.internal = was_internal;
	return_work();
	__atomic_store_n(&ex.state, EXPORTER_STOPPED, __ATOMIC_RELEASE);
	return true;
}

static void ignore_function(uintptr_t addr, const char *name, void *ctx)
{
	(void)addr, (void)name, (void)ctx;
}

void oa_exporter_before_confinement(void)
{
	static bool prepared;
	if (prepared || oa_relay_connected())
		return;
	prepared = true;
	borrow_work();
	uint8_t was_internal = oa_tls.internal;
	oa_tls.internal = 1;
	exporter_state_setup();
	if (oa_rt.cfg.exporter == OA_EXPORTER_FILE)
		oa_filesink_open();
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP && !xs.transport)
		xs.transport = create_transport();
	/* Symbol tables are read when first needed, which may be after the
	 * chroot: every one is read now. */
	if (xs.syms && (oa_rt.cfg.hooks & OA_HOOK_FUNCTIONS))
		oa_symbols_foreach_function(xs.syms, ignore_function, NULL);
	oa_tls.internal = was_internal;
	return_work();
}

/* ---- exec: the calling thread does the exporter's work */

static struct {
	bool active;
	bool was_stopped; /* the exporter thread was not running */
	uint8_t was_internal;
} exec_run;

/* Exports everything committed so far, on this thread. */
static void export_here(uint64_t deadline_ns)
{
	uint64_t arrivals, slots;
	bool pressure;
	uint64_t queued = scan_rings(&arrivals, &slots, &pressure);
	xs.flushing = true;
	export_available(true, queued, deadline_ns);
	send_parcels(true, deadline_ns);
	xs.flushing = false;
}

void oa_exporter_exec_begin(int handoff_fd, uint64_t deadline_ns)
{
	int state = EXPORTER_STOPPED;
	exec_run.was_stopped = __atomic_compare_exchange_n(
	    &ex.state, &state, EXPORTER_STARTING, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	/* Held until the exec: the exporter thread, if any, stays asleep. */
	borrow_work();
	exec_run.active = true;
	exec_run.was_internal = oa_tls.internal;
	oa_tls.internal = 1;
	exporter_state_setup();
	xs.handoff_fd = handoff_fd;
	xs.relay_frame = OA_RELAY_PARCEL;
	export_here(deadline_ns);
}

bool oa_exporter_exec_tentative(uint64_t deadline_ns)
{
	if (xs.handoff_fd >= 0)
		xs.handoff_tentative_from = (uint64_t)lseek(xs.handoff_fd, 0, SEEK_CUR);
	xs.relay_frame = OA_RELAY_TENTATIVE;
	xs.tentative_escaped = false;
	export_here(deadline_ns);
	return !xs.tentative_escaped;
}

/* Parcels written to the hand-over file before its tentative part: ours to
 * send again, the exec having failed. */
static void take_back_handoff(void)
{
	uint64_t end = xs.handoff_tentative_from;
	for (uint64_t at = 0; at + HANDOFF_HEADER <= end;) {
		uint8_t header[HANDOFF_HEADER];
		if ((ssize_t)syscall(SYS_pread64, xs.handoff_fd, header, sizeof header,
				     (off_t)at) != sizeof header)
			return;
		uint32_t len, spans;
		memcpy(&len, header, 4);
		memcpy(&spans, header + 4, 4);
		struct oa_parcel *p = oa_parcel_new(len, spans, header[8]);
		if (!p || (ssize_t)syscall(SYS_pread64, xs.handoff_fd, p->data, (size_t)len,
					   (off_t)(at + HANDOFF_HEADER)) != len) {
			oa_parcel_free(p);
			return;
		}
		oa_parcels_push(p);
		at += HANDOFF_HEADER + len;
	}
}

void oa_exporter_adopt_handoff(const char *value)
{
	char *end;
	long fd = strtol(value, &end, 10);
	if (*end || fd < 0 || fd > INT_MAX)
		return;
	size_t bytes = 0;
	for (off_t at = 0;;) {
		uint8_t header[HANDOFF_HEADER];
		if ((ssize_t)syscall(SYS_pread64, (int)fd, header, sizeof header, at) !=
		    sizeof header)
			break;
		uint32_t len, spans;
		memcpy(&len, header, 4);
		memcpy(&spans, header + 4, 4);
		struct oa_parcel *p = oa_parcel_new(len, spans, header[8]);
		if (!p || (ssize_t)syscall(SYS_pread64, (int)fd, p->data, (size_t)len,
					   at + HANDOFF_HEADER) != len) {
			oa_parcel_free(p);
			break;
		}
		oa_parcels_push(p);
		bytes += len;
		at += HANDOFF_HEADER + len;
	}
	syscall(SYS_close, (int)fd);
	if (bytes)
		oa_exporter_parcels_queued(bytes);
}

void oa_exporter_exec_failed(void)
{
	if (!exec_run.active)
		return;
	if (xs.handoff_fd >= 0) {
		take_back_handoff();
	} else if (xs.relay_frame == OA_RELAY_TENTATIVE && oa_relay_connected()) {
		oa_relay_send(OA_RELAY_CANCEL, NULL, 0, 0, 0, oa_mono_ns() + 100000000u);
	}
	xs.handoff_fd = -1;
	xs.handoff_tentative_from = 0;
	xs.relay_frame = OA_RELAY_PARCEL;
	oa_tls.internal = exec_run.was_internal;
	exec_run.active = false;
	return_work();
	if (exec_run.was_stopped)
		__atomic_store_n(&ex.state, EXPORTER_STOPPED, __ATOMIC_RELEASE);
}

static bool flush_answered(uint32_t req)
{
	return (int32_t)(__atomic_load_n(&ex.flush_done, __ATOMIC_ACQUIRE) - req) >= 0;
}

/* Asks the exporter to flush with this deadline for its sends; returns the
 * request's number. */
static uint32_t request_flush(uint64_t deadline_ns)
{
	__atomic_store_n(&ex.flush_deadline_ns, deadline_ns, __ATOMIC_RELEASE);
	uint32_t req = __atomic_add_fetch(&ex.flush_requested, 1, __ATOMIC_ACQ_REL);
	oa_exporter_wake();
	return req;
}

/* Waits until the exporter answered request req or `until`; true when it
 * did. Async-signal-safe. */
static bool wait_flush(uint32_t req, uint64_t until)
{
	for (;;) {
		uint32_t done = __atomic_load_n(&ex.flush_done, __ATOMIC_ACQUIRE);
		if ((int32_t)(done - req) >= 0)
			return true;
		uint64_t now = oa_mono_ns();
		if (now >= until)
			return false;
		uint64_t left = until - now;
		struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
		futex(&ex.flush_done, FUTEX_WAIT_PRIVATE, done, &ts);
	}
}

void oa_exporter_flush(uint32_t timeout_ms)
{
	oa_fork_check();
	int state = __atomic_load_n(&ex.state, __ATOMIC_ACQUIRE);
	if (state == EXPORTER_STOPPED && rings_empty() && oa_parcels_bytes() == 0)
		return;
	uint64_t deadline = oa_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	if (state == EXPORTER_STOPPED && exports_inline() && export_inline(deadline))
		return;
	if (!ensure_started())
		return;
	wait_flush(request_flush(deadline), deadline);
}

/* The longest the exit path waits past its deadline for the exporter to
 * leave its bookkeeping. */
#define HANDOVER_NS 10000000u

/* The exit flush's sends stop this long before its deadline (a tenth of
 * the timeout, at most 50 ms), so that the exporter has time to count what
 * it could not send and answer. */
static uint64_t exit_margin_ns(uint64_t timeout_ns)
{
	uint64_t tenth = timeout_ns / 10;
	return tenth < 50000000u ? tenth : 50000000u;
}

void oa_exporter_exit_flush(uint64_t timeout_ns, bool async)
{
	uint64_t now = oa_mono_ns();
	uint64_t deadline = timeout_ns < UINT64_MAX - now ? now + timeout_ns : UINT64_MAX;
	uint64_t margin = exit_margin_ns(timeout_ns);
	if (__atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) == EXPORTER_STOPPED) {
		if (rings_empty() && oa_parcels_bytes() == 0 && oa_metric_parcels_bytes() == 0)
			return;
		/* A relay client, the file, the console: sent from here. */
		if (!async && exports_inline() && export_inline(deadline - margin))
			return;
		/* No exporter thread yet (no span was committed before, in this
		 * process or since the fork): a signal handler or _exit cannot
		 * start one (pthread_create may need a lock the interrupted
		 * code holds). Nothing consumes the rings: counting is safe. */
		if (async || !ensure_started()) {
			count_unsent(unsent_spans(false, false));
			return;
		}
	}
	__atomic_store_n(&ex.exit_flush, 1, __ATOMIC_RELEASE);
	uint32_t req = request_flush(deadline - margin);
	if (wait_flush(req, deadline - margin / 2))
		return;
	/* The exporter is late, likely inside a request begun before the exit
	 * with its own, longer deadline: take the rings and the batch over
	 * once it is out of its bookkeeping (it parks when it comes back),
	 * which takes microseconds, so even a zero timeout waits for it a
	 * little. */
	__atomic_store_n(&ex.abandoned, 1, __ATOMIC_SEQ_CST);
	now = oa_mono_ns();
	uint64_t handover_until = deadline > now + HANDOVER_NS ? deadline : now + HANDOVER_NS;
	while (__atomic_load_n(&ex.busy, __ATOMIC_SEQ_CST)) {
		if (oa_mono_ns() >= handover_until) {
			oa_log_text(OA_LOG_DEBUG, "the exporter did not stop in time: spans still "
						  "queued are not counted");
			return;
		}
		struct timespec pause = {0, 100000};
		nanosleep(&pause, NULL);
	}
	if (flush_answered(req))
		return;
	bool running = __atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) == EXPORTER_RUNNING;
	count_unsent(unsent_spans(running, false));
}

void oa_exporter_atfork_prepare(void)
{
	ex.fork_holds_working = false;
	if (__atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) != EXPORTER_STOPPED &&
	    !pthread_equal(ex.thread, pthread_self())) {
		/* Tries, not pthread_mutex_clocklock: ThreadSanitizer (GCC 12)
		 * does not see that one take the lock, and reports its unlock.
		 * The exporter holds it for microseconds at a time. */
		struct timespec pause = {0, FORK_POLL_NS};
		long waited = 0;
		for (; __atomic_load_n(&ex.thread_starting, __ATOMIC_ACQUIRE) &&
		       waited < OA_FORK_WAIT_NS;
		     waited += FORK_POLL_NS)
			nanosleep(&pause, NULL);
		for (; !(ex.fork_holds_working = pthread_mutex_trylock(&ex.working) == 0) &&
		       waited < OA_FORK_WAIT_NS;
		     waited += FORK_POLL_NS)
			nanosleep(&pause, NULL);
	}
	oa_transport_atfork_prepare();
}

void oa_exporter_atfork_parent(void)
{
	oa_transport_atfork_parent();
	if (ex.fork_holds_working)
		pthread_mutex_unlock(&ex.working);
	ex.fork_holds_working = false;
}

/* The child has no exporter thread and must not touch the parent's
 * connection or queued spans: start from nothing, leaking the parent's
 * exporter memory rather than freeing state that might be mid-update. */
void oa_exporter_atfork_child(void)
{
	oa_transport_atfork_child();
	/* As for the loader's lock: the forking thread unlocks what it took; a
	 * lock the parent's exporter held is made anew. */
	if (ex.fork_holds_working)
		pthread_mutex_unlock(&ex.working);
	else
		pthread_mutex_init(&ex.working, NULL);
	ex.fork_holds_working = false;
	ex.rings = NULL;
	ex.borrowed = false;
	ex.thread_starting = 0;
	ex.state = EXPORTER_STOPPED;
	ex.sleeping = 0;
	ex.flush_requested = ex.flush_done = 0;
	ex.exit_flush = ex.busy = ex.abandoned = 0;
	if (xs.transport)
		oa_transport_abandon(xs.transport);
	memset(&xs, 0, sizeof xs);
	xs.handoff_fd = -1;
	xs.relay_frame = OA_RELAY_PARCEL;
	memset(&parcel_counts, 0, sizeof parcel_counts);
	oa_filesink_atfork_child();
	oa_rt.queued_estimate = 0;
}

static char *append_text(char *p, char *end, const char *text)
{
	while (*text && p < end)
		*p++ = *text++;
	return p;
}

static char *append_count(char *p, char *end, uint64_t n)
{
	char digits[20];
	int len = 0;
	do
		digits[len++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	while (len && p < end)
		*p++ = digits[--len];
	return p;
}

/* Formatted by hand: it is printed from signal handlers and _exit. */
void oa_exporter_shutdown_summary(void)
{
	static const struct {
		const char *label;
		const uint64_t *counter;
	} parts[] = {
	    {"spans: exported ", &oa_rt.spans_exported},
	    {", sampled out ", &oa_rt.spans_sampled_out},
	    {", dropped: ring full ", &oa_rt.dropped[OA_DROP_RING_FULL]},
	    {", queue full ", &oa_rt.dropped[OA_DROP_QUEUE_FULL]},
	    {", export failed ", &oa_rt.dropped[OA_DROP_EXPORT_FAILED]},
	    {", rejected ", &oa_rt.dropped[OA_DROP_REJECTED]},
	    {", unsent at exit ", &oa_rt.dropped[OA_DROP_UNSENT_AT_EXIT]},
	    {", ended after exit ", &oa_rt.dropped[OA_DROP_ENDED_AFTER_EXIT]},
	};
	_Static_assert(sizeof parts / sizeof parts[0] == 2 + OA_DROP_COUNT,
		       "every reason for a drop is reported");
	char line[256];
	char *p = line, *end = line + sizeof line - 1;
	/* Atomic reads: threads still running go on counting. */
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		p = append_text(p, end, parts[i].label);
		p = append_count(p, end, __atomic_load_n(parts[i].counter, __ATOMIC_RELAXED));
	}
	*p = '\0';
	oa_log_text(OA_LOG_DEBUG, line);
	uint64_t relayed = __atomic_load_n(&oa_rt.spans_relayed, __ATOMIC_RELAXED);
	if (relayed) {
		p = append_text(line, end, "relay: ");
		p = append_count(p, end, relayed);
		p = append_text(p, end, " of the exported spans went through the relay");
		*p = '\0';
		oa_log_text(OA_LOG_DEBUG, line);
	}
	uint64_t commented = __atomic_load_n(&oa_rt.db_queries_commented, __ATOMIC_RELAXED);
	uint64_t uncommented = __atomic_load_n(&oa_rt.db_queries_uncommented, __ATOMIC_RELAXED);
	if (commented || uncommented) {
		p = append_text(line, end, "database queries: ");
		p = append_count(p, end, commented);
		p = append_text(p, end, " sent with their span's traceparent comment, ");
		p = append_count(p, end, uncommented);
		p = append_text(p, end, " without");
		*p = '\0';
		oa_log_text(OA_LOG_DEBUG, line);
	}
	uint64_t relayed_in = oa_relay_host_spans_in();
	if (relayed_in) {
		p = append_text(line, end, "relay host: ");
		p = append_count(p, end, relayed_in);
		p = append_text(p, end, " spans from other processes: exported ");
		p = append_count(p, end, parcel_counts.exported);
		p = append_text(p, end, ", failed ");
		p = append_count(p, end, parcel_counts.failed);
		*p = '\0';
		oa_log_text(OA_LOG_DEBUG, line);
	}
}
