/* The exporter side's memory. The C library's, except while a signal
 * handler exports the spans of a process that has no exporter thread (a
 * relay client, the file): malloc is not async-signal-safe (the signal may
 * have interrupted it holding its lock), so from oa_mem_signal_safe_begin
 * on, memory comes from pages mapped for the purpose and is never given
 * back (the process is about to die of the signal). Libraries that allocate
 * by themselves (libelf, libcurl) are not called then. */
#ifndef OTLPAUTO_MEM_H
#define OTLPAUTO_MEM_H

#include <stdbool.h>
#include <stddef.h>

void *oa_malloc(size_t size);
void *oa_calloc(size_t n, size_t size);
void *oa_realloc(void *p, size_t size);
void oa_free(void *p);
char *oa_strdup(const char *s);

/* From here on (for good), the functions above use the mapped pages; false
 * when they cannot be mapped. Async-signal-safe. */
bool oa_mem_signal_safe_begin(void);
/* Whether they do: callers then take no lock they could wait for. */
bool oa_mem_signal_safe(void);

#endif
