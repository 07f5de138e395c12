/* The exporter thread: the single consumer of every thread's ring. It wakes
 * on its schedule, when a ring passes its high-water mark, or for a flush;
 * drains records into a batch, encodes it into one buffer and hands it to the
 * transport (or the console, a file, nowhere). It is invisible to the hooks,
 * starts lazily with every signal blocked, and is recreated on demand in a
 * forked child. */
#include <errno.h>
#include <fcntl.h>
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
#include "log.h"
#include "real.h"
#include "resource.h"
#include "runtime.h"
#include "symbols.h"
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

OA_REAL(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))

enum exporter_state { EXPORTER_STOPPED, EXPORTER_STARTING, EXPORTER_RUNNING };

static struct {
	struct oa_ring *rings; /* registry: pushed by producers, unlinked by the exporter */
	int state;	       /* enum exporter_state */
	uint32_t wake_word;    /* futex: bumped by every wake-up request */
	int sleeping;
	uint32_t flush_requested; /* futex-free counters: requests and completions */
	uint32_t flush_done;
	uint64_t flush_deadline_ns;
	pthread_t thread;
	/* Held by the exporter while it works, not while it sleeps: a fork
	 * waits (boundedly) for it, so that the child does not inherit a lock
	 * the exporter held inside a library (libcurl, libelf, the allocator)
	 * and deadlock on it when its own exporter starts. */
	pthread_mutex_t working;
	bool fork_holds_working; /* the forking thread took it in prepare */
} ex = {.working = PTHREAD_MUTEX_INITIALIZER};

/* How long a fork waits for the exporter to finish a round of work: one
 * round is a few milliseconds unless the collector is slow, and the
 * application's fork must not wait on that. */
#define FORK_WAIT_NS (50 * 1000000L)

/* State owned by the exporter thread alone. */
static struct {
	struct oa_batch *batch;
	struct oa_symbols *syms;
	struct oa_transport *transport;
	struct oa_resource resource;
	struct oa_buf out;
	int file_fd;
	uint64_t last_export_ns;
	uint64_t last_scan_ns;
	double arrival_rate;	   /* spans per second, smoothed */
	double slot_rate;	   /* ring slots per second, smoothed */
	uint64_t carried_arrivals; /* counted by a scan that did not adapt */
	uint64_t carried_slots;
	uint32_t batch_target;
	bool flushing; /* exporting for a flush request (exit, exec, signal) */
	bool warned_file;
} xs = {.file_fd = -1};

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
	oa_ring_destroy(ring);
}

/* A live thread's name is read again at most this often: it may be
 * renamed, but three syscalls per batch would cost a busy exporter more
 * than encoding does. */
#define NAME_REFRESH_NS 250000000ull

/* The ring's thread name: read from /proc while the thread lives, kept from
 * its exit afterwards. */
static const char *ring_thread_name(struct oa_ring *r)
{
	if (__atomic_load_n(&r->orphaned, __ATOMIC_ACQUIRE))
		return r->exit_name[0] ? r->exit_name : NULL;
	uint64_t now = oa_mono_ns();
	if (r->name == r->live_name && now - r->name_read_ns < NAME_REFRESH_NS)
		return r->name;
	r->name_read_ns = now;
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%u/comm", r->tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char buf[sizeof r->live_name];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	if (buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	memcpy(r->live_name, buf, (size_t)n + 1);
	return r->live_name;
}

static void open_file_sink(void)
{
	char path[PATH_MAX];
	const char *p = oa_rt.cfg.file_path;
	if (!p) {
		snprintf(path, sizeof path, "otlpauto-%d.jsonl", (int)getpid());
		p = path;
	}
	/* 0600: spans describe what the program did; other users need not read it. */
	xs.file_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (xs.file_fd < 0) {
		if (!xs.warned_file)
			oa_warn("cannot open OTLPAUTO_FILE \"%s\": %s; spans are dropped", p,
				strerror(errno));
		xs.warned_file = true;
		return;
	}
	oa_fd_protect(xs.file_fd);
}

static bool write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
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

static void count_exported(size_t n, uint64_t rejected)
{
	if (rejected > n)
		rejected = n;
	__atomic_fetch_add(&oa_rt.spans_exported, n - rejected, __ATOMIC_RELAXED);
	__atomic_fetch_add(&oa_rt.dropped[OA_DROP_REJECTED], rejected, __ATOMIC_RELAXED);
}

