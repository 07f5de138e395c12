#include "process_span.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "payload.h"
#include "self.h"
#include "traceparent.h"

static struct {
	struct oa_span_ctx parent; /* what started the process; span_id 0: none */
	uint64_t start;		   /* ticks */
	uint64_t young_until;	   /* ticks */
	uint32_t adopted;	   /* top-level spans given to it (atomic) */
	bool forked;		   /* started by fork, not by exec */
	bool used;		   /* a span named it as parent (atomic) */
	bool ended;
	bool has_exit_code;
	int exit_code;
	int signal;
	pid_t parent_pid;
	char exe_name[256];
} ps;

static void read_exe_name(void)
{
	const char *path = oa_self_exe_path();
	const char *name = program_invocation_short_name;
	if (path[0]) {
		const char *slash = strrchr(path, '/');
		name = slash ? slash + 1 : path;
	}
	size_t len = strnlen(name, sizeof ps.exe_name - 1);
	memcpy(ps.exe_name, name, len);
	ps.exe_name[len] = '\0';
}

static void start_now(void)
{
	ps.start = oa_now();
	ps.young_until = ps.start + oa_clock_ns_to_ticks(oa_rt.cfg.process_trace_ns);
	ps.adopted = 0;
	ps.used = false;
	ps.ended = false;
	ps.has_exit_code = false;
	ps.signal = 0;
	ps.parent_pid = getppid();
}

/* Process spans are written only with the process family on (exit and exec
 * hooks); without it, no span may name one as its parent. */
static bool written(void)
{
	return (oa_rt.cfg.hooks & OA_HOOK_PROCESS) != 0;
}

static bool sampled_from_parent(const struct oa_span_ctx *parent)
{
	switch (oa_rt.cfg.sampler) {
	case OA_SAMPLER_ALWAYS_ON:
	case OA_SAMPLER_ALWAYS_OFF:
	case OA_SAMPLER_TRACEIDRATIO:
	case OA_SAMPLER_ADAPTIVE:
		return oa_sample_root(parent->trace_id);
	default:
		return parent->flags & 1;
	}
}

void oa_process_span_init(void)
{
	struct oa_rng rng;
	oa_rng_seed(&rng);
	struct oa_span_ctx *pc = &oa_rt.process_ctx;
	memset(&ps.parent, 0, sizeof ps.parent);
	struct oa_span_context remote;
	const char *tp = getenv("TRACEPARENT");
	if (tp && oa_traceparent_parse(tp, strlen(tp), &remote)) {
		memcpy(ps.parent.trace_id, remote.trace_id, 16);
		ps.parent.span_id = oa_span_id_from_bytes(remote.span_id);
		ps.parent.flags = remote.flags & 1;
		ps.parent.remote = true;
		memcpy(pc->trace_id, remote.trace_id, 16);
		pc->flags = sampled_from_parent(&ps.parent) ? 1 : 0;
	} else {
		oa_new_trace_id(&rng, pc->trace_id);
		pc->flags = oa_sample_root(pc->trace_id) ? 1 : 0;
	}
	pc->span_id = oa_new_span_id(&rng);
	pc->remote = false;
	pc->link_process = false;
	if (!written()) {
		/* Top-level spans are roots of the process's trace, or children of
		 * the span TRACEPARENT names. */
		pc->span_id = ps.parent.span_id;
		pc->remote = ps.parent.remote;
	}
	ps.forked = false;
	read_exe_name();
	start_now();
}

void oa_process_span_atfork_child(struct oa_thread *t)
{
	/* Without process spans, the child's spans parent on the frames it
	 * inherited, or on the process context, as the parent's do. */
	if (!written())
		return;
	struct oa_span_ctx parent = oa_rt.process_ctx;
	if (t)
		oa_current_parent(t, &parent);
	ps.parent = parent;
	ps.parent.link_process = false;
	struct oa_span_ctx *pc = &oa_rt.process_ctx;
	struct oa_rng rng;
	oa_rng_seed(&rng);
	if (parent.span_id || parent.link_process) {
		memcpy(pc->trace_id, parent.trace_id, 16);
		pc->flags = parent.flags;
	}
	if (!parent.span_id) {
		oa_new_trace_id(&rng, pc->trace_id);
		pc->flags = oa_sample_root(pc->trace_id) ? 1 : 0;
	}
	pc->span_id = oa_new_span_id(&rng);
	pc->remote = false;
	pc->link_process = false;
	ps.forked = true;
	start_now();
	/* The child's new spans sit above the frames it inherited. */
	if (t)
		oa_ctx_push(t, pc);
}

