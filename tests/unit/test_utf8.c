#include <string.h>

#include "check.h"
#include "utf8.h"

static bool valid(const char *s)
{
	return oa_utf8_valid(s, strlen(s));
}

static void test_valid(void)
{
	CHECK(oa_utf8_valid("", 0));
	CHECK(valid("plain ascii, long enough for the eight-byte fast path"));
	CHECK(valid("\xC2\x80"));	  /* U+0080, smallest two-byte */
	CHECK(valid("\xDF\xBF"));	  /* U+07FF */
	CHECK(valid("\xE0\xA0\x80"));	  /* U+0800, smallest three-byte */
	CHECK(valid("\xED\x9F\xBF"));	  /* U+D7FF, just below the surrogates */
	CHECK(valid("\xEE\x80\x80"));	  /* U+E000, just above them */
	CHECK(valid("\xEF\xBF\xBF"));	  /* U+FFFF */
	CHECK(valid("\xF0\x90\x80\x80")); /* U+10000, smallest four-byte */
	CHECK(valid("\xF4\x8F\xBF\xBF")); /* U+10FFFF, the last code point */
	CHECK(valid("h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x98\x80 done"));
	/* A NUL byte is a valid character. */
	CHECK(oa_utf8_valid("a\0b", 3));
}

static void test_invalid(void)
{
	CHECK(!valid("\x80"));		   /* lone continuation byte */
	CHECK(!valid("abcdefgh\xBF"));	   /* ... after the fast path */
	CHECK(!valid("\xC0\x80"));	   /* overlong NUL */
	CHECK(!valid("\xC1\xBF"));	   /* overlong U+007F */
	CHECK(!valid("\xE0\x9F\xBF"));	   /* overlong U+07FF */
	CHECK(!valid("\xF0\x8F\xBF\xBF")); /* overlong U+FFFF */
	CHECK(!valid("\xED\xA0\x80"));	   /* U+D800, a surrogate */
	CHECK(!valid("\xED\xBF\xBF"));	   /* U+DFFF */
	CHECK(!valid("\xF4\x90\x80\x80")); /* U+110000, past the last */
	CHECK(!valid("\xF5\x80\x80\x80")); /* lead byte never used */
	CHECK(!valid("\xFE"));
	CHECK(!valid("\xFF"));
	CHECK(!valid("\xC3"));	       /* truncated two-byte */
	CHECK(!valid("\xE2\x82"));     /* truncated three-byte */
	CHECK(!valid("\xF0\x9F\x98")); /* truncated four-byte */
	CHECK(!valid("\xE2\x82x"));    /* continuation replaced */
	CHECK(!valid("\xF0\x9F\x98\xC0"));
	/* The length bounds the check: a character cut by len is invalid. */
	CHECK(!oa_utf8_valid("\xC3\xA9", 1));
}

static void check_sanitized(const char *in, size_t len, const char *expected)
{
	char out[64];
	size_t n = oa_utf8_sanitize(in, len, out);
	CHECK_EQ_INT(n, strlen(expected));
	out[n] = '\0';
	CHECK_EQ_STR(out, expected);
	CHECK(oa_utf8_valid(out, n));
}

static void test_sanitize(void)
{
	check_sanitized("", 0, "");
	check_sanitized("already fine \xE2\x82\xAC", 16, "already fine \xE2\x82\xAC");
	check_sanitized("a\xFF"
			"b",
			3,
			"a\xEF\xBF\xBD"
			"b");
	/* Each byte of a bad sequence becomes its own U+FFFD. */
	check_sanitized("\xC0\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD");
	check_sanitized("\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	/* A truncated sequence, then a good character. */
	check_sanitized("\xE2\x82\xC3\xA9", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xC3\xA9");
	check_sanitized("end\xF0\x9F\x98", 6, "end\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	/* The worst case: every byte invalid triples the length. */
	CHECK_EQ_INT(oa_utf8_sanitize("\xFF\xFF\xFF\xFF", 4, (char[12]){0}), 12);
}

static void test_truncate(void)
{
	const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"; /* a é € 😀: 1+2+3+4 bytes */
	size_t len = strlen(s);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 100), len);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, len), len);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 0), 0);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 1), 1);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 2), 1); /* inside é */
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 3), 3);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 4), 3); /* inside € */
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 5), 3);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 6), 6);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 7), 6); /* inside 😀 */
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 9), 6);
	CHECK_EQ_INT(oa_utf8_truncate(s, len, 10), 10);
	CHECK_EQ_INT(oa_utf8_truncate("\xE2\x82\xAC", 3, 2), 0);
	CHECK_EQ_INT(oa_utf8_truncate("abcdef", 6, 4), 4);
}

int main(void)
{
	test_valid();
	test_invalid();
	test_sanitize();
	test_truncate();
	CHECK_DONE();
}
