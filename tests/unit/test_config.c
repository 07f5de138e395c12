#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "log.h"

/* ---- Captured warnings ---- */

#define MAX_LINES 8
static char lines[MAX_LINES][1100];
static int line_count;

static void capture(const char *line)
{
	if (line_count < MAX_LINES)
		snprintf(lines[line_count], sizeof lines[0], "%s", line);
	line_count++;
}

/* The only warning contains fragment. */
static bool warned(const char *fragment)
{
	return line_count == 1 && strstr(lines[0], fragment) != NULL;
}

#define CHECK_QUIET() CHECK_EQ_INT(line_count, 0)
/* Exactly one warning line, and it names the variable. */
#define CHECK_ONE_WARNING(var)                                                                     \
	do {                                                                                       \
		CHECK_EQ_INT(line_count, 1);                                                       \
		CHECK(warned(var));                                                                \
	} while (0)

/* ---- Fake environment ---- */

#define MAX_VARS 16
struct fake_env {
	const char *names[MAX_VARS];
	const char *values[MAX_VARS];
	int n;
};

static const char *fake_getenv(const char *name, void *ctx)
{
	const struct fake_env *env = ctx;
	for (int i = 0; i < env->n; i++)
		if (strcmp(env->names[i], name) == 0)
			return env->values[i];
	return NULL;
}

static struct oa_config cfg;

/* Parses cfg from the pairs name, value, ..., NULL, capturing the warnings. */
static void parse(const char *name, ...)
{
	struct fake_env env = {0};
	va_list ap;
	va_start(ap, name);
	for (; name && env.n < MAX_VARS; name = va_arg(ap, const char *)) {
		env.names[env.n] = name;
		env.values[env.n++] = va_arg(ap, const char *);
	}
	va_end(ap);
	line_count = 0;
	oa_config_parse(&cfg, fake_getenv, &env);
}

#define PARSE(...) parse(__VA_ARGS__, NULL)

/* Names the case a table-driven check failed on. */
static void explain(int failed_before, const char *name, const char *value)
{
	if (check_failed > failed_before)
		fprintf(stderr, "  ... with %s=\"%s\"\n", name, value);
}

static uint32_t u32_at(size_t offset)
{
	uint32_t value;
	memcpy(&value, (const char *)&cfg + offset, sizeof value);
	return value;
}

static uint64_t u64_at(size_t offset)
{
	uint64_t value;
	memcpy(&value, (const char *)&cfg + offset, sizeof value);
	return value;
}

/* The hook families this build has (meson's feature options); the rest are never enabled. */
static const uint32_t hooks_built =
    (OA_FEATURE_FUNCTIONS ? OA_HOOK_FUNCTIONS : 0) |
    (OA_FEATURE_SOCKETS ? OA_HOOK_SOCKETS | OA_HOOK_DNS | OA_HOOK_HTTP | OA_HOOK_TLS : 0) |
    OA_HOOK_PROCESS | (OA_FEATURE_FILES ? OA_HOOK_FILES : 0);

/* ---- Pure parsers ---- */

static void test_parse_bool(void)
{
	bool b = false;
	CHECK(oa_parse_bool("true", &b) && b);
	CHECK(oa_parse_bool("TRUE", &b) && b);
	CHECK(oa_parse_bool("False", &b) && !b);
	CHECK(oa_parse_bool("false", &b) && !b);
	b = true;
	CHECK(!oa_parse_bool("", &b));
	CHECK(!oa_parse_bool("1", &b));
	CHECK(!oa_parse_bool("yes", &b));
	CHECK(!oa_parse_bool(" true", &b)); /* callers trim */
	CHECK(!oa_parse_bool("truex", &b));
	CHECK(b); /* untouched on failure */
}

static void test_parse_uint(void)
{
	uint64_t v = 77;
	CHECK(oa_parse_uint("0", 10, &v) && v == 0);
	CHECK(oa_parse_uint("007", 10, &v) && v == 7);
	CHECK(oa_parse_uint("9", 9, &v) && v == 9);
	CHECK(oa_parse_uint("18446744073709551615", UINT64_MAX, &v) && v == UINT64_MAX);
	CHECK(oa_parse_uint("00000000000000000000000000042", 42, &v) && v == 42);
	v = 77;
	CHECK(!oa_parse_uint("10", 9, &v));
	CHECK(!oa_parse_uint("5", 0, &v));
	CHECK(!oa_parse_uint("18446744073709551616", UINT64_MAX, &v));
	CHECK(!oa_parse_uint("99999999999999999999999", UINT64_MAX, &v));
	CHECK(!oa_parse_uint("", 10, &v));
	CHECK(!oa_parse_uint("-0", 10, &v));
	CHECK(!oa_parse_uint("+1", 10, &v));
	CHECK(!oa_parse_uint(" 1", 10, &v));
	CHECK(!oa_parse_uint("1 ", 10, &v));
	CHECK(!oa_parse_uint("0x1", 10, &v));
	CHECK(!oa_parse_uint("1.0", 10, &v));
	CHECK_EQ_INT(v, 77);
}

static void test_parse_duration(void)
{
	static const struct {
		const char *text;
		uint64_t ns;
	} good[] = {
	    {"0", 0},
	    {"0ns", 0},
	    {"0s", 0},
	    {"250ns", 250},
	    {"100us", 100000},
	    {"5ms", 5000000},
	    {"2s", 2000000000},
	    {"1.5ms", 1500000},
	    {"0.25us", 250},
	    {"1.000000001s", 1000000001},
	    {"1.0000000019s", 1000000001}, /* below 1ns is dropped */
	    {"0.5ns", 0},
	    {"7MS", 7000000},
	    {"3Us", 3000},
	    {"18446744073709551615ns", UINT64_MAX},
	    {"18446744073.709551615s", UINT64_MAX},
	    {"18446744073709551615.9ns", UINT64_MAX},
	};
	static const char *const bad[] = {
	    "",
	    "100",
	    "00",
	    "0.0",
	    "5 ms",
	    " 5ms",
	    "5ms ",
	    "-1ms",
	    "+1ms",
	    "1.ms",
	    ".5ms",
	    "ms",
	    "1h",
	    "1m",
	    "1msx",
	    "1e3ms",
	    "1,5ms",
	    "abc",
	    "18446744073709551616ns",
	    "18446744074s",
	    "18446744073.709551616s",
	    "18446744073709552ms",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		int before = check_failed;
		uint64_t ns = 12345;
		CHECK(oa_parse_duration_ns(good[i].text, &ns));
		CHECK_EQ_INT(ns, good[i].ns);
		explain(before, "duration", good[i].text);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int before = check_failed;
		uint64_t ns = 12345;
		CHECK(!oa_parse_duration_ns(bad[i], &ns));
		CHECK_EQ_INT(ns, 12345);
		explain(before, "duration", bad[i]);
	}
}

static void test_percent_decode(void)
{
	char out[64];
	size_t len = 99;
	CHECK(oa_percent_decode("", 0, out, &len));
	CHECK_EQ_STR(out, "");
	CHECK_EQ_INT(len, 0);
	CHECK(oa_percent_decode("plain+text", 10, out, &len));
	CHECK_EQ_STR(out, "plain+text"); /* '+' is not a space outside forms */
	CHECK(oa_percent_decode("a%20b", 5, out, &len));
	CHECK_EQ_STR(out, "a b");
	CHECK_EQ_INT(len, 3);
	CHECK(oa_percent_decode("%41%62%2c%2C", 12, out, &len));
	CHECK_EQ_STR(out, "Ab,,");
	CHECK(oa_percent_decode("%e2%82%AC", 9, out, &len));
	CHECK_EQ_STR(out, "\xe2\x82\xac");
	CHECK_EQ_INT(len, 3);
	CHECK(oa_percent_decode("%25%3D", 6, out, NULL));
	CHECK_EQ_STR(out, "%=");
	/* len bounds the input: the escape after it is not read. */
	CHECK(oa_percent_decode("abc%zz", 3, out, &len));
	CHECK_EQ_STR(out, "abc");
	CHECK(!oa_percent_decode("%zz", 3, out, &len));
	CHECK(!oa_percent_decode("%4", 2, out, &len));
	CHECK(!oa_percent_decode("%4g", 3, out, &len));
	CHECK(!oa_percent_decode("%g4", 3, out, &len));
	CHECK(!oa_percent_decode("%", 1, out, &len));
	CHECK(!oa_percent_decode("100%", 4, out, &len));
	CHECK(!oa_percent_decode("a%00b", 5, out, &len));
	CHECK(!oa_percent_decode("%20%2", 5, out, &len));
	/* %4 whose second digit lies beyond len */
	CHECK(!oa_percent_decode("%41", 2, out, &len));
}

