/* -finstrument-functions hooks: push and pop a per-thread shadow stack; on
 * exit, a call that is slow enough (or that a child or a forked process
 * already named as parent) becomes one span record. Names are resolved by
 * the exporter, never here. */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "lifecycle.h"
#include "log.h"
#include "payload.h"
#include "runtime.h"
#include "stack.h"
#include "symbols.h"

#define OA_EXPORT __attribute__((visibility("default")))

/* Name-filter decisions per function address, computed once at start-up
 * from the symbol tables so the hot path does one lookup, not a match. */
static struct {
	uintptr_t *addrs;
	uint8_t *decisions;
	size_t mask;
	bool active; /* include/exclude patterns or a max depth are set */
	bool unknown_included; /* decision for addresses not in the table */
} filter;

static bool glob_list_match(const struct oa_str_list *globs, const char *name)
{
	for (size_t i = 0; i < globs->n; i++)
		if (fnmatch(globs->items[i], name, 0) == 0)
			return true;
	return false;
}

static void filter_insert(uintptr_t addr, const char *name, void *ctx)
{
	(void)ctx;
	const struct oa_config *cfg = &oa_rt.cfg;
	bool included = (cfg->function_include.n == 0 || glob_list_match(&cfg->function_include, name)) &&
			!glob_list_match(&cfg->function_exclude, name);
	size_t i = (addr >> 4) & filter.mask;
	while (filter.addrs[i] && filter.addrs[i] != addr)
		i = (i + 1) & filter.mask;
	/* An address with several names (aliases) is included if any name is. */
	if (filter.addrs[i] == addr && filter.decisions[i] == OA_FILTER_INCLUDED)
		return;
	filter.addrs[i] = addr;
	filter.decisions[i] = included ? OA_FILTER_INCLUDED : OA_FILTER_EXCLUDED;
}

static void count_function(uintptr_t addr, const char *name, void *ctx)
{
	(void)addr;
	(void)name;
	(*(size_t *)ctx)++;
}

void oa_functions_init(void)
{
	const struct oa_config *cfg = &oa_rt.cfg;
	bool by_name = cfg->function_include.n || cfg->function_exclude.n;
	filter.active = by_name || cfg->function_max_depth != OA_LIMIT_NONE;
	filter.unknown_included = cfg->function_include.n == 0;
	if (!by_name)
		return;
	struct oa_symbols *syms = oa_symbols_create();
	if (!syms)
		return;
	size_t n = 0;
	oa_symbols_foreach_function(syms, count_function, &n);
	size_t cap = 64;
	while (cap < n * 2)
		cap <<= 1;
	filter.addrs = calloc(cap, sizeof *filter.addrs);
	filter.decisions = calloc(cap, 1);
	if (filter.addrs && filter.decisions) {
		filter.mask = cap - 1;
		oa_symbols_foreach_function(syms, filter_insert, NULL);
	} else {
		free(filter.addrs);
		free(filter.decisions);
		filter.addrs = NULL;
		filter.decisions = NULL;
	}
	oa_symbols_destroy(syms);
}

static uint8_t name_decision(uintptr_t fn)
{
	if (!filter.addrs)
		return filter.unknown_included ? OA_FILTER_INCLUDED : OA_FILTER_EXCLUDED;
	size_t i = (fn >> 4) & filter.mask;
	while (filter.addrs[i]) {
		if (filter.addrs[i] == fn)
			return filter.decisions[i];
		i = (i + 1) & filter.mask;
	}
	return filter.unknown_included ? OA_FILTER_INCLUDED : OA_FILTER_EXCLUDED;
}

uint8_t oa_function_filter(struct oa_thread *t, uint32_t index);
uint8_t oa_function_filter(struct oa_thread *t, uint32_t index)
{
	if (!filter.active)
		return OA_FILTER_INCLUDED;
	struct oa_frame *f = &t->frames[index];
	if (f->filter == OA_FILTER_UNKNOWN) {
		if (index + 1 > oa_rt.cfg.function_max_depth)
			f->filter = OA_FILTER_EXCLUDED;
		else
			f->filter = name_decision(f->fn);
	}
	return f->filter;
}

static const char *const end_reason_names[] = {
	[OA_END_PROCESS_EXIT] = "process_exit",
	[OA_END_THREAD_EXIT] = "thread_exit",
	[OA_END_EXEC] = "exec",
	[OA_END_UNWOUND] = "unwound",
};

