/* A span's parent, context and record, for every family: the one walk down
 * a thread's function frames to the nearest exported one, the context
 * stack, the sampling of a new span, and the reservation and publication of
 * its record in the thread's ring. */
#include <string.h>
#include <time.h>

#include "payload.h"
#include "process_span.h"
#include "runtime.h"

static void parent_of_frame_slot(struct oa_thread *t, int below, uint32_t level, bool adopt,
				 struct oa_span_ctx *out)
{
	if (!oa_parent_in_level(t, below, level, out) && adopt &&
	    out->span_id == oa_rt.process_ctx.span_id && out->span_id &&
	    !oa_process_span_adopts()) {
		memset(out, 0, sizeof *out);
		out->link_process = true;
	}
}

void oa_current_parent(struct oa_thread *t, struct oa_span_ctx *out)
{
	oa_fork_check(); /* before a frame of the parent's gets an id here */
	uint32_t stored = t->depth < OA_MAX_FRAMES ? t->depth : OA_MAX_FRAMES;
	parent_of_frame_slot(t, (int)stored - 1, t->ctx_depth, true, out);
}

void oa_thread_inherit_context(struct oa_span_ctx *out)
{
	struct oa_thread *t = oa_thread_get();
	if (!t) {
		*out = oa_rt.process_ctx;
		return;
	}
	/* A new thread is no span: the process span adopts (and counts) the
	 * thread's top-level spans when they start. */
	uint32_t stored = t->depth < OA_MAX_FRAMES ? t->depth : OA_MAX_FRAMES;
	parent_of_frame_slot(t, (int)stored - 1, t->ctx_depth, false, out);
}

static bool same_span(const struct oa_span_ctx *a, const struct oa_span_ctx *b)
{
	return a->span_id == b->span_id && memcmp(a->trace_id, b->trace_id, 16) == 0;
}

static bool sample_child(const struct oa_span_ctx *parent)
{
	switch (oa_rt.cfg.sampler) {
	case OA_SAMPLER_PARENTBASED_ALWAYS_ON:
	case OA_SAMPLER_PARENTBASED_ALWAYS_OFF:
	case OA_SAMPLER_PARENTBASED_TRACEIDRATIO:
	case OA_SAMPLER_PARENTBASED_ADAPTIVE:
		return parent->flags & 1;
	case OA_SAMPLER_ADAPTIVE:
		/* The ratio and the budget move: a child deciding again could
		 * drop what its root kept. So only a remote parent is decided
		 * here (an incoming request's), once: the process's own
		 * TRACEPARENT was decided at start-up (lifecycle.c). */
		if (parent->remote && !same_span(parent, &oa_rt.process_ctx))
			return oa_sample_root(parent->trace_id);
		return parent->flags & 1;
	default:
		return oa_sample_root(parent->trace_id);
	}
}

void oa_span_ctx_start(struct oa_thread *t, const struct oa_span_ctx *parent,
		       struct oa_span_ctx *out)
{
	static const uint8_t zero[16];
	if (parent && memcmp(parent->trace_id, zero, 16) != 0) {
		memcpy(out->trace_id, parent->trace_id, 16);
		out->flags = sample_child(parent) ? 1 : 0;
	} else {
		oa_new_trace_id(&t->rng, out->trace_id);
		out->flags = oa_sample_root(out->trace_id) ? 1 : 0;
	}
	out->span_id = oa_new_span_id(&t->rng);
	out->remote = false;
}

bool oa_ctx_push(struct oa_thread *t, const struct oa_span_ctx *ctx)
{
	if (t->ctx_depth + 1 >= OA_MAX_CTX)
		return false;
	/* Field by field: a context just written field by field (as
	 * oa_span_ctx_start does) read back as whole 16-byte words stalls on
	 * store forwarding (perf: the hottest instruction of a manual
	 * span's start). */
	struct oa_span_ctx *top = &t->ctx[++t->ctx_depth];
	memcpy(top->trace_id, ctx->trace_id, 16);
	top->span_id = ctx->span_id;
	top->flags = ctx->flags;
	top->remote = ctx->remote;
	top->link_process = false;
	return true;
}