static void test_parse_kv_list(void)
{
	struct oa_kv_list list;
	CHECK(oa_parse_kv_list("", &list));
	CHECK_EQ_INT(list.n, 0);
	CHECK(list.items == NULL);
	CHECK(oa_parse_kv_list(" , ,", &list));
	CHECK_EQ_INT(list.n, 0);

	CHECK(oa_parse_kv_list("a=1", &list));
	CHECK_EQ_INT(list.n, 1);
	CHECK_EQ_STR(list.items[0].key, "a");
	CHECK_EQ_STR(list.items[0].value, "1");
	oa_kv_list_free(&list);
	CHECK(list.items == NULL && list.n == 0);

	CHECK(oa_parse_kv_list(" a = 1 ,b=2==3,, c= ,%61%3d=%62%2C%20x%20 ,", &list));
	CHECK_EQ_INT(list.n, 4);
	if (list.n == 4) {
		CHECK_EQ_STR(list.items[0].key, "a");
		CHECK_EQ_STR(list.items[0].value, "1");
		CHECK_EQ_STR(list.items[1].key, "b");
		CHECK_EQ_STR(list.items[1].value, "2==3");
		CHECK_EQ_STR(list.items[2].key, "c");
		CHECK_EQ_STR(list.items[2].value, "");
		/* Trimming happens before decoding, so encoded blanks stay. */
		CHECK_EQ_STR(list.items[3].key, "a=");
		CHECK_EQ_STR(list.items[3].value, "b, x ");
	}
	oa_kv_list_free(&list);

	static const char *const bad[] = {
	    "a", "=1", " = 1", "a=1,b", "a=%zz", "a=%4", "%zz=1", "a=1,b=%", "a=%00",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int before = check_failed;
		CHECK(!oa_parse_kv_list(bad[i], &list));
		CHECK(list.items == NULL && list.n == 0);
		explain(before, "kv list", bad[i]);
	}
}

static void test_parse_str_list(void)
{
	struct oa_str_list list;
	oa_parse_str_list("", &list);
	CHECK_EQ_INT(list.n, 0);
	CHECK(list.items == NULL);
	oa_parse_str_list(" , ,,", &list);
	CHECK_EQ_INT(list.n, 0);
	CHECK(list.items == NULL);
	oa_parse_str_list("single", &list);
	CHECK_EQ_INT(list.n, 1);
	CHECK_EQ_STR(list.items[0], "single");
	oa_str_list_free(&list);
	oa_parse_str_list(" a , ,b*,, c d ", &list);
	CHECK_EQ_INT(list.n, 3);
	if (list.n == 3) {
		CHECK_EQ_STR(list.items[0], "a");
		CHECK_EQ_STR(list.items[1], "b*");
		CHECK_EQ_STR(list.items[2], "c d");
	}
	oa_str_list_free(&list);
	CHECK(list.items == NULL && list.n == 0);
}

static void test_endpoint_join(void)
{
	static const char *const cases[][2] = {
	    {"http://h:4318", "http://h:4318/v1/traces"},
	    {"http://h:4318/", "http://h:4318/v1/traces"},
	    {"http://h:4318//", "http://h:4318/v1/traces"},
	    {"http://h/base", "http://h/base/v1/traces"},
	    {"http://h/base/", "http://h/base/v1/traces"},
	    {"https://h/a/b", "https://h/a/b/v1/traces"},
	    {"", "/v1/traces"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *joined = oa_endpoint_join(cases[i][0]);
		CHECK_EQ_STR(joined, cases[i][1]);
		free(joined);
	}
}

/* ---- Defaults ---- */

static void check_defaults(void)
{
	CHECK(!cfg.sdk_disabled);
	CHECK_EQ_INT(cfg.log_level, OA_LOG_INFO);
	CHECK(cfg.service_name == NULL);
	CHECK_EQ_INT(cfg.resource_attributes.n, 0);
	CHECK_EQ_INT(cfg.sampler, OA_SAMPLER_PARENTBASED_ALWAYS_ON);
	CHECK(cfg.sampler_arg == 1.0);
	CHECK(cfg.propagate_tracecontext);
	CHECK(cfg.propagate_baggage);
	CHECK_EQ_INT(cfg.schedule_delay_ms, 5000);
	CHECK_EQ_INT(cfg.export_timeout_ms, 30000);
	CHECK_EQ_INT(cfg.max_queue_size, 2048);
	CHECK_EQ_INT(cfg.max_export_batch_size, 512);
	CHECK_EQ_INT(cfg.attribute_count_limit, 128);
	CHECK_EQ_INT(cfg.attribute_value_length_limit, OA_LIMIT_NONE);
	CHECK_EQ_INT(cfg.event_count_limit, 128);
	CHECK_EQ_INT(cfg.link_count_limit, 128);
	CHECK_EQ_INT(cfg.exporter, OA_EXPORTER_OTLP);
	CHECK_EQ_STR(cfg.endpoint, "http://localhost:4318/v1/traces");
	CHECK_EQ_INT(cfg.headers.n, 0);
	CHECK_EQ_INT(cfg.otlp_timeout_ms, 10000);
	CHECK(!cfg.gzip);
	CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_PROTOBUF);
	CHECK(cfg.certificate == NULL);
	CHECK(cfg.client_key == NULL);
	CHECK(cfg.client_certificate == NULL);
	CHECK(cfg.file_path == NULL);
	CHECK_EQ_INT(cfg.buffer_spans, 4096);
	CHECK_EQ_INT(cfg.backpressure, OA_BACKPRESSURE_DROP);
	CHECK_EQ_INT(cfg.exporter_cpu, -1);
	CHECK_EQ_INT(cfg.hooks, OA_HOOKS_DEFAULT & hooks_built);
	CHECK_EQ_INT(cfg.function_threshold_ns, 100000);
	CHECK_EQ_INT(cfg.function_include.n, 0);
	CHECK_EQ_INT(cfg.function_exclude.n, 0);
	CHECK_EQ_INT(cfg.function_max_depth, OA_LIMIT_NONE);
	CHECK(!cfg.stacktrace);
	CHECK_EQ_INT(cfg.stacktrace_threshold_ns, 10000000);
	CHECK_EQ_INT(cfg.file_threshold_ns, 1000000);
	CHECK_EQ_INT(cfg.redact_query, OA_REDACT_QUERY_SENSITIVE);
	CHECK_EQ_INT(cfg.db_statement, OA_DB_STATEMENT_SANITIZED);
	CHECK_EQ_INT(cfg.db_propagation, OA_DB_PROPAGATION_OFF);
}

static void test_defaults(void)
{
	oa_config_free(&cfg);
	oa_config_defaults(&cfg);
	check_defaults();
	parse(NULL);
	CHECK_QUIET();
	check_defaults();
	/* Every variable set but empty or blank is unset. */
	PARSE("OTEL_SDK_DISABLED", "", "OTEL_LOG_LEVEL", " ", "OTEL_SERVICE_NAME", "",
	      "OTEL_RESOURCE_ATTRIBUTES", "\t", "OTEL_TRACES_SAMPLER", "", "OTEL_PROPAGATORS", "",
	      "OTEL_TRACES_EXPORTER", "", "OTEL_EXPORTER_OTLP_ENDPOINT", "  ",
	      "OTEL_EXPORTER_OTLP_HEADERS", "", "OTEL_EXPORTER_OTLP_PROTOCOL", "",
	      "OTEL_EXPORTER_OTLP_COMPRESSION", "", "OTLPAUTO_HOOKS", "", "OTLPAUTO_FILE", "",
	      "OTLPAUTO_BACKPRESSURE", "", "OTLPAUTO_EXPORTER_CPU", "", "OTLPAUTO_STACKTRACE", "",
	      "OTLPAUTO_REDACT_QUERY", "", "OTLPAUTO_DB_STATEMENT", "", "OTLPAUTO_DB_PROPAGATION",
	      "");
	CHECK_QUIET();
	check_defaults();
}

/* ---- Whole numbers ---- */

struct uint_var {
	const char *name;
	size_t offset;
	uint32_t fallback;
	uint32_t min, max;
	bool milliseconds;
};