void oa_frame_export(struct oa_thread *t, uint32_t index, uint64_t end, enum oa_end_reason why);
void oa_frame_export(struct oa_thread *t, uint32_t index, uint64_t end, enum oa_end_reason why)
{
	struct oa_frame *f = &t->frames[index];
	if (f->foreign)
		return;
	if (!f->span_id && (end - f->start < oa_rt.function_threshold_ticks ||
			    oa_function_filter(t, index) != OA_FILTER_INCLUDED))
		return;
	/* Sent now (or never, if unsampled): a later pop of this frame must not
	 * send it again. */
	f->foreign = 1;
	uint32_t level = f->ctx_level <= t->ctx_depth ? f->ctx_level : t->ctx_depth;
	struct oa_span_ctx parent = t->ctx[level];
	for (int i = (int)index - 1; i >= 0; i--) {
		struct oa_frame *p = &t->frames[i];
		if (p->ctx_level != level)
			break;
		if (oa_function_filter(t, (uint32_t)i) == OA_FILTER_INCLUDED) {
			if (!p->span_id)
				p->span_id = oa_new_span_id(&t->rng);
			parent.span_id = p->span_id;
			parent.remote = false;
			break;
		}
	}
	if (!(parent.flags & 1)) {
		__atomic_fetch_add(&oa_rt.spans_sampled_out, 1, __ATOMIC_RELAXED);
		return;
	}
	if (!f->span_id)
		f->span_id = oa_new_span_id(&t->rng);
	bool with_stack = why == OA_END_NORMAL && oa_rt.cfg.stacktrace &&
			  end - f->start >= oa_rt.stacktrace_threshold_ticks;
	struct oa_record *rec = oa_record_begin(
		t, (why == OA_END_NORMAL ? 0 : 3 + 8) + (with_stack ? OA_STACK_PAYLOAD : 0));
	if (!rec)
		return;
	rec->kind = OA_KIND_INTERNAL;
	rec->status = OA_STATUS_UNSET;
	rec->scope = OA_SCOPE_FUNCTIONS;
	rec->name_source = OA_NAME_FUNCTION;
	rec->trace_flags = parent.flags;
	rec->rec_flags = (parent.span_id ? OA_REC_F_HAS_PARENT : 0) |
			 (parent.remote ? OA_REC_F_PARENT_REMOTE : 0);
	rec->end_reason = (uint8_t)why;
	rec->tid = t->tid;
	memcpy(rec->trace_id, parent.trace_id, 16);
	rec->span_id = f->span_id;
	rec->parent_span_id = parent.span_id;
	rec->start = f->start;
	rec->end = end;
	rec->subject = f->fn;
	struct oa_payload w;
	oa_payload_init(&w, rec);
	if (why != OA_END_NORMAL)
		oa_payload_attr_static(&w, OA_KEY_OTLPAUTO_END_REASON, end_reason_names[why]);
	if (with_stack)
		oa_payload_stack(&w);
	oa_payload_finish(&w);
	oa_record_commit(t, rec);
}

OA_EXPORT void __cyg_profile_func_enter(void *fn, void *call_site)
{
	(void)call_site;
	if (oa_tls.guard || oa_tls.internal || !oa_active())
		return;
	struct oa_thread *t = oa_tls.state;
	oa_tls.guard = 1;
	if (__builtin_expect((uintptr_t)t <= 1, 0)) {
		int saved = errno;
		t = oa_thread_get();
		errno = saved;
		if (!t) {
			oa_tls.guard = 0;
			return;
		}
	}
	uint32_t d = t->depth;
	if (__builtin_expect(d < OA_MAX_FRAMES, 1)) {
		struct oa_frame *f = &t->frames[d];
		f->fn = (uintptr_t)fn;
		f->span_id = 0;
		f->ctx_level = t->ctx_depth;
		f->filter = OA_FILTER_UNKNOWN;
		f->foreign = 0;
		f->start = oa_now();
	} else {
		t->frames_overflowed++;
	}
	t->depth = d + 1;
	oa_tls.guard = 0;
}

/* An exit whose frame is not on top: calls between were left by longjmp or
 * an exception. Those frames end now; returns the matching index or -1. */
static int resync(struct oa_thread *t, uintptr_t fn, uint64_t now)
{
	uint32_t top = t->depth < OA_MAX_FRAMES ? t->depth : OA_MAX_FRAMES;
	for (int i = (int)top - 1; i >= 0; i--) {
		if (t->frames[i].fn != fn)
			continue;
		for (int j = (int)top - 1; j > i; j--)
			oa_frame_export(t, (uint32_t)j, now, OA_END_UNWOUND);
		t->depth = (uint32_t)i + 1;
		return i;
	}
	return -1;
}

OA_EXPORT void __cyg_profile_func_exit(void *fn, void *call_site)
{
	(void)call_site;
	struct oa_thread *t = oa_tls.state;
	if (oa_tls.guard || (uintptr_t)t <= 1 || t->depth == 0)
		return;
	oa_tls.guard = 1;
	uint64_t now = oa_now();
	uint32_t d = t->depth - 1;
	if (d >= OA_MAX_FRAMES) {
		t->depth = d;
		oa_tls.guard = 0;
		return;
	}
	if (__builtin_expect(t->frames[d].fn != (uintptr_t)fn, 0)) {
		int i = resync(t, (uintptr_t)fn, now);
		if (i < 0) {
			/* Its enter came before we were active: not ours. */
			oa_tls.guard = 0;
			return;
		}
		d = (uint32_t)i;
	}
	struct oa_frame *f = &t->frames[d];
	if (!f->foreign && (f->span_id || now - f->start >= oa_rt.function_threshold_ticks)) {
		int saved = errno;
		oa_frame_export(t, d, now, OA_END_NORMAL);
		errno = saved;
	}
	t->depth = d;
	oa_tls.guard = 0;
}