void oa_process_span_exit_code(int code)
{
	ps.exit_code = code;
	ps.has_exit_code = true;
}

void oa_process_span_signal(int sig)
{
	ps.signal = sig;
}

bool oa_process_span_adopts(void)
{
	if (!written()) /* the process context is TRACEPARENT's span: always its parent */
		return true;
	__atomic_store_n(&ps.used, true, __ATOMIC_RELAXED);
	if (__atomic_load_n(&ps.adopted, __ATOMIC_RELAXED) >= oa_rt.cfg.process_trace_spans ||
	    oa_now() >= ps.young_until)
		return false;
	/* Bumped only while young: at most process_trace_spans writes. */
	return __atomic_fetch_add(&ps.adopted, 1, __ATOMIC_RELAXED) < oa_rt.cfg.process_trace_spans;
}

void oa_process_span_used(void)
{
	__atomic_store_n(&ps.used, true, __ATOMIC_RELAXED);
}

bool oa_process_span_needed_at_exec(struct oa_span_ctx *fork_parent)
{
	if (!ps.forked || __atomic_load_n(&ps.used, __ATOMIC_RELAXED))
		return true;
	*fork_parent = ps.parent;
	return false;
}

void oa_process_span_resume(void)
{
	ps.ended = false;
}

static const char *signal_name(int sig, char *buf, size_t size)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, size, "SIG%s", abbrev);
	else
		snprintf(buf, size, "signal %d", sig);
	return buf;
}

void oa_process_span_end(struct oa_thread *t, enum oa_end_reason why)
{
	const struct oa_span_ctx *ctx = &oa_rt.process_ctx;
	if (ps.ended)
		return;
	ps.ended = true;
	if (!(ctx->flags & 1)) {
		__atomic_fetch_add(&oa_rt.spans_sampled_out, 1, __ATOMIC_RELAXED);
		return;
	}
	char sig[32] = "";
	if (ps.signal)
		signal_name(ps.signal, sig, sizeof sig);
	size_t name_len = strlen(ps.exe_name), sig_len = strlen(sig);
	struct oa_record *rec = oa_record_begin(
	    t, (uint32_t)(2 * (3 + name_len) + 3 * 11 + 11 + 2 * (5 + sig_len) + 8));
	if (!rec)
		return;
	oa_record_head(rec, t, &ps.parent, ctx, ctx->span_id, OA_KIND_INTERNAL, OA_SCOPE_PROCESS,
		       OA_NAME_PAYLOAD, ps.start);
	rec->status = ps.signal ? OA_STATUS_ERROR : OA_STATUS_UNSET;
	rec->rec_flags |= OA_REC_F_PROCESS_SPAN;
	rec->end_reason = (uint8_t)why;
	rec->end = oa_now();
	struct oa_payload w;
	oa_payload_init(&w, rec);
	oa_payload_text(&w, OA_ITEM_NAME, ps.exe_name, name_len);
	oa_payload_attr_int(&w, OA_KEY_PROCESS_PID, oa_rt.pid);
	oa_payload_attr_int(&w, OA_KEY_PROCESS_PARENT_PID, ps.parent_pid);
	oa_payload_attr_str(&w, OA_KEY_PROCESS_EXECUTABLE_NAME, ps.exe_name, name_len);
	if (why == OA_END_EXEC)
		oa_payload_attr_static(&w, OA_KEY_OTLPAUTO_END_REASON, "exec");
	else if (ps.has_exit_code && !ps.signal)
		oa_payload_attr_int(&w, OA_KEY_PROCESS_EXIT_CODE, ps.exit_code);
	if (ps.signal) {
		oa_payload_attr_str(&w, OA_KEY_ERROR_TYPE, sig, sig_len);
		oa_payload_text(&w, OA_ITEM_STATUS_MSG, sig, sig_len);
	}
	oa_payload_finish(&w);
	oa_record_commit_before_flush(t, rec);
}
