/* Process-wide state of the shim and the API the hooks use to produce spans.
 * Hot-path rules: after a thread has its state, producing a span does no
 * malloc, lock, string formatting or syscall. */
#ifndef OTLPAUTO_RUNTIME_H
#define OTLPAUTO_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "config.h"
#include "export_model.h"
#include "ids.h"
#include "record.h"
#include "ring.h"
#include "sampling.h"
#include "thread.h"

enum oa_state {
	OA_STATE_UNINIT,
	OA_STATE_INITIALIZING,
	OA_STATE_ACTIVE,
	OA_STATE_OFF,	   /* OTEL_SDK_DISABLED, set-uid, a second copy, or init failed */
	OA_STATE_SHUTDOWN, /* after the final flush: late hooks are no-ops */
};

/* Why spans were not exported; counted, reported at exit with debug logs.
 * New reasons go last: the relay's stats frame carries them in order. */
enum oa_drop_reason {
	OA_DROP_RING_FULL,
	OA_DROP_QUEUE_FULL,
	OA_DROP_EXPORT_FAILED,
	OA_DROP_REJECTED,	  /* partial_success */
	OA_DROP_UNSENT_AT_EXIT,	  /* queued at exit, not sent in the exit timeout */
	OA_DROP_ENDED_AFTER_EXIT, /* a frame that ended after the process began to exit */
	/* an exchange pipelined past those a connection follows (HTTP, Redis,
	 * PostgreSQL, MySQL): seen, given no span */
	OA_DROP_CONNECTION_FULL,
	OA_DROP_COUNT,
};

struct oa_span_ctx {
	uint8_t trace_id[16];
	uint64_t span_id; /* 0: no span (a root starts here) */
	uint8_t flags;	  /* W3C flags: bit 0 sampled */
	bool remote;
	/* No parent, where the process span would have been one had the process
	 * been young: the span starting here links to it (OA_REC_F_LINK_PROCESS). */
	bool link_process;
};

/* A record's parent flags for a span whose parent is `parent`. */
static inline uint8_t oa_rec_flags(const struct oa_span_ctx *parent)
{
	return (uint8_t)((parent->span_id ? OA_REC_F_HAS_PARENT : 0) |
			 (parent->span_id && parent->remote ? OA_REC_F_PARENT_REMOTE : 0) |
			 (parent->link_process ? OA_REC_F_LINK_PROCESS : 0));
}

struct oa_runtime {
	int state; /* enum oa_state, atomic */
	struct oa_config cfg;
	pid_t pid;
	struct oa_span_ctx process_ctx; /* the process span: parent of top-level spans */
	uint64_t function_threshold_ticks;
	/* Function frames below this depth are pushed on the hooks' fast path:
	 * min(shadow stack, OTLPAUTO_FUNCTION_MAX_DEPTH) while active with a
	 * usable TSC, else 0 (every entry takes the slow path). */
	uint32_t function_push_limit;
	uint64_t stacktrace_threshold_ticks;
	bool relay_only; /* `otlpauto run` hosting the relay: traces nothing itself */
	/* Counters, atomic, on lines of their own: the fields above are read by
	 * every hook, and a counter the exporter bumps beside them would take
	 * the line from every producer's cache each time. */
	_Alignas(64) uint64_t spans_sampled_out;
	uint64_t spans_exported;
	uint64_t spans_relayed; /* handed to the relay host, which exports them */
	uint64_t dropped[OA_DROP_COUNT];
	/* Database clients' queries sent with (without) their span's comment
	 * while OTLPAUTO_DB_PROPAGATION=comment. */
	uint64_t db_queries_commented, db_queries_uncommented;
	/* The exporter's estimate of spans queued in all rings: written once
	 * per scan, read by producers for every record. */
	_Alignas(64) uint64_t queued_estimate;
};

extern struct oa_runtime oa_rt;

/* Shadow-stack frame of an instrumented function. */
struct oa_frame {
	uintptr_t fn;
	uint64_t start;
	uint64_t span_id;   /* 0 until a child needs it or it is exported */
	uint32_t ctx_level; /* the context stack depth when it was entered */
	union {
		struct {
			uint8_t filter;	 /* enum oa_frame_filter, decided at entry */
			uint8_t foreign; /* open at fork in the parent: the child never sends it */
		};
		/* Both at once: 0 is the common case of the exit hook's fast path. */
		uint16_t state;
	};
};

enum oa_frame_filter {
	OA_FILTER_INCLUDED,
	OA_FILTER_EXCLUDED,
	/* Included, its start in ns (no usable TSC): its exit takes the slow path. */
	OA_FILTER_INCLUDED_NS,
};

#define OA_MAX_FRAMES 1024
#define OA_MAX_CTX    64

