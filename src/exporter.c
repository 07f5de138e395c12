/* The exporter thread: the single consumer of every thread's ring. It wakes
 * on its schedule (scheduler.h), when a ring passes its high-water mark, or
 * for a flush; drains records into a batch (rings.h) and hands it to the sink
 * (sink.h: encoded once, then posted, written or passed on). It is invisible
 * to the hooks, starts lazily with every signal blocked, and is recreated on
 * demand in a forked child. An exec, an exit without the thread or a
 * chroot's preparation does its work on the calling thread. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "batch.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "metrics_export.h"
#include "parcel.h"
#include "relay.h"
#include "resource.h"
#include "rings.h"
#include "runtime.h"
#include "scheduler.h"
#include "sink.h"
#include "symbols.h"
#include "sys.h"
#include "transport.h"

enum exporter_state { EXPORTER_STOPPED, EXPORTER_STARTING, EXPORTER_RUNNING };

static struct {
	int state;	    /* enum exporter_state */
	uint32_t wake_word; /* futex: bumped by every wake-up request */
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
	/* Kept by a forked child when the fork held the exporter's work: the
	 * symbols describe the same image, the batch is emptied. */
	struct oa_batch *batch;
	struct oa_symbols *syms;
	const struct oa_resource *resource;
	struct oa_schedule schedule;
	bool set_up; /* exporter_state_setup ran in this process */
} xs;

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

/* Writes and sends that may block are not busy work: the exit path may
 * take over meanwhile. */
static const struct oa_sink_waits sink_waits = {
    .working = &ex.working, .blocking = leave_busy, .resumed = enter_busy};

static void export_batch(uint64_t deadline_ns)
{
	oa_sink_send_batch(xs.batch, xs.resource, deadline_ns);
	oa_batch_reset(xs.batch);
	xs.schedule.last_export_ns = oa_mono_ns();
}

void oa_exporter_parcels_queued(size_t bytes);
void oa_exporter_parcels_queued(size_t bytes)
{
	(void)bytes;
	oa_exporter_start_if_needed();
	if (oa_sink_parcels_due())
		oa_exporter_wake();
}

/* Moves up to `limit` records from the rings into the batch (with
 * `until_scan`, only records committed before the last scan); returns how
 * many. With OTEL_TRACES_EXPORTER=none, what the last scan saw is released
 * unread instead (reading records only to drop them would pull the
 * producers' lines into this thread's cache, and make their next writes
 * wait). */
static size_t fill_batch(size_t limit, bool until_scan)
{
	if (oa_rt.cfg.exporter == OA_EXPORTER_NONE) {
		uint64_t n = oa_rings_discard_scanned();
		oa_sink_discarded(n);
		return n;
	}
	return oa_rings_fill(xs.batch, limit, until_scan);
}

/* Spans in the batch, waiting for it to fill. */
static size_t pending(void)
{
	return xs.batch ? oa_batch_count(xs.batch) : 0;
}

/* Counts what the rings hold (for the queue bound and the batch size). */
static void scan_rings(struct oa_rings_scan *scan)
{
	oa_rings_scan(scan);
	/* Spans already moved into the batch are still queued. */
	__atomic_store_n(&oa_rt.queued_estimate, scan->queued + pending(), __ATOMIC_RELAXED);
}

/* Moves records into the batch until it holds a full one; returns how many. */
static size_t top_up(bool until_scan)
{
	size_t have = pending();
	uint32_t target = xs.schedule.batch_target;
	return have < target ? fill_batch(target - have, until_scan) : 0;
}

/* Exports full batches, or, when `everything`, all that was queued at the
 * scan and what the batch held (records arriving meanwhile wait for the
 * next round: bounded work). */
