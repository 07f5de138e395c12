/* oa_copy: every length through each of its branches copies exactly len
 * bytes, from any alignment, and writes nothing around them. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "copy.h"

int main(void)
{
	uint8_t src[128], dst[128], want[128];
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (uint8_t)(i * 7 + 1);
	for (size_t len = 0; len <= 48; len++) {
		for (size_t at = 0; at < 8; at++) {
			memset(dst, 0xee, sizeof dst);
			memset(want, 0xee, sizeof want);
			memcpy(want + 16 + at, src + at, len);
			oa_copy(dst + 16 + at, src + at, len);
			CHECK(memcmp(dst, want, sizeof dst) == 0);
		}
	}
	oa_copy(dst, NULL, 0); /* an empty string may have no pointer */
	CHECK_DONE();
}