struct oa_thread {
	struct oa_ring *ring;
	struct oa_rng rng;
	uint32_t tid;
	/* Context stack: [0] is the thread's inherited context; other families
	 * (HTTP server spans, manual spans) push their span while it is open. */
	uint32_t ctx_depth;
	struct oa_span_ctx ctx[OA_MAX_CTX];
	/* Function shadow stack. depth can exceed OA_MAX_FRAMES: frames beyond
	 * it are counted, not stored. */
	uint32_t depth;
	uint64_t frames_overflowed;
	struct oa_frame frames[OA_MAX_FRAMES];
};

/* Fast check every hook makes first: active, not internal, not nested.
 * Lazily initialises the runtime when a hook runs before our constructor. */
bool oa_init_slow(void);
static inline bool oa_active(void)
{
	int state = __atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE);
	if (__builtin_expect(state == OA_STATE_ACTIVE, 1))
		return true;
	return state == OA_STATE_UNINIT && oa_init_slow();
}

/* Enter/leave a hook's own work. enter fails when nested, internal or off. */
static inline bool oa_hook_enter(void)
{
	if (oa_tls.guard || oa_tls.internal || !oa_active())
		return false;
	oa_tls.guard = 1;
	/* A compiler barrier: with everything between inlined, the guard
	 * would otherwise be a dead store, or the work moved out from under
	 * it, and a signal handler's hooks would not pass through. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return true;
}

static inline void oa_hook_leave(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	oa_tls.guard = 0;
}

/* Nonzero in the process that set it; the kernel zeroes its page in every
 * child made by a fork-like clone (MADV_WIPEONFORK), so a process that finds
 * it zero is a forked child not yet reset: one made without our atfork
 * handlers (_Fork, clone, syscall(SYS_fork)), or one whose atfork handlers
 * have not run yet. Checked where a child would otherwise act on its
 * parent's state: a span's parent or record, thread-state creation, the
 * exporter's start and flush (exit, exec). Points at a constant 1 where the
 * kernel lacks MADV_WIPEONFORK. */
extern uint32_t *oa_fork_mark;
/* Resets a forked child as the atfork child handler does (lifecycle.c). */
void oa_forked_child_reset(void);
static inline void oa_fork_check(void)
{
	if (__builtin_expect(!__atomic_load_n(oa_fork_mark, __ATOMIC_RELAXED), 0))
		oa_forked_child_reset();
}

/* The calling thread's state, created on first use; NULL when memory is
 * short. Call between oa_hook_enter/leave. */
struct oa_thread *oa_thread_slow(void);
static inline struct oa_thread *oa_thread_get(void)
{
	struct oa_thread *t = oa_tls.state;
	if (__builtin_expect(t != NULL, 1))
		return t;
	return oa_thread_slow();
}

/* Spans of every family (span.c). */

/* The parent a span starting now gets: the nearest exported function frame in
 * the current context (its id assigned now if needed), else the context. */
void oa_current_parent(struct oa_thread *t, struct oa_span_ctx *out);

/* The one walk down the function frames: the parent, in context level
 * `level`, of a span above frame slot `below` is the nearest frame at or
 * below it in that level that is exported (its id assigned now if needed),
 * else the level's context. True when a frame is the parent. Inline: a
 * function span's exit takes it for every span. */
static inline bool oa_parent_in_level(struct oa_thread *t, int below, uint32_t level,
				      struct oa_span_ctx *out)
{
	*out = t->ctx[level];
	for (int i = below; i >= 0; i--) {
		struct oa_frame *f = &t->frames[i];
		if (f->ctx_level != level)
			return false;
		if (f->filter != OA_FILTER_EXCLUDED) {
			if (!f->span_id)
				f->span_id = oa_new_span_id(&t->rng);
			out->span_id = f->span_id;
			out->remote = false;
			return true;
		}
	}
	return false;
}

/* The parent of the span of frame slot `index`, in its context level. */
static inline void oa_frame_parent(struct oa_thread *t, uint32_t index, struct oa_span_ctx *out)
{
	const struct oa_frame *f = &t->frames[index];
	uint32_t level = f->ctx_level <= t->ctx_depth ? f->ctx_level : t->ctx_depth;
	oa_parent_in_level(t, (int)index - 1, level, out);
}

/* Starts a new span context for a span beginning now (HTTP server, manual):
 * child of `parent`, or a new root (sampled per the sampler) when parent is
 * NULL or has no trace. */
void oa_span_ctx_start(struct oa_thread *t, const struct oa_span_ctx *parent,
		       struct oa_span_ctx *out);
bool oa_ctx_push(struct oa_thread *t, const struct oa_span_ctx *ctx);
void oa_ctx_pop(struct oa_thread *t);

/* Reserves a record with room for payload_max payload bytes; NULL when the
 * span is dropped (ring full, counted). The caller fills it and commits. */
struct oa_record *oa_record_begin(struct oa_thread *t, uint32_t payload_max);
void oa_record_commit(struct oa_thread *t, struct oa_record *rec);
/* Commits without starting or waking the exporter: the caller flushes next
 * (exec, exit), which may export inline without a thread. */
void oa_record_commit_before_flush(struct oa_thread *t, struct oa_record *rec);
/* The header every family's span record starts with: span span_id in ctx's
 * trace (with its sampling flags), child of parent, on thread t, from start;
 * its status unset, ended normally, no subject. The family sets what differs,
 * the end and the payload. */
static inline void oa_record_head(struct oa_record *rec, const struct oa_thread *t,
				  const struct oa_span_ctx *parent, const struct oa_span_ctx *ctx,
				  uint64_t span_id, enum oa_span_kind kind, enum oa_scope scope,
				  enum oa_name_source name_source, uint64_t start)
{
	rec->kind = (uint8_t)kind;
	rec->status = OA_STATUS_UNSET;
	rec->scope = (uint8_t)scope;
	rec->name_source = (uint8_t)name_source;
	rec->trace_flags = ctx->flags;
	rec->rec_flags = oa_rec_flags(parent);
	rec->end_reason = OA_END_NORMAL;
	rec->reserved = 0;
	rec->tid = t->tid;
	memcpy(rec->trace_id, ctx->trace_id, 16);
	rec->span_id = span_id;
	rec->parent_span_id = parent->span_id;
	rec->start = start;
	rec->subject = 0;
}

/* The span builder of the families whose spans carry a payload (sockets,
 * DNS, HTTP, databases, TLS, files): starts a record as a child of parent,
 * its header filled in; NULL when ctx is not sampled (counted in the
 * thread's ring) or the ring is full. The caller writes the payload through
 * w and calls oa_net_span_end, which keeps the slots the payload used. */
struct oa_payload;
struct oa_record *oa_net_span_begin(struct oa_thread *t, struct oa_payload *w,
				    const struct oa_span_ctx *parent, const struct oa_span_ctx *ctx,
				    enum oa_span_kind kind, enum oa_scope scope, uint64_t start,
				    uint32_t payload_max);
void oa_net_span_end(struct oa_thread *t, struct oa_payload *w, uint64_t end, bool error);

/* Sampling decision for a new root span with this trace id (sampler.c). */
bool oa_sample_root(const uint8_t trace_id[16]);
bool oa_adaptive_keeps(const uint8_t trace_id[16]);
double oa_adaptive_ratio(void);

/* Exporter control (exporter.c). */
void oa_exporter_wake(void);
/* Starts the exporter thread on the first span (and again in a forked child),
 * not in a signal handler: the next span outside one does. */
void oa_exporter_start_if_needed(void);
/* Whether the exporter thread is started (or starting). */
bool oa_exporter_running(void);
/* Exports everything produced so far; waits at most timeout_ms. */
void oa_exporter_flush(uint32_t timeout_ms);
/* Exec (hooks/process.c), on the calling thread with the exporter paused:
 * begin exports everything committed (into handoff_fd, a file the new
 * program reads, when >= 0; else to the relay or the collector); tentative
 * exports what was written since as tentative (the relay holds it until the
 * exec succeeded; a hand-over file is only read by the new program) and
 * says whether all of it was held back so; failed undoes the tentative part
 * and resumes the exporter. */
void oa_exporter_exec_begin(int handoff_fd, uint64_t deadline_ns);
bool oa_exporter_exec_tentative(uint64_t deadline_ns);
void oa_exporter_exec_failed(void);
/* Before a chroot, a set-id call or a namespace change: opens now what the
 * exporter will need (output file, libcurl, symbol tables), unless a relay
 * sends for this process. */
void oa_exporter_before_confinement(void);
/* In a new program: sends what the previous one handed over (OTLPAUTO_HANDOFF). */
void oa_exporter_adopt_handoff(const char *value);
/* The final flush: exports what is queued and counts what it cannot send as
 * OA_DROP_UNSENT_AT_EXIT, returning within timeout_ns. async: from a signal
 * handler or _exit, where only async-signal-safe calls may be made (the
 * exporter thread is not started then; without one, a relay client or the
 * file exports here on memory of its own, src/mem.h, unless
 * `interrupted_hook`: the signal came inside our code, whose state may be
 * half updated). */
void oa_exporter_exit_flush(uint64_t timeout_ns, bool async, bool interrupted_hook);
void oa_exporter_atfork_prepare(void);
void oa_exporter_atfork_parent(void);
void oa_exporter_atfork_child(void);

/* Threads (thread.c). */
void oa_thread_atfork_child(void);
/* Manual API spans open at a fork are the parent's (api.c). */
void oa_api_atfork_child(void);
void oa_thread_system_init(void);
/* The context a thread created now inherits (pthread_create; span.c). */
void oa_thread_inherit_context(struct oa_span_ctx *out);
/* Marks the calling thread internal with the given inherited context. */
void oa_thread_start(const struct oa_span_ctx *inherited, bool internal);

#endif