static void count_failed(size_t n)
{
	__atomic_fetch_add(&oa_rt.dropped[OA_DROP_EXPORT_FAILED], n, __ATOMIC_RELAXED);
}

/* Sends spans [first, first+count) of the batch, halving a request that
 * would exceed 64 MiB. */
static void send_range(size_t first, size_t count, uint64_t deadline_ns)
{
	const struct oa_config *cfg = &oa_rt.cfg;
	bool json = cfg->exporter == OA_EXPORTER_FILE || cfg->protocol == OA_PROTOCOL_JSON;
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
	if (!encode(view, json)) {
		if (count > 1) {
			send_range(first, count / 2, deadline_ns);
			send_range(first + count / 2, count - count / 2, deadline_ns);
		} else {
			count_failed(count);
		}
		return;
	}
	if (cfg->exporter == OA_EXPORTER_FILE) {
		if (xs.file_fd < 0)
			open_file_sink();
		if (!oa_buf_append(&xs.out, "\n", 1) || xs.file_fd < 0 ||
		    !write_all(xs.file_fd, xs.out.data, xs.out.len))
			count_failed(count);
		else
			count_exported(count, 0);
		return;
	}
	if (!xs.transport)
		xs.transport = oa_transport_create(cfg);
	if (!xs.transport) {
		count_failed(count);
		return;
	}
	oa_transport_set_flushing(xs.transport, xs.flushing);
	uint64_t rejected = 0;
	enum oa_send_result r = oa_transport_send(xs.transport, (const uint8_t *)xs.out.data,
						  xs.out.len, deadline_ns, &rejected);
	if (r == OA_SEND_OK)
		count_exported(count, rejected);
	else if (r == OA_SEND_TOO_LARGE && count > 1) {
		send_range(first, count / 2, deadline_ns);
		send_range(first + count / 2, count - count / 2, deadline_ns);
	} else
		count_failed(count);
}

static void export_batch(uint64_t deadline_ns)
{
	size_t n = oa_batch_count(xs.batch);
	if (n)
		send_range(0, n, deadline_ns);
	oa_batch_reset(xs.batch);
	xs.last_export_ns = oa_mono_ns();
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
		    __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == r->tail) {
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
	/* With OTEL_TRACES_EXPORTER=none records are released unread: nothing
	 * to describe, name or batch (a traced shell's every command starts an
	 * exporter to flush its exec span). */
	if (oa_rt.cfg.exporter != OA_EXPORTER_NONE) {
		oa_resource_build(&xs.resource, &oa_rt.cfg);
		xs.syms = oa_symbols_create();
		xs.batch = oa_batch_create(&oa_rt.cfg, xs.syms, oa_clock_to_unix_ns);
	}
	/* libcurl loads now, while the program runs, not at the first send:
	 * that may be the exit flush, after the application's OpenSSL was shut
	 * down (see oa_transport_load_early). */
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP)
		xs.transport = oa_transport_create(&oa_rt.cfg);
	xs.last_export_ns = xs.last_scan_ns = oa_mono_ns();
	xs.batch_target = oa_rt.cfg.max_export_batch_size < BATCH_FLOOR
			      ? oa_rt.cfg.max_export_batch_size
			      : BATCH_FLOOR;
}