static void export_available(bool everything, uint64_t queued, uint64_t deadline_ns)
{
	while (everything ? queued + pending() > 0
			  : queued + pending() >= xs.schedule.batch_target) {
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
	oa_sink_init(&sink_waits);
	oa_schedule_init(&xs.schedule, oa_rt.cfg.max_export_batch_size,
			 (uint64_t)oa_rt.cfg.schedule_delay_ms * 1000000u,
			 oa_ring_high_water(oa_rt.cfg.buffer_spans), oa_mono_ns());
	/* With OTEL_TRACES_EXPORTER=none records are released unread: nothing
	 * to describe, name or batch (a traced shell's every command flushes
	 * its exec span). */
	if (oa_rt.cfg.exporter == OA_EXPORTER_NONE)
		return;
	xs.resource = oa_process_resource(&oa_rt.cfg);
	if (!xs.syms)
		xs.syms = oa_symbols_create();
	if (!xs.batch)
		xs.batch = oa_batch_create(&oa_rt.cfg, xs.syms, oa_clock_to_unix_ns);
	if (xs.batch) {
		struct oa_batch_process process = {.span_id = oa_rt.process_ctx.span_id,
						   .flags = oa_rt.process_ctx.flags};
		memcpy(process.trace_id, oa_rt.process_ctx.trace_id, 16);
		/* The process span carries the command line of the resource. */
		for (size_t i = 0; i < xs.resource->n_attrs; i++)
			if (strcmp(xs.resource->attrs[i].key.ptr, "process.command_args") == 0) {
				process.attrs = &xs.resource->attrs[i];
				process.n_attrs = 1;
			}
		oa_batch_set_process(xs.batch, &process);
	}
	oa_sink_prepare_transport();
}

/* Spans queued in the rings and, when `batch`, the batch: the ones the exit
 * flush leaves. With `discard`, the rings are emptied and the batch reset.
 * Without it, only memory is read (async-signal-safe): for the exit path,
 * when no exporter runs or it has abandoned them. */
static uint64_t unsent_spans(bool batch, bool discard)
{
	uint64_t n = oa_rings_unsent(discard);
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
		struct oa_rings_scan scan;
		scan_rings(&scan);
		uint64_t queued = scan.queued;
		oa_schedule_adapt(&xs.schedule, scan.arrivals, scan.slots, now);
		bool flushing = flush_req != __atomic_load_n(&ex.flush_done, __ATOMIC_RELAXED);
		bool due = oa_schedule_due(&xs.schedule, now);
		bool everything = flushing || due;
		bool parcels_wait = oa_sink_parcels_due();
		if (everything || scan.pressure || parcels_wait ||
		    queued + pending() >= xs.schedule.batch_target) {
			uint64_t deadline =
			    flushing ? __atomic_load_n(&ex.flush_deadline_ns, __ATOMIC_ACQUIRE)
				     : now + (uint64_t)oa_rt.cfg.export_timeout_ms * 1000000u;
			oa_sink_set_flushing(flushing);
			export_available(everything, queued, deadline);
			oa_sink_send_parcels(everything, deadline);
			/* A ring past its mark is drained now, but into the batch,
			 * which goes out when full: a small ring does not make
			 * requests small (each costs tens of µs in libcurl, the
			 * kernel and the receiver, whatever its size). */
			if (!everything)
				top_up(false);
			/* Refresh the queue estimate producers check; what arrived
			 * during the export counts toward the next rate. */
			scan_rings(&scan);
			oa_schedule_carry(&xs.schedule, scan.arrivals, scan.slots);
			if (due)
				xs.schedule.last_export_ns = oa_mono_ns();
		}
		/* Metrics touch neither rings nor batch: not busy meanwhile. */
		leave_busy();
		uint64_t metrics_wait = oa_metrics_export_round(
		    now, flushing, __atomic_load_n(&ex.flush_deadline_ns, __ATOMIC_ACQUIRE));
		enter_busy();
		if (flushing) {
			if (__atomic_load_n(&ex.exit_flush, __ATOMIC_ACQUIRE))
				count_unsent(unsent_spans(true, true));
			__atomic_store_n(&ex.flush_done, flush_req, __ATOMIC_RELEASE);
			futex(&ex.flush_done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
			continue;
		}
		uint64_t wait = oa_schedule_sleep_ns(&xs.schedule);
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
	if (oa_transport_needs_libcurl(&oa_rt.cfg) && oa_transport_load() &&
	    oa_transport_tls_ends_before_exit() &&
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
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP && !exit_load_registered &&
	    oa_transport_needs_libcurl(&oa_rt.cfg)) {
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

/* Exports everything committed so far, on this thread. */
static void export_here(uint64_t deadline_ns)
{
	struct oa_rings_scan scan;
	scan_rings(&scan);
	oa_sink_set_flushing(true);
	export_available(true, scan.queued, deadline_ns);
	oa_sink_send_parcels(true, deadline_ns);
	oa_sink_set_flushing(false);
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
	if (oa_mem_signal_safe()) {
		/* From a signal handler: never wait for a lock. */
		if (pthread_mutex_trylock(&ex.working) != 0) {
			__atomic_store_n(&ex.state, EXPORTER_STOPPED, __ATOMIC_RELEASE);
			return false;
		}
		__atomic_store_n(&ex.borrowed, true, __ATOMIC_RELEASE);
	} else {
		borrow_work();
	}
	uint8_t was_internal = oa_tls.internal;
	oa_tls.internal = 1;
	exporter_state_setup();
	export_here(deadline_ns);
	/* After the spans: their outcomes are counted in otlpauto.spans. */
	oa_metrics_export_round(oa_mono_ns(), true, deadline_ns);
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
	oa_sink_prepare_confinement();
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
	oa_sink_exec_begin(handoff_fd);
	export_here(deadline_ns);
}

bool oa_exporter_exec_tentative(uint64_t deadline_ns)
{
	oa_sink_exec_tentative();
	export_here(deadline_ns);
	bool held = oa_sink_exec_all_held();
	/* The image's metrics end with it (the next one starts its own series,
	 * under its own resource): what it recorded goes out now, its span
	 * counts with the exec's, when that waits for no collector (to the
	 * relay, the next program, a file or stderr). Should the exec fail,
	 * the process goes on from these totals. */
	if (oa_relay_connected() || oa_sink_exec_hands_over() ||
	    oa_rt.cfg.metrics_exporter != OA_EXPORTER_OTLP)
		oa_metrics_export_round(oa_mono_ns(), true, deadline_ns);
	return held;
}

void oa_exporter_adopt_handoff(const char *value)
{
	char *end;
	long fd = strtol(value, &end, 10);
	if (*end || fd < 0 || fd > INT_MAX)
		return;
	size_t bytes = oa_sink_adopt_handoff((int)fd);
	if (bytes)
		oa_exporter_parcels_queued(bytes);
}

void oa_exporter_exec_failed(void)
{
	if (!exec_run.active)
		return;
	oa_sink_exec_failed();
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
	if (state == EXPORTER_STOPPED && oa_rings_empty() && oa_parcels_bytes() == 0)
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

/* Past an exporter thread that is set up and asleep (or about to be), the
 * exit sends from here, as an exec does (the thread is kept out
 * by `borrowed`, also while the transport waits), rather than wake the
 * thread and wait for it: two hand-overs that each cost a scheduling delay,
 * milliseconds on a busy machine. The thread finds nothing left when it
 * next wakes. False when the thread works or is not set up. Not in a relay
 * host, whose exit keeps the hand-over (its clients' last frames). */
static bool exit_inline_past_thread(uint64_t deadline_ns)
{
	if (__atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) != EXPORTER_RUNNING ||
	    pthread_mutex_trylock(&ex.working) != 0)
		return false;
	/* Free, the lock may also mean a send of the thread's waiting on the
	 * network; `sleeping` changes only under the lock. */
	if (!__atomic_load_n(&ex.sleeping, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&ex.working);
		return false;
	}
	__atomic_store_n(&ex.borrowed, true, __ATOMIC_RELEASE);
	uint8_t was_internal = oa_tls.internal;
	oa_tls.internal = 1;
	export_here(deadline_ns);
	oa_metrics_export_round(oa_mono_ns(), true, deadline_ns);
	count_unsent(unsent_spans(true, true));
	oa_tls.internal = was_internal;
	return_work();
	return true;
}

void oa_exporter_exit_flush(uint64_t timeout_ns, bool async, bool interrupted_hook)
{
	uint64_t now = oa_mono_ns();
	uint64_t deadline = timeout_ns < UINT64_MAX - now ? now + timeout_ns : UINT64_MAX;
	uint64_t margin = exit_margin_ns(timeout_ns);
	if (__atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) == EXPORTER_STOPPED) {
		if (oa_rings_empty() && oa_parcels_bytes() == 0 && oa_metric_parcels_bytes() == 0)
			return;
		/* A relay client, the file, the console: sent from here; from a
		 * signal handler too (a command of a traced script killed by
		 * one), on memory mapped for it (malloc may hold its lock in the
		 * interrupted code), unless the signal came inside our code. */
		if (exports_inline() &&
		    (!async || (!interrupted_hook && oa_mem_signal_safe_begin())) &&
		    export_inline(deadline - margin))
			return;
		/* No exporter thread yet (no span was committed before, in this
		 * process or since the fork): a signal handler or _exit cannot
		 * start one (pthread_create may need a lock the interrupted
		 * code holds). Nothing consumes the rings: counting is safe. */
		if (async || !ensure_started()) {
			count_unsent(unsent_spans(false, false));
			return;
		}
	} else if (!async && !oa_relay_hosting() && exit_inline_past_thread(deadline - margin)) {
		return;
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
	if (pthread_equal(ex.thread, pthread_self()) &&
	    __atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) != EXPORTER_STOPPED) {
		oa_transport_atfork_prepare();
		return;
	}
	if (__atomic_load_n(&ex.state, __ATOMIC_ACQUIRE) == EXPORTER_STOPPED) {
		/* No thread to wait for; taken only if free, so that the child
		 * may keep what the exporter's work built (atfork_child). */
		ex.fork_holds_working = pthread_mutex_trylock(&ex.working) == 0;
	} else {
		struct timespec pause = {0, FORK_POLL_NS};
		for (long waited = 0; __atomic_load_n(&ex.thread_starting, __ATOMIC_ACQUIRE) &&
				      waited < OA_FORK_WAIT_NS;
		     waited += FORK_POLL_NS)
			nanosleep(&pause, NULL);
		ex.fork_holds_working = oa_sys_fork_lock(&ex.working);
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
	bool consistent = ex.fork_holds_working;
	oa_transport_atfork_child();
	/* As for the loader's lock: the forking thread unlocks what it took; a
	 * lock the parent's exporter held is made anew. */
	if (ex.fork_holds_working)
		pthread_mutex_unlock(&ex.working);
	else
		pthread_mutex_init(&ex.working, NULL);
	ex.fork_holds_working = false;
	ex.borrowed = false;
	ex.thread_starting = 0;
	ex.state = EXPORTER_STOPPED;
	ex.sleeping = 0;
	ex.flush_requested = ex.flush_done = 0;
	ex.exit_flush = ex.busy = ex.abandoned = 0;
	oa_process_resource_atfork_child(consistent);
	if (consistent && xs.batch) {
		oa_batch_reset(xs.batch);
	} else {
		xs.batch = NULL;
		xs.syms = NULL;
	}
	xs.resource = NULL;
	memset(&xs.schedule, 0, sizeof xs.schedule);
	xs.set_up = false;
	oa_rings_atfork_child();
	oa_sink_atfork_child();
	oa_rt.queued_estimate = 0;
}
