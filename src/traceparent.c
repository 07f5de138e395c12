#include "traceparent.h"

#include <string.h>

#include "hex.h"

/* Lowercase only: the W3C format forbids uppercase hex. */
static bool parse_hex(const char *s, size_t n, uint8_t *out)
{
	return oa_hex_decode(s, n, out, true);
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

bool oa_traceparent_parse(const char *s, size_t len, struct oa_span_context *out)
{
	while (len && is_blank(*s)) {
		s++;
		len--;
	}
	while (len && is_blank(s[len - 1]))
		len--;
	if (len < OA_TRACEPARENT_LEN)
		return false;
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		return false;
	uint8_t version;
	struct oa_span_context ctx;
	if (!parse_hex(s, 1, &version) || !parse_hex(s + 3, 16, ctx.trace_id) ||
	    !parse_hex(s + 36, 8, ctx.span_id) || !parse_hex(s + 53, 1, &ctx.flags))
		return false;
	if (version == 0xff)
		return false;
	/* Version 00 has exactly these fields; a later version may append
	 * "-..." fields we do not know, but must keep the 00 layout. */
	if (version == 0 && len != OA_TRACEPARENT_LEN)
		return false;
	if (len > OA_TRACEPARENT_LEN && s[OA_TRACEPARENT_LEN] != '-')
		return false;
	if (all_zero(ctx.trace_id, sizeof ctx.trace_id) ||
	    all_zero(ctx.span_id, sizeof ctx.span_id))
		return false;
	*out = ctx;
	return true;
}

void oa_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
}

void oa_traceparent_format(const struct oa_span_context *ctx, char out[OA_TRACEPARENT_LEN + 1])
{
	memcpy(out, "00-", 3);
	oa_hex_encode(ctx->trace_id, sizeof ctx->trace_id, out + 3);
	out[35] = '-';
	oa_hex_encode(ctx->span_id, sizeof ctx->span_id, out + 36);
	out[52] = '-';
	oa_hex_encode(&ctx->flags, 1, out + 53);
	out[OA_TRACEPARENT_LEN] = '\0';
}
