/* Diagnostics: one line each, prefixed "otlpauto: ", written straight to
 * fd 2 with a raw syscall so no hook (ours or another preload's) sees it. */
#ifndef OTLPAUTO_LOG_H
#define OTLPAUTO_LOG_H

#include "config.h"

extern enum oa_log_level oa_log_threshold;
/* Warnings written (or handed to the sink) so far. */
extern unsigned oa_log_warnings;

void oa_log(enum oa_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line of plain text, without formatting: async-signal-safe. */
void oa_log_text(enum oa_log_level level, const char *text);

/* Tests capture lines instead of writing them; NULL restores stderr. */
typedef void (*oa_log_sink_fn)(const char *line);
void oa_log_set_sink(oa_log_sink_fn sink);

#define oa_warn(...)  oa_log(OA_LOG_WARN, __VA_ARGS__)
#define oa_debug(...) oa_log(OA_LOG_DEBUG, __VA_ARGS__)

#endif
