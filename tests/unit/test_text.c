/* oa_text: what snprintf would write, cut at the buffer's end with the cut
 * flagged, and never a byte past it. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "text.h"

int main(void)
{
	char buf[64], want[64];
	struct oa_text t = oa_text_into(buf, sizeof buf);
	oa_text_str(&t, "exec ");
	oa_text_mem(&t, "true!", 4);
	oa_text_mem(&t, "", 0);
	CHECK_EQ_STR(buf, "exec true");
	CHECK(!t.cut);

	int64_t ints[] = {0, 7, -1, 42, -2147483648LL, INT64_MAX, INT64_MIN};
	for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
		t = oa_text_into(buf, sizeof buf);
		oa_text_int(&t, ints[i]);
		snprintf(want, sizeof want, "%" PRId64, ints[i]);
		CHECK_EQ_STR(buf, want);
	}
	t = oa_text_into(buf, sizeof buf);
	oa_text_uint(&t, UINT64_MAX);
	CHECK_EQ_STR(buf, "18446744073709551615");
	uint64_t hexes[] = {0, 0xabc, 0x0123456789abcdefULL, UINT64_MAX};
	for (size_t i = 0; i < sizeof hexes / sizeof *hexes; i++) {
		t = oa_text_into(buf, sizeof buf);
		oa_text_hex64(&t, hexes[i]);
		snprintf(want, sizeof want, "%016" PRIx64, hexes[i]);
		CHECK_EQ_STR(buf, want);
		t = oa_text_into(buf, sizeof buf);
		oa_text_hex(&t, hexes[i]);
		snprintf(want, sizeof want, "%" PRIx64, hexes[i]);
		CHECK_EQ_STR(buf, want);
	}

	/* Every buffer size: the same prefix snprintf keeps, the rest untouched. */
	for (size_t size = 1; size <= 24; size++) {
		memset(buf, 'x', sizeof buf);
		t = oa_text_into(buf, size);
		oa_text_str(&t, "LD_PRELOAD=");
		oa_text_int(&t, -1234);
		oa_text_hex64(&t, 0xfeed);
		int whole = snprintf(want, size, "LD_PRELOAD=%d%016x", -1234, 0xfeed);
		CHECK_EQ_STR(buf, want);
		CHECK(t.cut == ((size_t)whole >= size));
		CHECK(buf[size] == 'x');
	}
	CHECK_DONE();
}