#define FIELD(f) offsetof(struct oa_config, f)
static const struct uint_var uint_vars[] = {
    {"OTEL_BSP_SCHEDULE_DELAY", FIELD(schedule_delay_ms), 5000, 1, UINT32_MAX, true},
    {"OTEL_BSP_EXPORT_TIMEOUT", FIELD(export_timeout_ms), 30000, 0, UINT32_MAX, true},
    {"OTEL_BSP_MAX_QUEUE_SIZE", FIELD(max_queue_size), 2048, 1, UINT32_MAX, false},
    {"OTEL_ATTRIBUTE_COUNT_LIMIT", FIELD(attribute_count_limit), 128, 0, UINT32_MAX, false},
    {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", FIELD(attribute_count_limit), 128, 0, UINT32_MAX, false},
    {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", FIELD(attribute_value_length_limit), OA_LIMIT_NONE, 0,
     UINT32_MAX, false},
    {"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", FIELD(attribute_value_length_limit), OA_LIMIT_NONE,
     0, UINT32_MAX, false},
    {"OTEL_SPAN_EVENT_COUNT_LIMIT", FIELD(event_count_limit), 128, 0, UINT32_MAX, false},
    {"OTEL_SPAN_LINK_COUNT_LIMIT", FIELD(link_count_limit), 128, 0, UINT32_MAX, false},
    {"OTEL_EXPORTER_OTLP_TIMEOUT", FIELD(otlp_timeout_ms), 10000, 0, UINT32_MAX, true},
    {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", FIELD(otlp_timeout_ms), 10000, 0, UINT32_MAX, true},
    {"OTLPAUTO_BUFFER_SPANS", FIELD(buffer_spans), 4096, 16, 16777216, false},
    {"OTLPAUTO_FUNCTION_MAX_DEPTH", FIELD(function_max_depth), OA_LIMIT_NONE, 0, UINT32_MAX, false},
};

static void check_uint_good(const struct uint_var *var, const char *text, uint32_t expected)
{
	int before = check_failed;
	PARSE(var->name, text);
	CHECK_EQ_INT(u32_at(var->offset), expected);
	CHECK_QUIET();
	explain(before, var->name, text);
}

static void check_uint_bad(const struct uint_var *var, const char *text, const char *problem)
{
	int before = check_failed;
	char quoted[128], used[64];
	snprintf(quoted, sizeof quoted, "%s=\"%s\" %s", var->name, text, problem);
	if (var->fallback == OA_LIMIT_NONE)
		snprintf(used, sizeof used, "; using no limit");
	else
		snprintf(used, sizeof used, "; using %" PRIu32, var->fallback);
	PARSE(var->name, text);
	CHECK_EQ_INT(u32_at(var->offset), var->fallback);
	CHECK_ONE_WARNING(var->name);
	CHECK(warned(quoted));
	CHECK(warned(used));
	explain(before, var->name, text);
}

static void test_uint_vars(void)
{
	static const char *const not_numbers[] = {
	    "abc", "-1", "-0", "+5", "5ms", "5 000", "1.5", "1,5", "0x10", "1e3", "42abc",
	};
	for (size_t i = 0; i < sizeof uint_vars / sizeof uint_vars[0]; i++) {
		const struct uint_var *var = &uint_vars[i];
		char text[32];
		PARSE(var->name, "");
		CHECK_EQ_INT(u32_at(var->offset), var->fallback);
		CHECK_QUIET();
		check_uint_good(var, "42", 42);
		check_uint_good(var, " 42\t", 42);
		check_uint_good(var, "0042", 42);
		snprintf(text, sizeof text, "%" PRIu32, var->min);
		check_uint_good(var, text, var->min);
		snprintf(text, sizeof text, "%" PRIu32, var->max);
		check_uint_good(var, text, var->max);

		const char *not_number = var->milliseconds ? "is not a whole number of milliseconds"
							   : "is not a whole number";
		for (size_t j = 0; j < sizeof not_numbers / sizeof not_numbers[0]; j++)
			check_uint_bad(var, not_numbers[j], not_number);
		char range[64];
		snprintf(range, sizeof range, "is out of range (%" PRIu32 "..%" PRIu32 ")",
			 var->min, var->max);
		snprintf(text, sizeof text, "%" PRIu64, (uint64_t)var->max + 1);
		check_uint_bad(var, text, range);
		check_uint_bad(var, "99999999999999999999999", range);
		if (var->min > 0) {
			snprintf(text, sizeof text, "%" PRIu32, var->min - 1);
			check_uint_bad(var, text, range);
		}
	}

	/* The example from the brief, and non-ASCII bytes shown escaped. */
	PARSE("OTEL_BSP_SCHEDULE_DELAY", "abc");
	CHECK_EQ_STR(lines[0], "otlpauto: OTEL_BSP_SCHEDULE_DELAY=\"abc\" is not a whole number of "
			       "milliseconds; using 5000");
	PARSE("OTEL_BSP_MAX_QUEUE_SIZE", "\xc3\xa9");
	CHECK_ONE_WARNING("OTEL_BSP_MAX_QUEUE_SIZE=\"\\xc3\\xa9\" is not a whole number");
}

static void test_batch_size(void)
{
	PARSE("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100");
	CHECK_EQ_INT(cfg.max_export_batch_size, 100);
	CHECK_QUIET();
	PARSE("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2048");
	CHECK_EQ_INT(cfg.max_export_batch_size, 2048);
	CHECK_QUIET();
	PARSE("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1");
	CHECK_EQ_INT(cfg.max_export_batch_size, 1);
	CHECK_QUIET();
	static const char *const bad[] = {
	    "0", "abc", "-1", "+5", "1.5", "4294967296", "99999999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int before = check_failed;
		PARSE("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", bad[i]);
		CHECK_EQ_INT(cfg.max_export_batch_size, 512);
		CHECK_ONE_WARNING("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
		CHECK(warned("; using 512"));
		explain(before, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", bad[i]);
	}
	/* Larger than the queue: the queue size, with a warning naming both. */
	PARSE("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096");
	CHECK_EQ_INT(cfg.max_export_batch_size, 2048);
	CHECK_EQ_INT(line_count, 1);
	CHECK_EQ_STR(lines[0], "otlpauto: OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4096 exceeds "
			       "OTEL_BSP_MAX_QUEUE_SIZE=2048; using 2048");
	PARSE("OTEL_BSP_MAX_QUEUE_SIZE", "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200");
	CHECK_EQ_INT(cfg.max_queue_size, 100);
	CHECK_EQ_INT(cfg.max_export_batch_size, 100);
	CHECK_ONE_WARNING("OTEL_BSP_MAX_EXPORT_BATCH_SIZE=200 exceeds OTEL_BSP_MAX_QUEUE_SIZE=100");
	/* Our default batch above a small queue shrinks without a word. */
	PARSE("OTEL_BSP_MAX_QUEUE_SIZE", "100");
	CHECK_EQ_INT(cfg.max_export_batch_size, 100);
	CHECK_QUIET();
}

static void test_limit_precedence(void)
{
	PARSE("OTEL_ATTRIBUTE_COUNT_LIMIT", "10", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "20");
	CHECK_EQ_INT(cfg.attribute_count_limit, 20);
	CHECK_QUIET();
	PARSE("OTEL_ATTRIBUTE_COUNT_LIMIT", "10");
	CHECK_EQ_INT(cfg.attribute_count_limit, 10);
	PARSE("OTEL_ATTRIBUTE_COUNT_LIMIT", "10", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "");
	CHECK_EQ_INT(cfg.attribute_count_limit, 10);
	/* The span variable wins even when bad: warn about it, use the default. */
	PARSE("OTEL_ATTRIBUTE_COUNT_LIMIT", "10", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "x");
	CHECK_EQ_INT(cfg.attribute_count_limit, 128);
	CHECK_ONE_WARNING("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=\"x\"");
	PARSE("OTEL_ATTRIBUTE_COUNT_LIMIT", "x", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "20");
	CHECK_EQ_INT(cfg.attribute_count_limit, 20);
	CHECK_QUIET();

	PARSE("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
	      "200");
	CHECK_EQ_INT(cfg.attribute_value_length_limit, 200);
	PARSE("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100");
	CHECK_EQ_INT(cfg.attribute_value_length_limit, 100);
	CHECK_EQ_INT(cfg.attribute_count_limit, 128);
	PARSE("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
	      "-1");
	CHECK_EQ_INT(cfg.attribute_value_length_limit, OA_LIMIT_NONE);
	CHECK_ONE_WARNING("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT=\"-1\"");
	CHECK(warned("using no limit"));

	PARSE("OTEL_EXPORTER_OTLP_TIMEOUT", "1000", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000");
	CHECK_EQ_INT(cfg.otlp_timeout_ms, 2000);
	PARSE("OTEL_EXPORTER_OTLP_TIMEOUT", "1000");
	CHECK_EQ_INT(cfg.otlp_timeout_ms, 1000);
}

static void test_exporter_cpu(void)
{
	static const struct {
		const char *text;
		int cpu;
	} good[] = {{"0", 0}, {"3", 3}, {" 7 ", 7}, {"1023", 1023}};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		PARSE("OTLPAUTO_EXPORTER_CPU", good[i].text);
		CHECK_EQ_INT(cfg.exporter_cpu, good[i].cpu);
		CHECK_QUIET();
	}
	static const char *const bad[] = {"-1", "1024", "x", "1.5", "+1", "99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int before = check_failed;
		PARSE("OTLPAUTO_EXPORTER_CPU", bad[i]);
		CHECK_EQ_INT(cfg.exporter_cpu, -1);
		CHECK_ONE_WARNING("OTLPAUTO_EXPORTER_CPU");
		CHECK(warned("; using no CPU affinity"));
		explain(before, "OTLPAUTO_EXPORTER_CPU", bad[i]);
	}
	PARSE("OTLPAUTO_EXPORTER_CPU", "1024");
	CHECK(warned("is out of range (0..1023)"));
}

/* ---- Durations and booleans ---- */

static void test_duration_vars(void)
{
	static const struct {
		const char *name;
		size_t offset;
		uint64_t fallback;
		const char *used;
	} vars[] = {
	    {"OTLPAUTO_FUNCTION_THRESHOLD", FIELD(function_threshold_ns), 100000, "using 100us"},
	    {"OTLPAUTO_STACKTRACE_THRESHOLD", FIELD(stacktrace_threshold_ns), 10000000,
	     "using 10ms"},
	    {"OTLPAUTO_FILE_THRESHOLD", FIELD(file_threshold_ns), 1000000, "using 1ms"},
	    {"OTLPAUTO_EXIT_TIMEOUT", FIELD(exit_timeout_ns), 2000000000, "using 2s"},
	};
	static const struct {
		const char *text;
		uint64_t ns;
	} good[] = {{"0", 0},		{"250ns", 250},	    {"100us", 100000},	{"5ms", 5000000},
		    {"2s", 2000000000}, {"1.5ms", 1500000}, {" 7MS ", 7000000}, {"0ms", 0}};
	static const char *const bad[] = {"100",  "5 ms", "-1ms", "+1ms", "1.ms",
					  ".5ms", "ms",	  "1h",	  "abc",  "18446744073709551616ns"};
	for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++) {
		PARSE(vars[v].name, "");
		CHECK_EQ_INT(u64_at(vars[v].offset), vars[v].fallback);
		CHECK_QUIET();
		for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
			int before = check_failed;
			PARSE(vars[v].name, good[i].text);
			CHECK_EQ_INT(u64_at(vars[v].offset), good[i].ns);
			CHECK_QUIET();
			explain(before, vars[v].name, good[i].text);
		}
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			int before = check_failed;
			char quoted[96];
			snprintf(quoted, sizeof quoted, "%s=\"%s\" is not a duration", vars[v].name,
				 bad[i]);
			PARSE(vars[v].name, bad[i]);
			CHECK_EQ_INT(u64_at(vars[v].offset), vars[v].fallback);
			CHECK_ONE_WARNING(quoted);
			CHECK(warned(vars[v].used));
			explain(before, vars[v].name, bad[i]);
		}
	}
}

static void test_bools(void)
{
	static const struct {
		const char *text;
		bool value;
	} good[] = {
	    {"true", true}, {"TRUE", true}, {" True ", true}, {"false", false}, {"FALSE", false}};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		PARSE("OTEL_SDK_DISABLED", good[i].text);
		CHECK_EQ_INT(cfg.sdk_disabled, good[i].value);
		CHECK_QUIET();
		PARSE("OTLPAUTO_STACKTRACE", good[i].text);
		CHECK_EQ_INT(cfg.stacktrace, good[i].value);
		CHECK_QUIET();
	}
	PARSE("OTLPAUTO_STACKTRACE", "1");
	CHECK(cfg.stacktrace);
	CHECK_QUIET();
	PARSE("OTLPAUTO_STACKTRACE", "0");
	CHECK(!cfg.stacktrace);
	CHECK_QUIET();

	static const char *const bad[] = {"yes", "on", "truee", "t", "2", "01", "-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int before = check_failed;
		PARSE("OTEL_SDK_DISABLED", bad[i]);
		CHECK(!cfg.sdk_disabled);
		CHECK_ONE_WARNING("OTEL_SDK_DISABLED");
		CHECK(warned("is not true or false; using false"));
		PARSE("OTLPAUTO_STACKTRACE", bad[i]);
		CHECK(!cfg.stacktrace);
		CHECK_ONE_WARNING("OTLPAUTO_STACKTRACE");
		CHECK(warned("is not true or false (or 1 or 0); using false"));
		explain(before, "bool", bad[i]);
	}
	/* The spec's own booleans take no digits. */
	PARSE("OTEL_SDK_DISABLED", "1");
	CHECK(!cfg.sdk_disabled);
	CHECK_ONE_WARNING("OTEL_SDK_DISABLED=\"1\"");
	PARSE("OTEL_SDK_DISABLED", "0");
	CHECK_ONE_WARNING("OTEL_SDK_DISABLED=\"0\"");
}

