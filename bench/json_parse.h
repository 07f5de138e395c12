/* bench_json_parse: one line of an otlp/file span file parsed and every
 * field the view reads visited; returns the spans seen. One file per
 * library: jansson's and json-c's names collide. */
#ifndef OTLPAUTO_BENCH_JSON_PARSE_H
#define OTLPAUTO_BENCH_JSON_PARSE_H

#include <stddef.h>

extern volatile size_t json_bench_sink;
size_t spans_jansson(const char *line, size_t len);
size_t spans_jsonc(const char *line, size_t len);

#endif