void oa_ctx_pop(struct oa_thread *t)
{
	if (t->ctx_depth > 0)
		t->ctx_depth--;
}

/* The queue bound (OTEL_BSP_MAX_QUEUE_SIZE) is checked against the
 * exporter's last count of all rings plus what this ring added since: no
 * shared counter is written on the hot path. Once the process exits, the
 * exiting thread's frames are the last spans queued (hooks are off): they
 * need only room in the ring, even while other threads had kept the queue
 * full. */
static bool queue_full(const struct oa_ring *ring)
{
	uint64_t queued =
	    __atomic_load_n(&oa_rt.queued_estimate, __ATOMIC_RELAXED) +
	    (ring->records - __atomic_load_n(&ring->records_at_scan, __ATOMIC_RELAXED));
	return queued >= oa_rt.cfg.max_queue_size &&
	       __atomic_load_n(&oa_rt.state, __ATOMIC_RELAXED) == OA_STATE_ACTIVE;
}

struct oa_record *oa_record_begin(struct oa_thread *t, uint32_t payload_max)
{
	oa_fork_check(); /* before writing into a ring that holds the parent's records */
	uint32_t n_slots = oa_record_slots(payload_max);
	struct oa_ring *ring = t->ring;
	for (;;) {
		bool full_queue = queue_full(ring);
		struct oa_record *rec = full_queue ? NULL : oa_ring_reserve(ring, n_slots);
		if (rec)
			return rec;
		bool can_wait =
		    oa_rt.cfg.backpressure == OA_BACKPRESSURE_BLOCK && !oa_in_vfork_child() &&
		    __atomic_load_n(&oa_rt.state, __ATOMIC_RELAXED) == OA_STATE_ACTIVE &&
		    n_slots <= ring->capacity / 2 &&
		    /* a handler cannot start the exporter it would wait for */
		    (!oa_tls.in_signal || oa_exporter_running());
		if (!can_wait) {
			enum oa_drop_reason why =
			    full_queue ? OA_DROP_QUEUE_FULL : OA_DROP_RING_FULL;
			__atomic_fetch_add(&oa_rt.dropped[why], 1, __ATOMIC_RELAXED);
			return NULL;
		}
		oa_exporter_wake();
		struct timespec pause = {0, 50000};
		nanosleep(&pause, NULL);
	}
}

void oa_record_commit(struct oa_thread *t, struct oa_record *rec)
{
	if (oa_ring_commit(t->ring, rec))
		oa_exporter_wake();
	oa_exporter_start_if_needed();
}

void oa_record_commit_before_flush(struct oa_thread *t, struct oa_record *rec)
{
	oa_ring_commit(t->ring, rec);
}

/* ---- the payload families' builder */

struct oa_record *oa_net_span_begin(struct oa_thread *t, struct oa_payload *w,
				    const struct oa_span_ctx *parent, const struct oa_span_ctx *ctx,
				    enum oa_span_kind kind, enum oa_scope scope, uint64_t start,
				    uint32_t payload_max)
{
	if (!(ctx->flags & 1)) {
		/* the thread's own word: no shared line on the unsampled path */
		__atomic_store_n(&t->ring->sampled_out, t->ring->sampled_out + 1, __ATOMIC_RELAXED);
		return NULL;
	}
	struct oa_record *rec = oa_record_begin(t, payload_max);
	if (!rec)
		return NULL;
	oa_record_head(rec, t, parent, ctx, ctx->span_id, kind, scope, OA_NAME_PAYLOAD, start);
	oa_payload_init(w, rec);
	return rec;
}

void oa_net_span_end(struct oa_thread *t, struct oa_payload *w, uint64_t end, bool error)
{
	w->rec->end = end;
	w->rec->status = error ? OA_STATUS_ERROR : OA_STATUS_UNSET;
	oa_payload_finish(w);
	/* The record keeps the slots its payload used, not the most it could
	 * have: an HTTP span reserves 9 and uses about 3. Only this thread has
	 * seen the reservation; the slots after it are reserved again. */
	w->rec->n_slots = (uint8_t)oa_record_slots(w->rec->payload_len);
	oa_record_commit(t, w->rec);
}