/* ---- Enumerations ---- */

static void test_log_level(void)
{
	static const struct {
		const char *text;
		enum oa_log_level level;
	} good[] = {{"none", OA_LOG_NONE},     {"error", OA_LOG_ERROR}, {"warn", OA_LOG_WARN},
		    {"warning", OA_LOG_WARN},  {"info", OA_LOG_INFO},	{"debug", OA_LOG_DEBUG},
		    {" DEBUG ", OA_LOG_DEBUG}, {"Warning", OA_LOG_WARN}};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		PARSE("OTEL_LOG_LEVEL", good[i].text);
		CHECK_EQ_INT(cfg.log_level, good[i].level);
		CHECK_EQ_INT(oa_log_threshold, good[i].level);
		CHECK_QUIET();
	}
	PARSE("OTEL_LOG_LEVEL", "verbose");
	CHECK_EQ_INT(cfg.log_level, OA_LOG_INFO);
	CHECK_EQ_INT(oa_log_threshold, OA_LOG_INFO);
	CHECK_ONE_WARNING("OTEL_LOG_LEVEL=\"verbose\" is not one of none, error, warn, warning, "
			  "info, debug; using info");

	/* Parsed first, so it governs the warnings about the other variables. */
	PARSE("OTEL_BSP_SCHEDULE_DELAY", "abc", "OTEL_LOG_LEVEL", "none");
	CHECK_EQ_INT(cfg.schedule_delay_ms, 5000);
	CHECK_QUIET();
	PARSE("OTEL_BSP_SCHEDULE_DELAY", "abc", "OTEL_LOG_LEVEL", "error");
	CHECK_QUIET();
	PARSE("OTEL_BSP_SCHEDULE_DELAY", "abc", "OTEL_LOG_LEVEL", "warn");
	CHECK_ONE_WARNING("OTEL_BSP_SCHEDULE_DELAY");
	/* A bad level is reported at the default level, whatever the last parse chose. */
	PARSE("OTEL_LOG_LEVEL", "none");
	PARSE("OTEL_LOG_LEVEL", "loud");
	CHECK_ONE_WARNING("OTEL_LOG_LEVEL=\"loud\"");
	PARSE("OTEL_BSP_SCHEDULE_DELAY", "abc", "OTEL_LOG_LEVEL", "loud");
	CHECK_EQ_INT(line_count, 2);
	CHECK(strstr(lines[0], "OTEL_LOG_LEVEL=\"loud\"") != NULL);
	CHECK(strstr(lines[1], "OTEL_BSP_SCHEDULE_DELAY=\"abc\"") != NULL);
	parse(NULL);
	CHECK_EQ_INT(oa_log_threshold, OA_LOG_INFO);
}

static void test_sampler(void)
{
	static const struct {
		const char *text;
		enum oa_sampler_kind kind;
	} good[] = {
	    {"always_on", OA_SAMPLER_ALWAYS_ON},
	    {"always_off", OA_SAMPLER_ALWAYS_OFF},
	    {"traceidratio", OA_SAMPLER_TRACEIDRATIO},
	    {"parentbased_always_on", OA_SAMPLER_PARENTBASED_ALWAYS_ON},
	    {"parentbased_always_off", OA_SAMPLER_PARENTBASED_ALWAYS_OFF},
	    {"parentbased_traceidratio", OA_SAMPLER_PARENTBASED_TRACEIDRATIO},
	    {"adaptive", OA_SAMPLER_ADAPTIVE},
	    {"parentbased_adaptive", OA_SAMPLER_PARENTBASED_ADAPTIVE},
	    {" TraceIdRatio ", OA_SAMPLER_TRACEIDRATIO},
	    {"ALWAYS_OFF", OA_SAMPLER_ALWAYS_OFF},
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		PARSE("OTEL_TRACES_SAMPLER", good[i].text);
		CHECK_EQ_INT(cfg.sampler, good[i].kind);
		CHECK_QUIET();
	}
	static const char *const bad[] = {"parentbased_jaeger_remote", "xray", "always-on",
					  "always_on,always_off"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int before = check_failed;
		PARSE("OTEL_TRACES_SAMPLER", bad[i], "OTEL_TRACES_SAMPLER_ARG", "abc");
		CHECK_EQ_INT(cfg.sampler, OA_SAMPLER_PARENTBASED_ALWAYS_ON);
		CHECK(cfg.sampler_arg == 1.0);
		/* Only the sampler: the default one takes no argument. */
		CHECK_ONE_WARNING("OTEL_TRACES_SAMPLER=");
		CHECK(warned("; using parentbased_always_on"));
		explain(before, "OTEL_TRACES_SAMPLER", bad[i]);
	}
}

