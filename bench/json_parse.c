/* What `otlpauto view` would pay for its JSON reader: the CLI's own parser
 * (tools/otlpauto/json.c) against jansson and json-c, on an otlp/file span
 * file, each line parsed and every span's fields the view reads visited
 * (ids, name, kind, times, status, attribute keys and values).
 *
 *   bench_json_parse FILE [ROUNDS]
 *
 * Prints per parser "NAME seconds=S spans=N" for each round, interleaved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "json_parse.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

volatile size_t json_bench_sink;

/* ---- the CLI's parser */

static size_t touch_ours(const struct json_value *v)
{
	return v ? v->len + (v->text ? (size_t)v->text[0] : 0) : 0;
}

static size_t spans_ours(const char *line, size_t len)
{
	struct arena arena = {.limit = 64u << 20};
	struct json_error err;
	const struct json_value *root = json_parse(line, len, &arena, &err);
	size_t n = 0;
	const struct json_value *rs = root ? json_get(root, "resourceSpans") : NULL;
	for (const struct json_value *r = rs ? rs->first : NULL; r; r = r->next) {
		const struct json_value *ss = json_get(r, "scopeSpans");
		for (const struct json_value *s = ss ? ss->first : NULL; s; s = s->next) {
			const struct json_value *spans = json_get(s, "spans");
			for (const struct json_value *sp = spans ? spans->first : NULL; sp;
			     sp = sp->next, n++) {
				static const char *const keys[] = {
				    "traceId",	      "spanId", "parentSpanId",
				    "name",	      "kind",	"startTimeUnixNano",
				    "endTimeUnixNano"};
				for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
					json_bench_sink += touch_ours(json_get(sp, keys[k]));
				const struct json_value *status = json_get(sp, "status");
				json_bench_sink +=
				    touch_ours(status ? json_get(status, "code") : NULL);
				const struct json_value *attrs = json_get(sp, "attributes");
				for (const struct json_value *a = attrs ? attrs->first : NULL; a;
				     a = a->next) {
					const struct json_value *value = json_get(a, "value");
					json_bench_sink += touch_ours(json_get(a, "key")) +
							   touch_ours(value ? value->first : NULL);
				}
			}
		}
	}
	arena_free(&arena);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_json_parse FILE [ROUNDS]\n");
		return 2;
	}
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	for (int round = 0; round < rounds; round++) {
		for (int parser = 0; parser < 3; parser++) {
			int which = (parser + round) % 3; /* interleaved, rotating */
			FILE *f = fopen(argv[1], "r");
			if (!f) {
				perror(argv[1]);
				return 1;
			}
			char *line = NULL;
			size_t cap = 0, spans = 0;
			ssize_t len;
			double start = now_s();
			while ((len = getline(&line, &cap, f)) > 0)
				spans += which == 0   ? spans_ours(line, (size_t)len)
					 : which == 1 ? spans_jansson(line, (size_t)len)
						      : spans_jsonc(line, (size_t)len);
			double seconds = now_s() - start;
			free(line);
			fclose(f);
			printf("%s seconds=%.3f spans=%zu\n",
			       which == 0   ? "ours"
			       : which == 1 ? "jansson"
					    : "json-c",
			       seconds, spans);
		}
	}
	return 0;
}
