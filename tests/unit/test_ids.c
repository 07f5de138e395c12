/* Ids: never zero, no repeats over many draws, distinct generators differ,
 * and span ids survive the byte order they travel in. */
#include <stdlib.h>

#include "check.h"
#include "ids.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	struct oa_rng a, b;
	oa_rng_seed(&a);
	oa_rng_seed(&b);
	enum { N = 200000 };
	uint64_t *ids = malloc(N * sizeof *ids);
	int zeros = 0;
	for (int i = 0; i < N; i++) {
		ids[i] = oa_new_span_id(&a);
		zeros += ids[i] == 0;
	}
	CHECK_EQ_INT(zeros, 0);
	qsort(ids, N, sizeof *ids, cmp_u64);
	int repeats = 0;
	for (int i = 1; i < N; i++)
		repeats += ids[i] == ids[i - 1];
	CHECK_EQ_INT(repeats, 0);
	free(ids);

	CHECK(oa_new_span_id(&a) != oa_new_span_id(&b)); /* seeded independently */

	/* A generator whose state yields zero first still never returns 0. */
	struct oa_rng z = {{0, 0, 0, 0}};
	z.s[0] = 1;
	for (int i = 0; i < 1000; i++)
		CHECK(oa_new_span_id(&z) != 0 || 0);

	uint8_t trace[16], zero16[16] = {0};
	for (int i = 0; i < 1000; i++) {
		oa_new_trace_id(&a, trace);
		CHECK(memcmp(trace, zero16, 16) != 0);
	}

	uint8_t bytes[8];
	oa_span_id_to_bytes(0x0102030405060708ull, bytes);
	CHECK_EQ_INT(bytes[0], 1);
	CHECK_EQ_INT(bytes[7], 8);
	CHECK(oa_span_id_from_bytes(bytes) == 0x0102030405060708ull);
	oa_span_id_to_bytes(UINT64_MAX, bytes);
	CHECK(oa_span_id_from_bytes(bytes) == UINT64_MAX);
	CHECK_DONE();
}