static void test_sampler_arg(void)
{
	static const char *const ratio_samplers[] = {"traceidratio", "parentbased_traceidratio"};
	static const char *const adaptive_samplers[] = {"adaptive", "parentbased_adaptive"};
	static const struct {
		const char *text;
		double value;
	} good_ratios[] = {{"0.25", 0.25},     {"0", 0.0},   {"1", 1.0},
			   {"1.0", 1.0},       {".5", 0.5},  {"5e-1", 0.5},
			   {" 0.125 ", 0.125}, {"0.1", 0.1}, {"1.", 1.0}},
	  good_rates[] = {{"250", 250.0}, {"0.5", 0.5}, {"1e3", 1000.0}, {"100000", 100000.0}};
	static const char *const bad_ratios[] = {"1.5", "-0.1",	  "+0.5",  "abc",   "nan",
						 "inf", "0x1p-1", "1e999", "0.5.5", "1,5",
						 ".",	"1e",	  "50%"};
	static const char *const bad_rates[] = {"0", "0.0", "-5", "abc", "1e999", "inf", "+1"};

	for (size_t s = 0; s < 2; s++) {
		PARSE("OTEL_TRACES_SAMPLER", ratio_samplers[s]);
		CHECK(cfg.sampler_arg == 1.0);
		CHECK_QUIET();
		for (size_t i = 0; i < sizeof good_ratios / sizeof good_ratios[0]; i++) {
			int before = check_failed;
			PARSE("OTEL_TRACES_SAMPLER", ratio_samplers[s], "OTEL_TRACES_SAMPLER_ARG",
			      good_ratios[i].text);
			CHECK(cfg.sampler_arg == good_ratios[i].value);
			CHECK_QUIET();
			explain(before, ratio_samplers[s], good_ratios[i].text);
		}
		for (size_t i = 0; i < sizeof bad_ratios / sizeof bad_ratios[0]; i++) {
			int before = check_failed;
			PARSE("OTEL_TRACES_SAMPLER", ratio_samplers[s], "OTEL_TRACES_SAMPLER_ARG",
			      bad_ratios[i]);
			CHECK(cfg.sampler_arg == 1.0);
			CHECK_ONE_WARNING("OTEL_TRACES_SAMPLER_ARG");
			CHECK(warned("is not a sampling ratio between 0 and 1; using 1"));
			explain(before, ratio_samplers[s], bad_ratios[i]);
		}

		PARSE("OTEL_TRACES_SAMPLER", adaptive_samplers[s]);
		CHECK(cfg.sampler_arg == 100.0);
		CHECK_QUIET();
		for (size_t i = 0; i < sizeof good_rates / sizeof good_rates[0]; i++) {
			int before = check_failed;
			PARSE("OTEL_TRACES_SAMPLER", adaptive_samplers[s],
			      "OTEL_TRACES_SAMPLER_ARG", good_rates[i].text);
			CHECK(cfg.sampler_arg == good_rates[i].value);
			CHECK_QUIET();
			explain(before, adaptive_samplers[s], good_rates[i].text);
		}
		for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
			int before = check_failed;
			PARSE("OTEL_TRACES_SAMPLER", adaptive_samplers[s],
			      "OTEL_TRACES_SAMPLER_ARG", bad_rates[i]);
			CHECK(cfg.sampler_arg == 100.0);
			CHECK_ONE_WARNING("OTEL_TRACES_SAMPLER_ARG");
			CHECK(warned("is not a positive number of sampled traces per second; "
				     "using 100"));
			explain(before, adaptive_samplers[s], bad_rates[i]);
		}
	}
	/* Samplers without an argument ignore it, even a bad one. */
	PARSE("OTEL_TRACES_SAMPLER_ARG", "abc");
	CHECK(cfg.sampler_arg == 1.0);
	CHECK_QUIET();
	PARSE("OTEL_TRACES_SAMPLER", "always_off", "OTEL_TRACES_SAMPLER_ARG", "0.5");
	CHECK(cfg.sampler_arg == 1.0);
	CHECK_QUIET();
}

static void check_propagators(const char *value, bool tracecontext, bool baggage)
{
	int before = check_failed;
	PARSE("OTEL_PROPAGATORS", value);
	CHECK_EQ_INT(cfg.propagate_tracecontext, tracecontext);
	CHECK_EQ_INT(cfg.propagate_baggage, baggage);
	explain(before, "OTEL_PROPAGATORS", value);
}

static void test_propagators(void)
{
	check_propagators("tracecontext", true, false);
	CHECK_QUIET();
	check_propagators("baggage", false, true);
	CHECK_QUIET();
	check_propagators("tracecontext,baggage", true, true);
	CHECK_QUIET();
	check_propagators(" BAGGAGE , TraceContext ,", true, true);
	CHECK_QUIET();
	check_propagators("none", false, false);
	CHECK_QUIET();
	check_propagators(" , ", true, true);
	CHECK_QUIET();

	check_propagators("b3,tracecontext", true, false);
	CHECK_ONE_WARNING("OTEL_PROPAGATORS=\"b3,tracecontext\"");
	CHECK(warned("; using tracecontext"));
	check_propagators("xray,b3multi,baggage,jaeger", false, true);
	CHECK_ONE_WARNING("OTEL_PROPAGATORS");
	CHECK(warned("; using baggage"));
	/* Nothing supported named: the default. */
	check_propagators("b3", true, true);
	CHECK_ONE_WARNING("OTEL_PROPAGATORS=\"b3\"");
	CHECK(warned("; using tracecontext,baggage"));
	check_propagators("b3,jaeger,xray", true, true);
	CHECK_ONE_WARNING("OTEL_PROPAGATORS");
	check_propagators("none,tracecontext", false, false);
	CHECK_ONE_WARNING("OTEL_PROPAGATORS=\"none,tracecontext\" combines none");
	CHECK(warned("; using none"));
	check_propagators("b3,none", false, false);
	CHECK_ONE_WARNING("OTEL_PROPAGATORS");
}

static void test_traces_exporter(void)
{
	static const struct {
		const char *text;
		enum oa_exporter_kind kind;
	} good[] = {
		{"otlp", OA_EXPORTER_OTLP},
		{"console", OA_EXPORTER_CONSOLE},
		{"none", OA_EXPORTER_NONE},
		{" CONSOLE ", OA_EXPORTER_CONSOLE},
#if OA_FEATURE_JSON
		{"otlp/file", OA_EXPORTER_FILE},
		{"OTLP/File", OA_EXPORTER_FILE},
#endif
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		PARSE("OTEL_TRACES_EXPORTER", good[i].text);
		CHECK_EQ_INT(cfg.exporter, good[i].kind);
		CHECK_QUIET();
	}
	/* One exporter at a time: the first supported entry, a warning about the rest. */
	PARSE("OTEL_TRACES_EXPORTER", "console,otlp");
	CHECK_EQ_INT(cfg.exporter, OA_EXPORTER_CONSOLE);
	CHECK_ONE_WARNING("OTEL_TRACES_EXPORTER=\"console,otlp\"");
	CHECK(warned("; using only console"));
	PARSE("OTEL_TRACES_EXPORTER", "zipkin, none");
	CHECK_EQ_INT(cfg.exporter, OA_EXPORTER_NONE);
	CHECK_ONE_WARNING("OTEL_TRACES_EXPORTER");
	CHECK(warned("; using only none"));
	PARSE("OTEL_TRACES_EXPORTER", "console,");
	CHECK_EQ_INT(cfg.exporter, OA_EXPORTER_CONSOLE);
	CHECK_QUIET();
	static const char *const bad[] = {
		"zipkin",
		"jaeger,zipkin",
		"otlp/grpc",
		"logging",
#if !OA_FEATURE_JSON
		"otlp/file", /* the file exporter writes JSON */
#endif
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int before = check_failed;
		PARSE("OTEL_TRACES_EXPORTER", bad[i]);
		CHECK_EQ_INT(cfg.exporter, OA_EXPORTER_OTLP);
		CHECK_ONE_WARNING("OTEL_TRACES_EXPORTER");
		CHECK(warned("; using otlp"));
		explain(before, "OTEL_TRACES_EXPORTER", bad[i]);
	}
}

static void test_compression_protocol(void)
{
	static const char *const suffixes[] = {"COMPRESSION", "PROTOCOL"};
	for (int traces = 0; traces < 2; traces++) {
		char compression[64], protocol[64];
		snprintf(compression, sizeof compression, "OTEL_EXPORTER_OTLP_%s%s",
			 traces ? "TRACES_" : "", suffixes[0]);
		snprintf(protocol, sizeof protocol, "OTEL_EXPORTER_OTLP_%s%s",
			 traces ? "TRACES_" : "", suffixes[1]);
#if OA_FEATURE_GZIP
		PARSE(compression, "gzip");
		CHECK(cfg.gzip);
		CHECK_QUIET();
		PARSE(compression, " GZip ");
		CHECK(cfg.gzip);
		CHECK_QUIET();
#endif
#if !OA_FEATURE_GZIP
		PARSE(compression, "gzip");
		CHECK(!cfg.gzip);
		CHECK_ONE_WARNING(compression);
		CHECK(warned("is not one of none; using none"));
#endif
		PARSE(compression, "none");
		CHECK(!cfg.gzip);
		CHECK_QUIET();
		PARSE(compression, "deflate");
		CHECK(!cfg.gzip);
		CHECK_ONE_WARNING(compression);
		CHECK(warned("; using none"));

		PARSE(protocol, "http/protobuf");
		CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_PROTOBUF);
		CHECK_QUIET();
#if OA_FEATURE_JSON
		PARSE(protocol, "http/json");
		CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_JSON);
		CHECK_QUIET();
		PARSE(protocol, " HTTP/JSON ");
		CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_JSON);
		CHECK_QUIET();
#endif
#if !OA_FEATURE_JSON
		PARSE(protocol, "http/json");
		CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_PROTOBUF);
		CHECK_ONE_WARNING(protocol);
		CHECK(warned("is not one of http/protobuf; using http/protobuf"));
#endif
		PARSE(protocol, "grpc");
		CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_PROTOBUF);
		CHECK_ONE_WARNING(protocol);
		CHECK(warned("grpc is not supported; using http/protobuf"));
		PARSE(protocol, "GRPC");
		CHECK_ONE_WARNING("grpc is not supported; using http/protobuf");
		PARSE(protocol, "http/thrift");
		CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_PROTOBUF);
		CHECK_ONE_WARNING(protocol);
		CHECK(warned("=\"http/thrift\" is not one of"));
		CHECK(warned("; using http/protobuf"));
	}
