/* bench_json_parse with jansson. */
#include <jansson.h>
#include <stddef.h>

#include "json_parse.h"

/* ---- jansson */

static size_t touch_jansson(const json_t *v)
{
	if (!v)
		return 0;
	if (json_is_string(v))
		return json_string_length(v) + (size_t)json_string_value(v)[0];
	return json_is_integer(v) ? (size_t)json_integer_value(v) : 1;
}

size_t spans_jansson(const char *line, size_t len)
{
	json_error_t err;
	json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	size_t n = 0;
	json_t *rs = json_object_get(root, "resourceSpans");
	for (size_t i = 0; i < json_array_size(rs); i++) {
		json_t *ss = json_object_get(json_array_get(rs, i), "scopeSpans");
		for (size_t j = 0; j < json_array_size(ss); j++) {
			json_t *spans = json_object_get(json_array_get(ss, j), "spans");
			for (size_t k = 0; k < json_array_size(spans); k++, n++) {
				json_t *sp = json_array_get(spans, k);
				static const char *const keys[] = {
				    "traceId",	      "spanId", "parentSpanId",
				    "name",	      "kind",	"startTimeUnixNano",
				    "endTimeUnixNano"};
				for (size_t q = 0; q < sizeof keys / sizeof *keys; q++)
					json_bench_sink +=
					    touch_jansson(json_object_get(sp, keys[q]));
				json_bench_sink += touch_jansson(
				    json_object_get(json_object_get(sp, "status"), "code"));
				json_t *attrs = json_object_get(sp, "attributes");
				for (size_t a = 0; a < json_array_size(attrs); a++) {
					json_t *kv = json_array_get(attrs, a);
					json_t *value = json_object_get(kv, "value");
					const char *inner_key;
					json_t *inner;
					json_bench_sink +=
					    touch_jansson(json_object_get(kv, "key"));
					json_object_foreach(value, inner_key, inner)
					{
						json_bench_sink +=
						    touch_jansson(inner) + (size_t)inner_key[0];
						break;
					}
				}
			}
		}
	}
	json_decref(root);
	return n;
}
