/* bench_json_parse with json-c. */
#include <json-c/json.h>
#include <stddef.h>

#include "json_parse.h"

/* ---- json-c */

static size_t touch_jsonc(struct json_object *v)
{
	if (!v)
		return 0;
	if (json_object_is_type(v, json_type_string))
		return (size_t)json_object_get_string_len(v) + (size_t)json_object_get_string(v)[0];
	return json_object_is_type(v, json_type_int) ? (size_t)json_object_get_int64(v) : 1;
}

static struct json_object *jc_get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static size_t array_len(struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

size_t spans_jsonc(const char *line, size_t len)
{
	static struct json_tokener *tok;
	if (!tok)
		tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	json_tokener_reset(tok);
	struct json_object *root = json_tokener_parse_ex(tok, line, (int)len);
	size_t n = 0;
	struct json_object *rs = jc_get(root, "resourceSpans");
	for (size_t i = 0; i < array_len(rs); i++) {
		struct json_object *ss = jc_get(json_object_array_get_idx(rs, i), "scopeSpans");
		for (size_t j = 0; j < array_len(ss); j++) {
			struct json_object *spans =
			    jc_get(json_object_array_get_idx(ss, j), "spans");
			for (size_t k = 0; k < array_len(spans); k++, n++) {
				struct json_object *sp = json_object_array_get_idx(spans, k);
				static const char *const keys[] = {
				    "traceId",	      "spanId", "parentSpanId",
				    "name",	      "kind",	"startTimeUnixNano",
				    "endTimeUnixNano"};
				for (size_t q = 0; q < sizeof keys / sizeof *keys; q++)
					json_bench_sink += touch_jsonc(jc_get(sp, keys[q]));
				json_bench_sink +=
				    touch_jsonc(jc_get(jc_get(sp, "status"), "code"));
				struct json_object *attrs = jc_get(sp, "attributes");
				for (size_t a = 0; a < array_len(attrs); a++) {
					struct json_object *kv =
					    json_object_array_get_idx(attrs, a);
					json_bench_sink += touch_jsonc(jc_get(kv, "key"));
					json_object_object_foreach(jc_get(kv, "value"), inner_key,
								   inner)
					{
						json_bench_sink +=
						    touch_jsonc(inner) + (size_t)inner_key[0];
						break;
					}
				}
			}
		}
	}
	json_object_put(root);
	return n;
}