#if OA_FEATURE_GZIP && OA_FEATURE_JSON
	/* The TRACES variant wins, and the general one is not even looked at
	 * (by the metrics either, with their own). */
	PARSE("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	      "none", "OTEL_EXPORTER_OTLP_PROTOCOL", "bogus", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	      "http/json", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf");
	CHECK(!cfg.gzip);
	CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_JSON);
	CHECK(cfg.metrics_otlp.gzip);
	CHECK_EQ_INT(cfg.metrics_otlp.protocol, OA_PROTOCOL_PROTOBUF);
	CHECK_QUIET();
	PARSE("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	      "http/json");
	CHECK_ONE_WARNING("OTEL_EXPORTER_OTLP_PROTOCOL");
	PARSE("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
	CHECK(cfg.gzip);
	CHECK_EQ_INT(cfg.protocol, OA_PROTOCOL_JSON);
#endif
}

static void test_backpressure(void)
{
	PARSE("OTLPAUTO_BACKPRESSURE", "block");
	CHECK_EQ_INT(cfg.backpressure, OA_BACKPRESSURE_BLOCK);
	CHECK_QUIET();
	PARSE("OTLPAUTO_BACKPRESSURE", " BLOCK ");
	CHECK_EQ_INT(cfg.backpressure, OA_BACKPRESSURE_BLOCK);
	PARSE("OTLPAUTO_BACKPRESSURE", "drop");
	CHECK_EQ_INT(cfg.backpressure, OA_BACKPRESSURE_DROP);
	CHECK_QUIET();
	PARSE("OTLPAUTO_BACKPRESSURE", "wait");
	CHECK_EQ_INT(cfg.backpressure, OA_BACKPRESSURE_DROP);
	CHECK_ONE_WARNING("OTLPAUTO_BACKPRESSURE=\"wait\" is not one of drop, block; using drop");
}

static void test_db_statement(void)
{
	PARSE("OTLPAUTO_DB_STATEMENT", "off");
	CHECK_EQ_INT(cfg.db_statement, OA_DB_STATEMENT_OFF);
	CHECK_QUIET();
	PARSE("OTLPAUTO_DB_STATEMENT", "Sanitized");
	CHECK_EQ_INT(cfg.db_statement, OA_DB_STATEMENT_SANITIZED);
	CHECK_QUIET();
	PARSE("OTLPAUTO_DB_STATEMENT", "raw");
	CHECK_EQ_INT(cfg.db_statement, OA_DB_STATEMENT_SANITIZED);
	CHECK_ONE_WARNING(
	    "OTLPAUTO_DB_STATEMENT=\"raw\" is not one of sanitized, off; using sanitized");
}

static void test_db_propagation(void)
{
	PARSE("OTLPAUTO_DB_PROPAGATION", "comment");
	CHECK_EQ_INT(cfg.db_propagation, OA_DB_PROPAGATION_COMMENT);
	CHECK_QUIET();
	PARSE("OTLPAUTO_DB_PROPAGATION", "Off");
	CHECK_EQ_INT(cfg.db_propagation, OA_DB_PROPAGATION_OFF);
	CHECK_QUIET();
	PARSE("OTLPAUTO_DB_PROPAGATION", "comments");
	CHECK_EQ_INT(cfg.db_propagation, OA_DB_PROPAGATION_OFF);
	CHECK_ONE_WARNING(
	    "OTLPAUTO_DB_PROPAGATION=\"comments\" is not one of off, comment; using off");
}

static void test_redact_query(void)
{
	PARSE("OTLPAUTO_REDACT_QUERY", "all");
	CHECK_EQ_INT(cfg.redact_query, OA_REDACT_QUERY_ALL);
	CHECK_QUIET();
	PARSE("OTLPAUTO_REDACT_QUERY", "None");
	CHECK_EQ_INT(cfg.redact_query, OA_REDACT_QUERY_NONE);
	PARSE("OTLPAUTO_REDACT_QUERY", "sensitive");
	CHECK_EQ_INT(cfg.redact_query, OA_REDACT_QUERY_SENSITIVE);
	CHECK_QUIET();
	PARSE("OTLPAUTO_REDACT_QUERY", "some");
	CHECK_EQ_INT(cfg.redact_query, OA_REDACT_QUERY_SENSITIVE);
	CHECK_ONE_WARNING(
	    "OTLPAUTO_REDACT_QUERY=\"some\" is not one of sensitive, all, none; using sensitive");
}

static void check_hooks(const char *value, uint32_t expected)
{
	int before = check_failed;
	PARSE("OTLPAUTO_HOOKS", value);
	CHECK_EQ_INT(cfg.hooks, expected);
	explain(before, "OTLPAUTO_HOOKS", value);
}

static void test_hooks(void)
{
	const uint32_t all = OA_HOOKS_DEFAULT | OA_HOOK_FILES;
	static const struct {
		const char *name;
		uint32_t bit;
	} families[] = {{"functions", OA_HOOK_FUNCTIONS},
			{"sockets", OA_HOOK_SOCKETS},
			{"dns", OA_HOOK_DNS},
			{"http", OA_HOOK_HTTP},
			{"process", OA_HOOK_PROCESS},
			{"files", OA_HOOK_FILES},
			{"tls", OA_HOOK_TLS}};
	/* A family named alone: on if built, else reported and the default kept. */
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
		if (families[i].bit & hooks_built) {
			check_hooks(families[i].name, families[i].bit);
			CHECK_QUIET();
		} else {
			check_hooks(families[i].name, OA_HOOKS_DEFAULT & hooks_built);
			CHECK_ONE_WARNING("OTLPAUTO_HOOKS");
			CHECK(warned("not built in"));
		}
	}
	/* Keywords quietly leave out what is not built. */
	check_hooks("default", OA_HOOKS_DEFAULT & hooks_built);
	CHECK_QUIET();
	check_hooks("all", all & hooks_built);
	CHECK_QUIET();
	check_hooks("none", 0);
	CHECK_QUIET();
	check_hooks(" NONE ", 0);
	CHECK_QUIET();
	check_hooks("none,process", OA_HOOK_PROCESS);
	CHECK_QUIET();
	check_hooks(",", OA_HOOKS_DEFAULT & hooks_built);
	CHECK_QUIET();
	check_hooks("bogus,Process", OA_HOOK_PROCESS);
	CHECK_ONE_WARNING("OTLPAUTO_HOOKS=\"bogus,Process\"");
	CHECK(warned("; using process"));
	/* Nothing known named: the default set. */
	check_hooks("bogus", OA_HOOKS_DEFAULT & hooks_built);
	CHECK_ONE_WARNING("OTLPAUTO_HOOKS=\"bogus\"");
#if OA_FEATURE_FUNCTIONS && OA_FEATURE_SOCKETS && OA_FEATURE_FILES
	CHECK(warned("; using functions,sockets,dns,http,process"));
	check_hooks("sockets, dns", OA_HOOK_SOCKETS | OA_HOOK_DNS);
	CHECK_QUIET();
	check_hooks("HTTP,Process", OA_HOOK_HTTP | OA_HOOK_PROCESS);
	CHECK_QUIET();
	check_hooks("default,files", all);
	CHECK_QUIET();
	check_hooks("functions,sockets,dns,http,process,files,tls", all);
	CHECK_QUIET();
	check_hooks("none,files", OA_HOOK_FILES);
	CHECK_QUIET();
	check_hooks("dns,syscalls,memory", OA_HOOK_DNS);
	CHECK_ONE_WARNING("OTLPAUTO_HOOKS");
	CHECK(warned("; using dns"));
#endif
}

static void test_function_lists(void)
{
	PARSE("OTLPAUTO_FUNCTION_INCLUDE", " main, my_*,,*_handler ", "OTLPAUTO_FUNCTION_EXCLUDE",
	      "*_inline");
	CHECK_QUIET();
	CHECK_EQ_INT(cfg.function_include.n, 3);
	if (cfg.function_include.n == 3) {
		CHECK_EQ_STR(cfg.function_include.items[0], "main");
		CHECK_EQ_STR(cfg.function_include.items[1], "my_*");
		CHECK_EQ_STR(cfg.function_include.items[2], "*_handler");
	}
	CHECK_EQ_INT(cfg.function_exclude.n, 1);
	if (cfg.function_exclude.n == 1)
		CHECK_EQ_STR(cfg.function_exclude.items[0], "*_inline");
	PARSE("OTLPAUTO_FUNCTION_INCLUDE", ",");
	CHECK_EQ_INT(cfg.function_include.n, 0);
	CHECK_EQ_INT(cfg.function_exclude.n, 0);
}

/* ---- Strings ---- */

static void test_strings(void)
{
	PARSE("OTEL_SERVICE_NAME", " checkout ");
	CHECK_EQ_STR(cfg.service_name, "checkout");
	CHECK_QUIET();
	PARSE("OTLPAUTO_FILE", " /tmp/spans.jsonl ");
	CHECK_EQ_STR(cfg.file_path, "/tmp/spans.jsonl");

	static const char *const suffixes[] = {"CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"};
	for (size_t i = 0; i < 3; i++) {
		char general[64], traces[64];
		snprintf(general, sizeof general, "OTEL_EXPORTER_OTLP_%s", suffixes[i]);
		snprintf(traces, sizeof traces, "OTEL_EXPORTER_OTLP_TRACES_%s", suffixes[i]);
		char *const *field = i == 0   ? &cfg.certificate
				     : i == 1 ? &cfg.client_key
					      : &cfg.client_certificate;
		PARSE(general, "/etc/general.pem");
		CHECK_EQ_STR(*field, "/etc/general.pem");
		PARSE(general, "/etc/general.pem", traces, " /etc/traces.pem ");
		CHECK_EQ_STR(*field, "/etc/traces.pem");
		PARSE(general, "/etc/general.pem", traces, "");
		CHECK_EQ_STR(*field, "/etc/general.pem");
		CHECK_QUIET();
	}
}

