#ifndef OTLPAUTO_RESOURCE_H
#define OTLPAUTO_RESOURCE_H

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
/* Arguments in the n bytes of a /proc/<pid>/cmdline: one per NUL-terminated
 * string (the last may lack its NUL), trailing empty ones not counted. */
size_t oa_cmdline_arg_count(const char *buf, size_t n);

#endif
