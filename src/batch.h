/* Turns ring records into the exporter-side model (export_model.h): names
 * resolved, raw values formatted, strings made valid UTF-8, span limits
 * applied. Memory is reused from batch to batch; records are copied out so
 * their ring slots can be released as soon as they are added. */
#ifndef OTLPAUTO_BATCH_H
#define OTLPAUTO_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "export_model.h"
#include "record.h"
#include "symbols.h"

struct oa_batch;

/* Tick -> Unix ns conversion; tests pass their own. */
typedef uint64_t (*oa_ticks_to_unix_fn)(uint64_t ticks);

struct oa_batch *oa_batch_create(const struct oa_config *cfg, struct oa_symbols *syms,
				 oa_ticks_to_unix_fn to_unix);
void oa_batch_destroy(struct oa_batch *b);
void oa_batch_reset(struct oa_batch *b);
/* The process span of the process whose records are added: spans flagged
 * OA_REC_F_LINK_PROCESS get a link to it, the process span itself gets
 * attrs (its command line). Pointers are kept, not copied. */
struct oa_batch_process {
	uint8_t trace_id[16];
	uint64_t span_id;
	uint8_t flags;
	const struct oa_attr *attrs;
	size_t n_attrs;
};
void oa_batch_set_process(struct oa_batch *b, const struct oa_batch_process *process);
/* thread_name may be NULL. False when memory is short (the span is lost). */
bool oa_batch_add(struct oa_batch *b, const struct oa_record *rec, const char *thread_name);
size_t oa_batch_count(const struct oa_batch *b);
/* The batch as the encoders read it; valid until the next add or reset. */
const struct oa_export_batch *oa_batch_view(struct oa_batch *b, const struct oa_attr *resource,
					    size_t n_resource);
/* Views of the halves [0, n/2) and [n/2, n) of the spans, for splitting a
 * request that would be too large. */
const struct oa_export_batch *oa_batch_view_range(struct oa_batch *b,
						  const struct oa_attr *resource, size_t n_resource,
						  size_t first, size_t count);
/* Scope names per enum oa_scope ("otlpauto.functions", ...). */
extern const char *const oa_scope_names[];

#endif
