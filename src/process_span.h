/* The span of a process's lifetime, one per program image: from start-up (or
 * from the fork, for a forked child) to exit (or execve). Named after the
 * executable, parented on the span that started the process (a traced
 * parent's exec, spawn, system or popen span, through TRACEPARENT), and the
 * parent of the process's top-level spans while the process is young: its
 * first OTLPAUTO_PROCESS_TRACE_DURATION and OTLPAUTO_PROCESS_TRACE_SPANS
 * such children. Later top-level spans start traces of their own, linked to
 * it, so that a daemon's trace does not grow for its whole life.
 *
 * A forked child that only execs gets none: its exec span, parented where
 * the fork happened, stands for it. */
#ifndef OTLPAUTO_PROCESS_SPAN_H
#define OTLPAUTO_PROCESS_SPAN_H

#include <stdbool.h>

#include "runtime.h"

/* At start-up: the process span's context (oa_rt.process_ctx), from
 * TRACEPARENT when a traced parent started us. */
void oa_process_span_init(void);
/* In a forked child, on the forking thread (t may be NULL): a new process
 * span, child of what was current at the fork, becomes the context of the
 * child's new spans. */
void oa_process_span_atfork_child(struct oa_thread *t);

void oa_process_span_exit_code(int code);
/* The process dies of this signal (after the flush). */
void oa_process_span_signal(int sig);

/* Called when a span's parent would be the process span: whether it is (the
 * process is young; counted), or the span starts a trace linked to it. */
bool oa_process_span_adopts(void);

/* A function frame names the process span as its parent: the span must be
 * written (frames do not ask oa_process_span_adopts). */
void oa_process_span_used(void);

/* Whether the process span must be written at an exec: not for a forked
 * child that made no span of its own (its exec span then takes *fork_parent). */
bool oa_process_span_needed_at_exec(struct oa_span_ctx *fork_parent);

/* Writes the process span, once: at exit (why OA_END_NORMAL, or
 * OA_END_PROCESS_EXIT for a signal) or before execve (OA_END_EXEC, which
 * the caller flushes next). */
void oa_process_span_end(struct oa_thread *t, enum oa_end_reason why);
/* After a failed execve: the process goes on, so does its span. */
void oa_process_span_resume(void);

#endif
