/* libFuzzer: traceparent parsing never reads past len, never accepts all-zero
 * ids, and whatever it accepts formats back into a canonical header that
 * parses to the same context. */
#include "traceparent.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oa_span_context ctx, again;
	if (!oa_traceparent_parse((const char *)data, size, &ctx))
		return 0;
	if (all_zero(ctx.trace_id, sizeof ctx.trace_id) ||
	    all_zero(ctx.span_id, sizeof ctx.span_id))
		abort();
	char header[OA_TRACEPARENT_LEN + 1];
	oa_traceparent_format(&ctx, header);
	if (strlen(header) != OA_TRACEPARENT_LEN)
		abort();
	if (!oa_traceparent_parse(header, OA_TRACEPARENT_LEN, &again) ||
	    memcmp(&ctx, &again, sizeof ctx) != 0)
		abort();
	/* Version 00 is already canonical once its blanks are gone. */
	size_t start = 0;
	while (data[start] == ' ' || data[start] == '\t')
		start++;
	if (data[start] == '0' && data[start + 1] == '0' &&
	    memcmp(data + start, header, OA_TRACEPARENT_LEN) != 0)
		abort();
	return 0;
}