static void *exporter_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ex.working);
	exporter_setup();
	__atomic_store_n(&ex.state, EXPORTER_RUNNING, __ATOMIC_RELEASE);
	for (;;) {
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
		if (everything || pressure || queued + pending() >= xs.batch_target) {
			uint64_t deadline =
			    flushing ? __atomic_load_n(&ex.flush_deadline_ns, __ATOMIC_ACQUIRE)
				     : now + (uint64_t)oa_rt.cfg.export_timeout_ms * 1000000u;
			xs.flushing = flushing;
			export_available(everything, queued, deadline);
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
		if (flushing) {
			__atomic_store_n(&ex.flush_done, flush_req, __ATOMIC_RELEASE);
			futex(&ex.flush_done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
			continue;
		}
		uint64_t wait = sleep_ns();
		struct timespec ts = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
		__atomic_store_n(&ex.sleeping, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&ex.working);
		if (__atomic_load_n(&ex.wake_word, __ATOMIC_SEQ_CST) == seen)
			futex(&ex.wake_word, FUTEX_WAIT_PRIVATE, seen, &ts);
		pthread_mutex_lock(&ex.working);
		__atomic_store_n(&ex.sleeping, 0, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* atexit handlers run newest first, so this one runs before OpenSSL's
 * cleanup when the application set OpenSSL up before its first span.
 * libcurl cannot be initialised after that cleanup: it is here, if the
 * exporter has not done it yet (or this waits for the exporter). */
static void load_transport_before_exit(void)
{
	oa_tls.guard++;
	oa_transport_load();
	oa_tls.guard--;
}

/* Starts the exporter if it is not running; false when it cannot be. */
static bool ensure_started(void)
{
	static bool exit_load_registered;
	int state = __atomic_load_n(&ex.state, __ATOMIC_ACQUIRE);
	if (state != EXPORTER_STOPPED)
		return true;
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
	int err = oa_real_pthread_create()(&ex.thread, &attr, exporter_main, NULL);
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

void oa_exporter_start_if_needed(void)
{
	if (__builtin_expect(__atomic_load_n(&ex.state, __ATOMIC_RELAXED) == EXPORTER_STOPPED, 0))
		ensure_started();
}

static bool rings_empty(void)
{
	for (struct oa_ring *r = __atomic_load_n(&ex.rings, __ATOMIC_ACQUIRE); r; r = r->next)
		if (__atomic_load_n(&r->head, __ATOMIC_ACQUIRE) != r->tail)
			return false;
	return true;
}

void oa_exporter_flush(uint32_t timeout_ms)
{
	if (__atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) == EXPORTER_STOPPED && rings_empty())
		return;
	if (!ensure_started())
		return;
	uint64_t deadline = oa_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	__atomic_store_n(&ex.flush_deadline_ns, deadline, __ATOMIC_RELEASE);
	uint32_t req = __atomic_add_fetch(&ex.flush_requested, 1, __ATOMIC_ACQ_REL);
	oa_exporter_wake();
	for (;;) {
		uint32_t done = __atomic_load_n(&ex.flush_done, __ATOMIC_ACQUIRE);
		if ((int32_t)(done - req) >= 0)
			return;
		uint64_t now = oa_mono_ns();
		if (now >= deadline)
			return;
		uint64_t left = deadline - now;
		struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
		futex(&ex.flush_done, FUTEX_WAIT_PRIVATE, done, &ts);
	}
}

void oa_exporter_atfork_prepare(void)
{
	ex.fork_holds_working = false;
	if (__atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) != EXPORTER_STOPPED &&
	    !pthread_equal(ex.thread, pthread_self())) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += FORK_WAIT_NS;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		ex.fork_holds_working =
		    pthread_mutex_clocklock(&ex.working, CLOCK_MONOTONIC, &until) == 0;
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
	ex.state = EXPORTER_STOPPED;
	ex.sleeping = 0;
	ex.flush_requested = ex.flush_done = 0;
	if (xs.transport)
		oa_transport_abandon(xs.transport);
	int file_fd = xs.file_fd;
	memset(&xs, 0, sizeof xs);
	/* The parent's file is named after its pid; the child writes its own. */
	if (file_fd >= 0 && !oa_rt.cfg.file_path) {
		oa_fd_unprotect(file_fd);
		close(file_fd);
		xs.file_fd = -1;
	} else {
		xs.file_fd = file_fd;
	}
	oa_rt.queued_estimate = 0;
}

void oa_exporter_shutdown_summary(void)
{
	/* Atomic reads: threads still running go on counting. */
#define COUNTER(c) (unsigned long long)__atomic_load_n(&(c), __ATOMIC_RELAXED)
	oa_debug("spans: exported %llu, sampled out %llu, dropped: ring full %llu, queue full "
		 "%llu, export failed %llu, rejected %llu",
		 COUNTER(oa_rt.spans_exported), COUNTER(oa_rt.spans_sampled_out),
		 COUNTER(oa_rt.dropped[OA_DROP_RING_FULL]),
		 COUNTER(oa_rt.dropped[OA_DROP_QUEUE_FULL]),
		 COUNTER(oa_rt.dropped[OA_DROP_EXPORT_FAILED]),
		 COUNTER(oa_rt.dropped[OA_DROP_REJECTED]));
#undef COUNTER
}