static void test_resource_attributes(void)
{
	PARSE("OTEL_RESOURCE_ATTRIBUTES",
	      "service.version=1.2, deployment.environment = prod ,note=a%2Cb%3Dc%20d,");
	CHECK_QUIET();
	CHECK_EQ_INT(cfg.resource_attributes.n, 3);
	if (cfg.resource_attributes.n == 3) {
		CHECK_EQ_STR(cfg.resource_attributes.items[0].key, "service.version");
		CHECK_EQ_STR(cfg.resource_attributes.items[0].value, "1.2");
		CHECK_EQ_STR(cfg.resource_attributes.items[1].key, "deployment.environment");
		CHECK_EQ_STR(cfg.resource_attributes.items[1].value, "prod");
		CHECK_EQ_STR(cfg.resource_attributes.items[2].key, "note");
		CHECK_EQ_STR(cfg.resource_attributes.items[2].value, "a,b=c d");
	}
	/* Any bad item drops the whole variable (the spec). */
	static const char *const bad[] = {"a=1,b=%zz", "a=%4",	  "a=1,novalue", "=v",
					  "a=1,%zz=2", "a=1, =2", "a=%00"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int before = check_failed;
		char quoted[64];
		snprintf(quoted, sizeof quoted, "OTEL_RESOURCE_ATTRIBUTES=\"%s\"", bad[i]);
		PARSE("OTEL_RESOURCE_ATTRIBUTES", bad[i]);
		CHECK_EQ_INT(cfg.resource_attributes.n, 0);
		CHECK(cfg.resource_attributes.items == NULL);
		CHECK_ONE_WARNING(quoted);
		CHECK(warned("ignoring all of it"));
		explain(before, "OTEL_RESOURCE_ATTRIBUTES", bad[i]);
	}
}

static void test_headers(void)
{
	PARSE("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret123, X-Tenant = a%20b ,empty=");
	CHECK_QUIET();
	CHECK_EQ_INT(cfg.headers.n, 3);
	if (cfg.headers.n == 3) {
		CHECK_EQ_STR(cfg.headers.items[0].key, "api-key");
		CHECK_EQ_STR(cfg.headers.items[0].value, "secret123");
		CHECK_EQ_STR(cfg.headers.items[1].key, "X-Tenant");
		CHECK_EQ_STR(cfg.headers.items[1].value, "a b");
		CHECK_EQ_STR(cfg.headers.items[2].key, "empty");
		CHECK_EQ_STR(cfg.headers.items[2].value, "");
	}
	PARSE("OTEL_EXPORTER_OTLP_HEADERS", "a=general", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	      "b=traces");
	CHECK_EQ_INT(cfg.headers.n, 1);
	if (cfg.headers.n == 1)
		CHECK_EQ_STR(cfg.headers.items[0].key, "b");
	CHECK_QUIET();

	/* Every bad form: one warning, never the value (it carries the secret). */
	static const char *const bad[] = {
	    "api-key",			     /* no '=' */
	    "=secretvalue",		     /* empty key */
	    "api-key=secret%zz",	     /* bad escape */
	    "api-key=secret%4",		     /* short escape */
	    "a=1,secretvalue",		     /* one bad item spoils all */
	    "api-key=secret%0d%0aX-Evil: 1", /* decoded CRLF would inject a header */
	    "api-key=secret%00",	     /* NUL */
	    "bad key=secretvalue",	     /* not an HTTP token */
	    "api:key=secretvalue",
	};
	for (int traces = 0; traces < 2; traces++) {
		const char *name =
		    traces ? "OTEL_EXPORTER_OTLP_TRACES_HEADERS" : "OTEL_EXPORTER_OTLP_HEADERS";
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			int before = check_failed;
			PARSE(name, bad[i]);
			CHECK_EQ_INT(cfg.headers.n, 0);
			CHECK(cfg.headers.items == NULL);
			CHECK_ONE_WARNING(name);
			CHECK(warned("is malformed"));
			CHECK(strstr(lines[0], "secret") == NULL);
			CHECK(strstr(lines[0], "api") == NULL);
			explain(before, name, bad[i]);
		}
	}
	PARSE("OTEL_EXPORTER_OTLP_HEADERS", "api-key");
	CHECK_EQ_STR(lines[0], "otlpauto: OTEL_EXPORTER_OTLP_HEADERS is malformed (expected "
			       "comma-separated key=value pairs, percent-encoded); ignoring it "
			       "and sending no extra headers");
	/* The TRACES variant wins even when malformed. */
	PARSE("OTEL_EXPORTER_OTLP_HEADERS", "a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "oops");
	CHECK_EQ_INT(cfg.headers.n, 0);
	CHECK_ONE_WARNING("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
}

static void check_endpoint(const char *name, const char *value, const char *expected)
{
	int before = check_failed;
	PARSE(name, value);
	CHECK_EQ_STR(cfg.endpoint, expected);
	CHECK_QUIET();
	explain(before, name, value);
}

static void test_endpoint(void)
{
	const char *general = "OTEL_EXPORTER_OTLP_ENDPOINT";
	const char *traces = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
	check_endpoint(general, "http://h:4318", "http://h:4318/v1/traces");
	check_endpoint(general, "http://h:4318/", "http://h:4318/v1/traces");
	check_endpoint(general, "http://h/base", "http://h/base/v1/traces");
	check_endpoint(general, " https://collector.example.com ",
		       "https://collector.example.com/v1/traces");
	check_endpoint(general, "HTTPS://H", "HTTPS://H/v1/traces");
	check_endpoint(general, "http://[::1]:4318", "http://[::1]:4318/v1/traces");
	check_endpoint(general, "http://user:pw@h:4318", "http://user:pw@h:4318/v1/traces");
	/* The TRACES variant is used as is. */
	check_endpoint(traces, "http://c:9999/custom", "http://c:9999/custom");
	check_endpoint(traces, "http://c:9999", "http://c:9999");
	check_endpoint(traces, "https://c/v1/traces?x=1", "https://c/v1/traces?x=1");
	check_endpoint(traces, "Http://c:65535/", "Http://c:65535/");
	/* ... and wins, so a bad general one is not even looked at (when the
	 * metrics have theirs too; else they report it, once). */
	PARSE(general, "garbage", traces, "http://t/x", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	      "http://m/x");
	CHECK_EQ_STR(cfg.endpoint, "http://t/x");
	CHECK_EQ_STR(cfg.metrics_endpoint, "http://m/x");
	CHECK_QUIET();
	PARSE(general, "garbage", traces, "http://t/x");
	CHECK_EQ_STR(cfg.metrics_endpoint, "http://localhost:4318/v1/metrics");
	CHECK_ONE_WARNING(general);

	static const char *const bad[] = {
	    "localhost:4318", "ftp://h",	"http://",
	    "http:///v1",     "http://:4318",	"http//h",
	    "http://h o",     "http://h\x01",	"http://h\x7f",
	    "http://h:99999", "http://h:65536", "http://h:abc",
	    "http://h:1:2",   "http://[::1",	"http://[]:1",
	    "http://[::1]x",  "https:/h",	"h",
	    "http://h/ path", "grpc://h:4317",
	};
	for (int is_traces = 0; is_traces < 2; is_traces++) {
		const char *name = is_traces ? traces : general;
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			int before = check_failed;
			PARSE(name, bad[i]);
			CHECK_EQ_STR(cfg.endpoint, "http://localhost:4318/v1/traces");
			CHECK_ONE_WARNING(name);
			CHECK(warned("is not an http:// or https:// URL with a host; using "
				     "http://localhost:4318/v1/traces"));
			explain(before, name, bad[i]);
		}
	}
	PARSE(general, "ftp://h");
	CHECK_EQ_STR(lines[0], "otlpauto: OTEL_EXPORTER_OTLP_ENDPOINT=\"ftp://h\" is not an "
			       "http:// or https:// URL with a host; using "
			       "http://localhost:4318/v1/traces");
	/* The TRACES one wins even when bad: the default, not the general one. */
	PARSE(general, "http://g:4318", traces, "nonsense");
	CHECK_EQ_STR(cfg.endpoint, "http://localhost:4318/v1/traces");
	CHECK_ONE_WARNING(traces);

	/* Userinfo never reaches a warning, however malformed the URL around it. */
	static const char *const with_secret[] = {
	    "http://user:hunter2@bad host", "ftp://user:hunter2@h",  "user:hunter2@h o",
	    "http:/user:hunter2@h\x01",	    "http://a@b:hunter2@ h", "x@y://user:hunter2@ h",
	    "user:hunter2@h:// x",
	};
	for (int is_traces = 0; is_traces < 2; is_traces++) {
		const char *name = is_traces ? traces : general;
		for (size_t i = 0; i < sizeof with_secret / sizeof with_secret[0]; i++) {
			int before = check_failed;
			PARSE(name, with_secret[i]);
			CHECK_ONE_WARNING(name);
			CHECK(strstr(lines[0], "hunter2") == NULL);
			CHECK(strstr(lines[0], "user") == NULL);
			CHECK(warned("***@"));
			explain(before, name, with_secret[i]);
		}
	}
	PARSE(general, "ftp://user:hunter2@h/x");
	CHECK(warned("OTEL_EXPORTER_OTLP_ENDPOINT=\"ftp://***@h/x\" is not"));
}

/* ---- Warnings stay one line, with their tail ---- */

