/* libFuzzer: the configuration's pure parsers (src/config.h) on arbitrary
 * strings: no crash, no leak, and results that keep their promises. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_uint(const char *s, uint64_t max)
{
	uint64_t value;
	if (!oa_parse_uint(s, max, &value))
		return;
	char *end;
	if (value > max || value != strtoull(s, &end, 10) || *end)
		abort();
}

static void check_percent_decode(const uint8_t *data, size_t size)
{
	char *out = malloc(size + 1);
	size_t out_len = SIZE_MAX;
	bool ok = oa_percent_decode((const char *)data, size, out, &out_len);
	if (out_len > size || out[out_len] != '\0')
		abort();
	/* Success means every byte came through and %00 was refused. */
	if (ok && memchr(data, '\0', size) == NULL && memchr(out, '\0', out_len))
		abort();
	free(out);
}

static void check_kv_list(const char *s)
{
	struct oa_kv_list list;
	if (!oa_parse_kv_list(s, &list)) {
		if (list.n || list.items)
			abort(); /* "nothing kept" on error */
		return;
	}
	for (size_t i = 0; i < list.n; i++)
		if (!list.items[i].key[0] || !list.items[i].value)
			abort();
	oa_kv_list_free(&list);
}

static void check_endpoint_join(const char *s)
{
	static const char suffix[] = "/v1/traces";
	char *joined = oa_endpoint_join(s);
	size_t len = strlen(joined);
	if (len < sizeof suffix - 1 || strcmp(joined + len - (sizeof suffix - 1), suffix) != 0)
		abort();
	if (len > sizeof suffix - 1 && joined[len - sizeof suffix] == '/')
		abort(); /* exactly one '/' before v1/traces */
	free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';

	uint64_t ns;
	if (oa_parse_duration_ns(s, &ns) && strcmp(s, "0") == 0 && ns != 0)
		abort();
	check_uint(s, UINT64_MAX);
	check_uint(s, size ? data[0] : 0);
	check_percent_decode(data, size);
	check_kv_list(s);
	check_endpoint_join(s);
	free(s);
	return 0;
}
