/* Per-thread state. The TLS block is initial-exec (no allocation, no lock on
 * access, usable from signal handlers) and holds only the reentrancy guard,
 * the internal-thread mark and a pointer to the lazily created state. */
#ifndef OTLPAUTO_THREAD_H
#define OTLPAUTO_THREAD_H

#include <stdbool.h>
#include <stdint.h>

struct oa_thread;

struct oa_tls {
	uint32_t guard;	  /* > 0 while inside a hook: nested hooks pass through */
	uint8_t internal; /* the exporter thread and threads it creates (libcurl's) */
	/* > 0 across vfork: in the child, which runs with its parent thread's
	 * TLS and memory until it execs or exits (hooks/process.c). */
	uint8_t vfork_child;
	/* > 0 while a handler of the program's runs (hooks/signals.c): its
	 * _exit must take the async-signal-safe exit path. */
	uint8_t in_signal;
	struct oa_thread *state;
};

extern __thread struct oa_tls oa_tls __attribute__((tls_model("initial-exec")));

/* Renames of one thread by another (pthread_setname_np): the exporter reads
 * every live thread's name from /proc again when it changes. */
extern uint32_t oa_thread_renames;

/* A rename the program made succeeded: `self` when the calling thread renamed
 * itself (then its ring takes the name, no /proc read needed). */
void oa_thread_renamed(bool self, const char *name);
/* In a vfork child: its descriptors and signal dispositions are its own,
 * but its memory (our tables) is its parent's. */
static inline bool oa_in_vfork_child(void)
{
	return oa_tls.vfork_child != 0;
}

/* True for threads whose every libc call must stay invisible (ours). */
static inline bool oa_thread_is_internal(void)
{
	return oa_tls.internal != 0;
}

#endif
