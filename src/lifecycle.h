#ifndef OTLPAUTO_LIFECYCLE_H
#define OTLPAUTO_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>

/* Ends the calling thread's frames and flushes within OTLPAUTO_EXIT_TIMEOUT;
 * later hooks are no-ops. From the destructor. */
void oa_process_exit(void);
/* Forks made without atfork handlers (_Fork, clone: hooks/process.c) do
 * what the handlers do but wait for nothing: fix, in the parent, the id of
 * the frame the child will parent on; reset the child (also after a fork
 * with the handlers, and from oa_fork_check: the first to run does it). */
void oa_fork_fix_parent(void);
void oa_fork_child(void);
/* The same with async-signal-safe calls only: from signal handlers and the
 * _exit hooks (the exporter thread is not started if it is not running). */
void oa_process_exit_async(void);
/* "NAME=value" entries of OTEL_* and OTLPAUTO_* variables at start-up. */
const char *const *oa_saved_settings(size_t *n);
/* The entry a program started from here gets when this process warned about
 * its settings ("" otherwise): with the same settings, it does not again. */
#define OA_SETTINGS_WARNED_ENV "OTLPAUTO_SETTINGS_WARNED"
const char *oa_settings_warned_entry(void);
/* Whether this process may host a relay for the processes it starts. */
bool oa_can_host_relay(void);
/* The path this library was loaded from (for LD_PRELOAD of exec'd programs). */
const char *oa_self_path(void);

#endif
