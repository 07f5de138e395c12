/* Hook families plug into the core here. A family that acts at start-up, at
 * a fork or at exit defines one struct oa_family with OA_FAMILY; the core
 * calls every registered family at those moments and never names a hook.
 * The table is a linker section whose bounds the linker defines: it is
 * complete before any code runs, as it must be, since a hook may initialise
 * the runtime before any constructor has run. Families are called in no set
 * order: none depends on another. */
#ifndef OTLPAUTO_FAMILY_H
#define OTLPAUTO_FAMILY_H

#include <stdbool.h>

#include "record.h"

struct oa_thread;

struct oa_family {
	const char *name;
	/* While the runtime initialises, before any hook is active. */
	void (*init)(void);
	/* Once the runtime is active. */
	void (*start)(void);
	/* In the parent, before a fork (not before _Fork or clone): lookups
	 * done once here are inherited instead of repeated in every child. */
	void (*atfork_prepare)(void);
	/* In a forked child, from the atfork handler or the first check that
	 * finds the fork (runtime.h: oa_fork_check): system calls and stores
	 * only, as a child of _Fork may take no lock. */
	void (*atfork_child)(void);
	/* The calling thread ends, or its image does (exec, process exit):
	 * the spans the family holds open on it end for `why`. */
	void (*thread_exit)(struct oa_thread *t, enum oa_end_reason why);
	/* The process exits, after its threads' spans ended and before the
	 * process span and the final flush; async: from a signal handler or
	 * _exit, where only async-signal-safe calls may be made. */
	void (*process_exit)(bool async);
};

#define OA_FAMILY(id)                                                                              \
	__attribute__((used, section("oa_families"), aligned(sizeof(void *))))                     \
	const struct oa_family oa_family_##id

/* Each calls that callback of every family that has one. */
void oa_families_init(void);
void oa_families_start(void);
void oa_families_atfork_prepare(void);
void oa_families_atfork_child(void);
void oa_families_thread_exit(struct oa_thread *t, enum oa_end_reason why);
void oa_families_process_exit(bool async);

#endif