static void test_metrics(void)
{
	PARSE("OTEL_SERVICE_NAME", "x");
	CHECK_EQ_INT(cfg.metrics_exporter, OA_EXPORTER_OTLP);
	CHECK_EQ_STR(cfg.metrics_endpoint, "http://localhost:4318/v1/metrics");
	CHECK_EQ_INT(cfg.metric_export_interval_ms, 60000);
	CHECK_EQ_INT(cfg.metric_export_timeout_ms, 30000);
	CHECK_EQ_INT(cfg.metrics_temporality, OA_TEMPORALITY_CUMULATIVE);
	CHECK_EQ_INT(cfg.metrics_max_series, 2000);
	CHECK_QUIET();
	/* Unset, metrics go where spans go, but for the console. */
	PARSE("OTEL_TRACES_EXPORTER", "console");
	CHECK_EQ_INT(cfg.metrics_exporter, OA_EXPORTER_NONE);
	PARSE("OTEL_TRACES_EXPORTER", "otlp/file");
	CHECK_EQ_INT(cfg.metrics_exporter, OA_EXPORTER_FILE);
	PARSE("OTEL_TRACES_EXPORTER", "otlp/file", "OTEL_METRICS_EXPORTER", "none");
	CHECK_EQ_INT(cfg.metrics_exporter, OA_EXPORTER_NONE);
	PARSE("OTEL_TRACES_EXPORTER", "none", "OTEL_METRICS_EXPORTER", "otlp");
	CHECK_EQ_INT(cfg.metrics_exporter, OA_EXPORTER_OTLP);
	PARSE("OTEL_METRICS_EXPORTER", "Console");
	CHECK_EQ_INT(cfg.metrics_exporter, OA_EXPORTER_CONSOLE);
	CHECK_QUIET();
	PARSE("OTEL_METRICS_EXPORTER", "prometheus");
	CHECK_EQ_INT(cfg.metrics_exporter, OA_EXPORTER_OTLP);
	CHECK_ONE_WARNING("OTEL_METRICS_EXPORTER");
	/* the general endpoint gets the metrics path; the metrics one is as is */
	PARSE("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/");
	CHECK_EQ_STR(cfg.endpoint, "http://c:4318/v1/traces");
	CHECK_EQ_STR(cfg.metrics_endpoint, "http://c:4318/v1/metrics");
	PARSE("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	      "http://m:1/custom");
	CHECK_EQ_STR(cfg.metrics_endpoint, "http://m:1/custom");
	CHECK_QUIET();
	PARSE("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "ftp://m");
	CHECK_EQ_STR(cfg.metrics_endpoint, "http://localhost:4318/v1/metrics");
	CHECK_ONE_WARNING("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
	/* one warning for a bad general endpoint, not one per signal */
	PARSE("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c");
	CHECK_ONE_WARNING("OTEL_EXPORTER_OTLP_ENDPOINT");
	PARSE("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "DELTA",
	      "OTEL_METRIC_EXPORT_INTERVAL", "250", "OTLPAUTO_METRICS_MAX_SERIES", "3");
	CHECK_EQ_INT(cfg.metrics_temporality, OA_TEMPORALITY_DELTA);
	CHECK_EQ_INT(cfg.metric_export_interval_ms, 250);
	CHECK_EQ_INT(cfg.metrics_max_series, 3);
	CHECK_QUIET();
	PARSE("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "lowmemory");
	CHECK_EQ_INT(cfg.metrics_temporality, OA_TEMPORALITY_LOWMEMORY);
	PARSE("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes");
	CHECK_EQ_INT(cfg.metrics_temporality, OA_TEMPORALITY_CUMULATIVE);
	CHECK_ONE_WARNING("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
	PARSE("OTEL_METRIC_EXPORT_INTERVAL", "0");
	CHECK_EQ_INT(cfg.metric_export_interval_ms, 60000);
	CHECK_ONE_WARNING("OTEL_METRIC_EXPORT_INTERVAL");
	/* their own OTLP settings, else the general ones; never the traces' */
	PARSE("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "t=1", "OTEL_EXPORTER_OTLP_HEADERS", "g=2",
	      "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1000", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
	      "3000", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/t.pem",
	      "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "/m.key");
	CHECK_EQ_INT(cfg.metrics_otlp.headers.n, 1);
	if (cfg.metrics_otlp.headers.n == 1)
		CHECK_EQ_STR(cfg.metrics_otlp.headers.items[0].key, "g");
	CHECK_EQ_INT(cfg.metrics_otlp.timeout_ms, 3000);
	CHECK_EQ_INT(cfg.otlp_timeout_ms, 1000);
	CHECK(cfg.metrics_otlp.certificate == NULL);
	CHECK_EQ_STR(cfg.metrics_otlp.client_key, "/m.key");
	CHECK(cfg.client_key == NULL);
	CHECK_QUIET();
	PARSE("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "m=3", "OTEL_EXPORTER_OTLP_HEADERS", "g=2");
	CHECK_EQ_INT(cfg.metrics_otlp.headers.n, 1);
	if (cfg.metrics_otlp.headers.n == 1)
		CHECK_EQ_STR(cfg.metrics_otlp.headers.items[0].key, "m");
	/* a bad general value is reported once; a bad metrics one by itself */
	PARSE("OTEL_EXPORTER_OTLP_TIMEOUT", "soon");
	CHECK_ONE_WARNING("OTEL_EXPORTER_OTLP_TIMEOUT");
	CHECK_EQ_INT(cfg.metrics_otlp.timeout_ms, 10000);
	PARSE("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd");
	CHECK_ONE_WARNING("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION");
	PARSE("OTLPAUTO_METRICS_MAX_SERIES", "lots");
	CHECK_EQ_INT(cfg.metrics_max_series, 2000);
	CHECK_ONE_WARNING("OTLPAUTO_METRICS_MAX_SERIES");
}

static void test_warning_text(void)
{
	char long_value[2001];
	memset(long_value, 'x', sizeof long_value - 1);
	long_value[sizeof long_value - 1] = '\0';
	PARSE("OTEL_TRACES_SAMPLER", long_value);
	CHECK_ONE_WARNING("OTEL_TRACES_SAMPLER=\"xxx");
	CHECK(warned("xxx...\" is not one of"));
	CHECK(warned("; using parentbased_always_on"));
	CHECK(strlen(lines[0]) < 1000);

	PARSE("OTEL_BSP_SCHEDULE_DELAY", "1\n2\r3");
	CHECK_ONE_WARNING("OTEL_BSP_SCHEDULE_DELAY=\"1\\x0a2\\x0d3\"");
	CHECK(strchr(lines[0], '\n') == NULL && strchr(lines[0], '\r') == NULL);
	PARSE("OTEL_BSP_SCHEDULE_DELAY", "a\"b\\c");
	CHECK_ONE_WARNING("OTEL_BSP_SCHEDULE_DELAY=\"a\\\"b\\\\c\" is not");
}

/* ---- Lifetime ---- */

static void test_free(void)
{
	PARSE("OTEL_SERVICE_NAME", "s", "OTEL_RESOURCE_ATTRIBUTES", "a=1",
	      "OTEL_EXPORTER_OTLP_ENDPOINT", "http://h", "OTEL_EXPORTER_OTLP_HEADERS", "k=v",
	      "OTEL_EXPORTER_OTLP_CERTIFICATE", "c", "OTEL_EXPORTER_OTLP_CLIENT_KEY", "k",
	      "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "cc", "OTLPAUTO_FILE", "f",
	      "OTLPAUTO_FUNCTION_INCLUDE", "i", "OTLPAUTO_FUNCTION_EXCLUDE", "e");
	CHECK_QUIET();
	/* Parsing again replaces everything: what the first parse set is gone. */
	PARSE("OTEL_SERVICE_NAME", "t");
	CHECK_EQ_STR(cfg.service_name, "t");
	CHECK_EQ_INT(cfg.resource_attributes.n, 0);
	CHECK_EQ_STR(cfg.endpoint, "http://localhost:4318/v1/traces");
	CHECK(cfg.file_path == NULL);
	CHECK_EQ_INT(cfg.function_include.n, 0);
	oa_config_free(&cfg);
	CHECK(cfg.service_name == NULL && cfg.endpoint == NULL);
	CHECK(cfg.resource_attributes.items == NULL && cfg.headers.items == NULL);
	oa_config_free(&cfg); /* harmless twice */
	/* A zeroed struct may be parsed too. */
	memset(&cfg, 0, sizeof cfg);
	parse(NULL);
	check_defaults();
}

int main(void)
{
	oa_log_set_sink(capture);
	oa_config_defaults(&cfg);

	test_parse_bool();
	test_parse_uint();
	test_parse_duration();
	test_percent_decode();
	test_parse_kv_list();
	test_parse_str_list();
	test_endpoint_join();
	test_defaults();
	test_uint_vars();
	test_batch_size();
	test_limit_precedence();
	test_exporter_cpu();
	test_duration_vars();
	test_bools();
	test_log_level();
	test_sampler();
	test_sampler_arg();
	test_propagators();
	test_traces_exporter();
	test_compression_protocol();
	test_backpressure();
	test_redact_query();
	test_db_statement();
	test_db_propagation();
	test_hooks();
	test_function_lists();
	test_strings();
	test_resource_attributes();
	test_headers();
	test_endpoint();
	test_metrics();
	test_warning_text();
	test_free();

	oa_config_free(&cfg);
	oa_log_set_sink(NULL);
	CHECK_DONE();
}
