#include "check.h"
#include "traceparent.h"

#include <stdbool.h>
#include <string.h>

#define VALID "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static bool parse(const char *s, struct oa_span_context *ctx)
{
	return oa_traceparent_parse(s, strlen(s), ctx);
}

static bool rejects(const char *s)
{
	struct oa_span_context ctx;
	memset(&ctx, 0xaa, sizeof ctx);
	bool ok = parse(s, &ctx);
	/* A rejected header must leave the output untouched. */
	return !ok && ctx.trace_id[0] == 0xaa && ctx.flags == 0xaa;
}

static void test_valid(void)
{
	static const uint8_t trace_id[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
					     0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
	static const uint8_t span_id[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
	struct oa_span_context ctx;
	CHECK(parse(VALID, &ctx));
	CHECK(memcmp(ctx.trace_id, trace_id, 16) == 0);
	CHECK(memcmp(ctx.span_id, span_id, 8) == 0);
	CHECK_EQ_INT(ctx.flags, 1);

	CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &ctx));
	CHECK_EQ_INT(ctx.flags, 0);
	/* Unknown flag bits are carried, not rejected. */
	CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", &ctx));
	CHECK_EQ_INT(ctx.flags, 0xff);
	/* One non-zero byte anywhere makes an id valid. */
	CHECK(parse("00-00000000000000000000000000000001-0000000000000001-01", &ctx));
	CHECK_EQ_INT(ctx.trace_id[15], 1);
	CHECK_EQ_INT(ctx.span_id[7], 1);
	CHECK_EQ_INT(ctx.trace_id[0], 0);
}

static void test_whitespace(void)
{
	struct oa_span_context ctx;
	CHECK(parse(" \t" VALID "\t ", &ctx));
	CHECK_EQ_INT(ctx.flags, 1);
	CHECK(parse("  " VALID, &ctx));
	CHECK(parse(VALID "   ", &ctx));
	/* Only spaces and tabs are optional whitespace. */
	CHECK(rejects(VALID "\r\n"));
	CHECK(rejects("\n" VALID));
	CHECK(rejects("   "));
	CHECK(rejects(""));
	/* Whitespace inside the value is not trimmed. */
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736- 0f067aa0ba902b7-01"));
}

static void test_invalid_ids_and_version(void)
{
	CHECK(rejects("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	CHECK(rejects("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
	CHECK(rejects("00-00000000000000000000000000000000-0000000000000000-01"));
}

static void test_uppercase_and_non_hex(void)
{
	CHECK(rejects("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"));
	CHECK(rejects("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"));
	CHECK(rejects("zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e47+6-00f067aa0ba902b7-01"));
}

static void test_length(void)
{
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e47361-00f067aa0ba902b7-01"));
	/* Version 00 allows no further fields. */
	CHECK(rejects(VALID "-00"));
	CHECK(rejects("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	/* len bounds the read: a valid string cut short is rejected. */
	struct oa_span_context ctx;
	CHECK(!oa_traceparent_parse(VALID, OA_TRACEPARENT_LEN - 1, &ctx));
	CHECK(oa_traceparent_parse(VALID "garbage", OA_TRACEPARENT_LEN, &ctx));
}

static void test_separators(void)
{
	CHECK(rejects("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"));
	CHECK(rejects("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01"));
	CHECK(rejects("00 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 01"));
	CHECK(rejects("004bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01--"));
}

static void test_future_version(void)
{
	struct oa_span_context ctx;
	CHECK(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &ctx));
	CHECK_EQ_INT(ctx.flags, 1);
	CHECK(
	    parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future", &ctx));
	CHECK_EQ_INT(ctx.trace_id[0], 0x4b);
	CHECK_EQ_INT(ctx.span_id[7], 0xb7);
	/* Extra fields must still be dash-separated. */
	CHECK(rejects("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01what"));
	CHECK(rejects("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"));
	CHECK(rejects("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
}

static void test_format_round_trip(void)
{
	struct oa_span_context ctx, again;
	char out[OA_TRACEPARENT_LEN + 1];
	memset(out, 'x', sizeof out);
	CHECK(parse(VALID, &ctx));
	oa_traceparent_format(&ctx, out);
	CHECK_EQ_STR(out, VALID);
	CHECK(parse(out, &again));
	CHECK(memcmp(&ctx, &again, sizeof ctx) == 0);

	/* A future version is normalised to 00 on output. */
	CHECK(parse("7f-0102030405060708090a0b0c0d0e0f10-a1b2c3d4e5f60718-02-extra", &ctx));
	oa_traceparent_format(&ctx, out);
	CHECK_EQ_STR(out, "00-0102030405060708090a0b0c0d0e0f10-a1b2c3d4e5f60718-02");
}

static void test_hex_encode(void)
{
	static const uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff};
	char out[9];
	memset(out, 0, sizeof out);
	oa_hex_encode(bytes, sizeof bytes, out);
	CHECK_EQ_STR(out, "000fa0ff");
	out[0] = 'q';
	oa_hex_encode(bytes, 0, out);
	CHECK_EQ_INT(out[0], 'q');
}

int main(void)
{
	test_valid();
	test_whitespace();
	test_invalid_ids_and_version();
	test_uppercase_and_non_hex();
	test_length();
	test_separators();
	test_future_version();
	test_format_round_trip();
	test_hex_encode();
	CHECK_DONE();
}
