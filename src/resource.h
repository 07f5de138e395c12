#ifndef OTLPAUTO_RESOURCE_H
#define OTLPAUTO_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "export_model.h"

struct oa_resource {
	struct oa_attr *attrs;
	size_t n_attrs;
	struct oa_str *args; /* process.command_args items */
	size_t n_args;
};

/* Builds the Resource of the calling process (reads /proc/self). */
void oa_resource_build(struct oa_resource *r, const struct oa_config *cfg);
void oa_resource_free(struct oa_resource *r);

/* The calling process's Resource, built on first use (by the exporter's
 * work: traces and metrics share it) and kept. */
const struct oa_resource *oa_process_resource(const struct oa_config *cfg);
/* In a forked child. `consistent`: the fork held the exporter's work, so a
 * Resource the parent built is whole: the child keeps it with its own
 * process.pid (the rest describes it too: same image, same command line)
 * instead of building one at its first export. Otherwise it is forgotten
 * (leaked: it may have been half built). */
void oa_process_resource_atfork_child(bool consistent);
/* Room oa_redact_command_arg may need for an argument of len bytes: a query
 * of many empty values grows by "REDACTED" for each. */
#define OA_REDACTED_ARG_MAX(len) ((len)*5 + 32)
/* A command-line argument with its credentials replaced by REDACTED: a
 * credential header ("Authorization: ...", "Cookie: ...", as curl -H takes
 * it), --password=/--token=/--secret= values, a URL's user:password (always)
 * and its query values (as query_mode says). Writes into out
 * (OA_REDACTED_ARG_MAX(len) bytes), returns the length. */
size_t oa_redact_command_arg(const char *arg, size_t len, enum oa_redact_query query_mode,
			     char *out);

/* Arguments in the n bytes of a /proc/<pid>/cmdline: one per NUL-terminated
 * string (the last may lack its NUL), trailing empty ones not counted. */
size_t oa_cmdline_arg_count(const char *buf, size_t n);

#endif
