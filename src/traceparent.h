/* W3C Trace Context: traceparent parsing and formatting (pure functions). */
#ifndef OTLPAUTO_TRACEPARENT_H
#define OTLPAUTO_TRACEPARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct oa_span_context {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags; /* W3C trace flags; bit 0 = sampled */
};

#define OA_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

/* Accepts version 00 (exactly 55 chars) and future versions (>= 55 chars,
 * next char '-'), lowercase hex only; rejects version ff, all-zero ids,
 * uppercase or non-hex. Leading/trailing spaces and tabs are ignored. */
bool oa_traceparent_parse(const char *s, size_t len, struct oa_span_context *out);
/* Writes 55 chars and a NUL to out. */
void oa_traceparent_format(const struct oa_span_context *ctx, char out[OA_TRACEPARENT_LEN + 1]);
/* Lowercase hex of n bytes into out (2n chars, no NUL). */
void oa_hex_encode(const uint8_t *in, size_t n, char *out);

#endif
