#include "config.h"
#include "hex.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "text.h"

#if !defined(OA_FEATURE_FUNCTIONS) || !defined(OA_FEATURE_SOCKETS) ||                              \
    !defined(OA_FEATURE_FILES) || !defined(OA_FEATURE_GZIP) || !defined(OA_FEATURE_JSON)
#error "meson passes OA_FEATURE_*; without them every optional feature would silently be off"
#endif

#define DEFAULT_ENDPOINT	 "http://localhost:4318/v1/traces"
#define TRACES_PATH		 "v1/traces"
#define DEFAULT_METRICS_ENDPOINT "http://localhost:4318/v1/metrics"
#define METRICS_PATH		 "v1/metrics"

/* Hook families this build contains; the sockets feature carries DNS and HTTP. */
#define HOOKS_BUILT                                                                                \
	((OA_FEATURE_FUNCTIONS ? OA_HOOK_FUNCTIONS : 0) |                                          \
	 (OA_FEATURE_SOCKETS ? OA_HOOK_SOCKETS | OA_HOOK_DNS | OA_HOOK_HTTP | OA_HOOK_TLS : 0) |   \
	 OA_HOOK_PROCESS | (OA_FEATURE_FILES ? OA_HOOK_FILES : 0))
#define HOOKS_ALL                                                                                  \
	(OA_HOOK_FUNCTIONS | OA_HOOK_SOCKETS | OA_HOOK_DNS | OA_HOOK_HTTP | OA_HOOK_PROCESS |      \
	 OA_HOOK_FILES | OA_HOOK_TLS)

#define NS_PER_US UINT64_C(1000)
#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S  UINT64_C(1000000000)

/* ---- Pure parsers ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Narrows [*start, *end) to exclude surrounding blanks. */
static void trim(const char **start, const char **end)
{
	while (*start < *end && is_blank(**start))
		(*start)++;
	while (*end > *start && is_blank((*end)[-1]))
		(*end)--;
}

static char *copy_range(const char *start, const char *end)
{
	size_t len = (size_t)(end - start);
	char *copy = malloc(len + 1);
	if (copy) {
		memcpy(copy, start, len);
		copy[len] = '\0';
	}
	return copy;
}

/* ASCII case-insensitive comparisons: strcasecmp's code (locale-aware, two
 * pages) would be touched only for this by every traced process's start. */
static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 'a' - 'A') : c;
}

static bool same_word(const char *a, const char *b)
{
	for (; lower(*a) == lower(*b); a++, b++)
		if (!*a)
			return true;
	return false;
}

/* s starts with prefix, in either case. */
static bool same_prefix(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (lower(*s) != lower(*prefix))
			return false;
	return true;
}

bool oa_parse_bool(const char *s, bool *out)
{
	if (same_word(s, "true"))
		*out = true;
	else if (same_word(s, "false"))
		*out = false;
	else
		return false;
	return true;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_digit(*s))
			return false;
	return true;
}

bool oa_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	if (!all_digits(s))
		return false;
	uint64_t value = 0;
	for (; *s; s++) {
		uint64_t digit = (uint64_t)(*s - '0');
		if (digit > max || value > (max - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	*out = value;
	return true;
}

bool oa_parse_duration_ns(const char *s, uint64_t *out)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {{"ns", 1}, {"us", NS_PER_US}, {"ms", NS_PER_MS}, {"s", NS_PER_S}};

	/* A bare number is ambiguous (which unit?), except zero. */
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return true;
	}
	const char *p = s;
	uint64_t whole = 0;
	for (; is_digit(*p); p++) {
		uint64_t digit = (uint64_t)(*p - '0');
		if (whole > (UINT64_MAX - digit) / 10)
			return false;
		whole = whole * 10 + digit;
	}
	if (p == s)
		return false;
	/* Nine fraction digits reach 1ns even in seconds; finer ones are dropped. */
	uint64_t fraction = 0, fraction_scale = 1;
	if (*p == '.') {
		const char *fraction_start = ++p;
		for (; is_digit(*p); p++) {
			if (fraction_scale < NS_PER_S) {
				fraction = fraction * 10 + (uint64_t)(*p - '0');
				fraction_scale *= 10;
			}
		}
		if (p == fraction_start)
			return false;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (!same_word(p, units[i].name))
			continue;
		if (whole > UINT64_MAX / units[i].ns)
			return false;
		uint64_t ns = whole * units[i].ns;
		uint64_t fraction_ns = fraction * units[i].ns / fraction_scale;
		if (ns > UINT64_MAX - fraction_ns)
			return false;
		*out = ns + fraction_ns;
		return true;
	}
	return false;
}

/* %00 counts as a bad escape: the result is a C string and would be cut short. */
bool oa_percent_decode(const char *in, size_t len, char *out, size_t *out_len)
{
	size_t written = 0;
	bool ok = true;
	for (size_t i = 0; i < len; i++) {
		if (in[i] != '%') {
			out[written++] = in[i];
			continue;
		}
		int high = len - i >= 3 ? oa_hex_digit(in[i + 1]) : -1;
		int low = high >= 0 ? oa_hex_digit(in[i + 2]) : -1;
		if (low < 0 || (high == 0 && low == 0)) {
			ok = false;
			break;
		}
		out[written++] = (char)(high << 4 | low);
		i += 2;
	}
	out[written] = '\0';
	if (out_len)
		*out_len = written;
	return ok;
}

/* A malloc'd, percent-decoded copy of [start, end); NULL on a bad escape. */
static char *decode_range(const char *start, const char *end)
{
	size_t len = (size_t)(end - start);
	char *decoded = malloc(len + 1);
	if (decoded && !oa_percent_decode(start, len, decoded, NULL)) {
		free(decoded);
		return NULL;
	}
	return decoded;
}

static size_t count_items(const char *s)
{
	size_t commas = 0;
	for (; *s; s++)
		commas += *s == ',';
	return commas + 1;
}

bool oa_parse_kv_list(const char *s, struct oa_kv_list *out)
{
	*out = (struct oa_kv_list){0};
	struct oa_kv_list list = {.items = calloc(count_items(s), sizeof(struct oa_kv))};
	if (!list.items)
		return false;
	for (const char *item = s;; item++) {
		const char *item_end = strchrnul(item, ',');
		const char *start = item, *end = item_end;
		trim(&start, &end);
		if (start != end) {
			const char *equals = memchr(start, '=', (size_t)(end - start));
			if (!equals)
				goto fail;
			const char *key_end = equals, *value_start = equals + 1;
			trim(&start, &key_end);
			trim(&value_start, &end);
			struct oa_kv *kv = &list.items[list.n++];
			kv->key = decode_range(start, key_end);
			kv->value = decode_range(value_start, end);
			if (!kv->key || !kv->value || !kv->key[0])
				goto fail;
		}
		item = item_end;
		if (!*item)
			break;
	}
	if (list.n)
		*out = list;
	else
		free(list.items);
	return true;
fail:
	oa_kv_list_free(&list);
	return false;
}

void oa_kv_list_free(struct oa_kv_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		free(list->items[i].key);
		free(list->items[i].value);
	}
	free(list->items);
	*list = (struct oa_kv_list){0};
}

void oa_parse_str_list(const char *s, struct oa_str_list *out)
{
	*out = (struct oa_str_list){0};
	struct oa_str_list list = {.items = calloc(count_items(s), sizeof(char *))};
	if (!list.items)
		return;
	for (const char *item = s;; item++) {
		const char *item_end = strchrnul(item, ',');
		const char *start = item, *end = item_end;
		trim(&start, &end);
		if (start != end) {
			list.items[list.n] = copy_range(start, end);
			if (!list.items[list.n]) {
				oa_str_list_free(&list);
				return;
			}
			list.n++;
		}
		item = item_end;
		if (!*item)
			break;
	}
	if (list.n)
		*out = list;
	else
		free(list.items);
}

void oa_str_list_free(struct oa_str_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->items[i]);
	free(list->items);
	*list = (struct oa_str_list){0};
}

char *oa_endpoint_join_path(const char *base, const char *path)
{
	size_t len = strlen(base), path_len = strlen(path);
	while (len > 0 && base[len - 1] == '/')
		len--;
	char *joined = malloc(len + 1 + path_len + 1);
	if (joined) { /* not snprintf: see format_setting in clock.c */
		memcpy(joined, base, len);
		joined[len] = '/';
		memcpy(joined + len + 1, path, path_len + 1);
	}
	return joined;
}

char *oa_endpoint_join(const char *base)
{
	return oa_endpoint_join_path(base, TRACES_PATH);
}

/* ---- Warnings ---- */

/* A value as a warning shows it: quoted, escaped so the warning stays one line, cut short so
 * the rest of the warning (the value used instead) survives the log line's size limit. */
#define QUOTED_LIMIT 300
struct quoted {
	char text[QUOTED_LIMIT + 16];
	size_t len;
	bool cut;
};

static void quoted_add(struct quoted *q, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n && !q->cut; i++) {
		unsigned char c = (unsigned char)s[i];
		if (q->len >= QUOTED_LIMIT) {
			q->cut = true;
		} else if (c == '"' || c == '\\') {
			q->text[q->len++] = '\\';
			q->text[q->len++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			q->len += (size_t)snprintf(q->text + q->len, 5, "\\x%c%c", hex[c >> 4],
						   hex[c & 15]);
		} else {
			q->text[q->len++] = (char)c;
		}
	}
}

static const char *quoted_finish(struct quoted *q)
{
	snprintf(q->text + q->len, sizeof q->text - q->len, "%s\"", q->cut ? "..." : "");
	return q->text;
}

static const char *quote(struct quoted *q, const char *value)
{
	*q = (struct quoted){.text = "\"", .len = 1};
	quoted_add(q, value, strlen(value));
	return quoted_finish(q);
}

/* Like quote, but hides a URL's userinfo (user:password@): everything from the scheme's "://"
 * (or the start) up to the last '@', so even a malformed URL cannot leak a password. */
static const char *quote_url(struct quoted *q, const char *url)
{
	const char *at = strrchr(url, '@');
	if (!at)
		return quote(q, url);
	const char *scheme_end = strstr(url, "://");
	size_t kept = scheme_end && scheme_end < at ? (size_t)(scheme_end - url) + 3 : 0;
	*q = (struct quoted){.text = "\"", .len = 1};
	quoted_add(q, url, kept);
	quoted_add(q, "***", 3);
	quoted_add(q, at, strlen(at));
	return quoted_finish(q);
}

/* One warning line: NAME="value" followed by the problem and the value used instead. */
static void warn_value(const char *name, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn_value(const char *name, const char *value, const char *fmt, ...)
{
	char tail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tail, sizeof tail, fmt, ap);
	va_end(ap);
	struct quoted q;
	oa_warn("%s=%s %s", name, quote(&q, value), tail);
}

/* ---- Reading variables ---- */

struct env {
	oa_getenv_fn get;
	void *ctx;
};

/* The trimmed value, malloc'd; NULL when unset or blank (the spec: empty means unset). */
static char *env_value(const struct env *env, const char *name)
{
	const char *raw = env->get(name, env->ctx);
	if (!raw)
		return NULL;
	const char *start = raw, *end = raw + strlen(raw);
	trim(&start, &end);
	return start == end ? NULL : copy_range(start, end);
}

static bool env_is_set(const struct env *env, const char *name)
{
	char *value = env_value(env, name);
	bool set = value != NULL;
	free(value);
	return set;
}

/* The variable that applies of a specific/general pair: the specific one when it is set. */
static const char *pick(const struct env *env, const char *specific, const char *general)
{
	return env_is_set(env, specific) ? specific : general;
}

static void env_string(const struct env *env, const char *name, char **field)
{
	char *value = env_value(env, name);
	if (value) {
		free(*field);
		*field = value;
	}
}

static const char *format_uint32(uint32_t value, char buf[static 24])
{
	if (value == OA_LIMIT_NONE)
		return "no limit";
	snprintf(buf, 24, "%" PRIu32, value);
	return buf;
}

/* A whole decimal number in [min, max]; unit (" of milliseconds" or "") is for the warning,
 * fallback names the value kept (NULL: kept_value, formatted only for a warning: start-up
 * makes no string it does not need). True when set and valid. */
static bool env_uint(const struct env *env, const char *name, uint64_t min, uint64_t max,
		     const char *unit, const char *fallback, uint32_t kept_value, uint64_t *out)
{
	char *value = env_value(env, name);
	if (!value)
		return false;
	uint64_t parsed;
	bool ok = oa_parse_uint(value, max, &parsed) && parsed >= min;
	char kept[24];
	if (!ok && !fallback)
		fallback = format_uint32(kept_value, kept);
	if (ok)
		*out = parsed;
	else if (all_digits(value))
		warn_value(name, value, "is out of range (%" PRIu64 "..%" PRIu64 "); using %s", min,
			   max, fallback);
	else
		warn_value(name, value, "is not a whole number%s; using %s", unit, fallback);
	free(value);
	return ok;
}

static bool env_uint32(const struct env *env, const char *name, uint32_t min, uint32_t max,
		       const char *unit, uint32_t *field)
{
	uint64_t parsed;
	if (!env_uint(env, name, min, max, unit, NULL, *field, &parsed))
		return false;
	*field = (uint32_t)parsed;
	return true;
}

static bool env_ms(const struct env *env, const char *name, uint32_t min, uint32_t *field)
{
	return env_uint32(env, name, min, UINT32_MAX, " of milliseconds", field);
}

static const char *format_duration(uint64_t ns, char buf[static 32])
{
	if (ns == 0)
		return "0";
	if (ns % NS_PER_S == 0)
		snprintf(buf, 32, "%" PRIu64 "s", ns / NS_PER_S);
	else if (ns % NS_PER_MS == 0)
		snprintf(buf, 32, "%" PRIu64 "ms", ns / NS_PER_MS);
	else if (ns % NS_PER_US == 0)
		snprintf(buf, 32, "%" PRIu64 "us", ns / NS_PER_US);
	else
		snprintf(buf, 32, "%" PRIu64 "ns", ns);
	return buf;
}

static void env_duration(const struct env *env, const char *name, uint64_t *field)
{
	char *value = env_value(env, name);
	if (!value)
		return;
	uint64_t ns;
	if (oa_parse_duration_ns(value, &ns)) {
		*field = ns;
	} else {
		char fallback[32];
		warn_value(name, value,
			   "is not a duration such as 250ns, 100us, 1.5ms, 2s or 0; using %s",
			   format_duration(*field, fallback));
	}
	free(value);
}

/* accept_digits: otlpauto's own switches also take 1 and 0. */
static void env_bool(const struct env *env, const char *name, bool accept_digits, bool *field)
{
	char *value = env_value(env, name);
	if (!value)
		return;
	bool parsed;
	if (oa_parse_bool(value, &parsed))
		*field = parsed;
	else if (accept_digits && (strcmp(value, "1") == 0 || strcmp(value, "0") == 0))
		*field = value[0] == '1';
	else
		warn_value(name, value, "is not true or false%s; using %s",
			   accept_digits ? " (or 1 or 0)" : "", *field ? "true" : "false");
	free(value);
}

/* ---- Enumerations ---- */

struct choice {
	const char *name;
	int value;
};

static bool match_choice(const char *value, const struct choice *choices, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (same_word(value, choices[i].name)) {
			*out = choices[i].value;
			return true;
		}
	}
	return false;
}

static const char *choice_name(const struct choice *choices, size_t n, int value)
{
	for (size_t i = 0; i < n; i++)
		if (choices[i].value == value)
			return choices[i].name;
	return "?";
}

static void warn_choice(const char *name, const char *value, const struct choice *choices, size_t n,
			int fallback)
{
	char names[256];
	size_t len = 0;
	names[0] = '\0';
	for (size_t i = 0; i < n && len < sizeof names; i++)
		len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
					choices[i].name);
	warn_value(name, value, "is not one of %s; using %s", names,
		   choice_name(choices, n, fallback));
}

/* The choice the variable names, or current (with a warning when the value is bad). */
static int env_choice(const struct env *env, const char *name, const struct choice *choices,
		      size_t n, int current)
{
	char *value = env_value(env, name);
	if (!value)
		return current;
	int chosen = current;
	if (!match_choice(value, choices, n, &chosen))
		warn_choice(name, value, choices, n, current);
	free(value);
	return chosen;
}

#define ENV_CHOICE(env, name, choices, field)                                                      \
	((field) =                                                                                 \
	     env_choice(env, name, choices, sizeof(choices) / sizeof((choices)[0]), (int)(field)))

static const struct choice log_levels[] = {
    {"none", OA_LOG_NONE},    {"error", OA_LOG_ERROR}, {"warn", OA_LOG_WARN},
    {"warning", OA_LOG_WARN}, {"info", OA_LOG_INFO},   {"debug", OA_LOG_DEBUG},
};

static const struct choice samplers[] = {
    {"always_on", OA_SAMPLER_ALWAYS_ON},
    {"always_off", OA_SAMPLER_ALWAYS_OFF},
    {"traceidratio", OA_SAMPLER_TRACEIDRATIO},
    {"parentbased_always_on", OA_SAMPLER_PARENTBASED_ALWAYS_ON},
    {"parentbased_always_off", OA_SAMPLER_PARENTBASED_ALWAYS_OFF},
    {"parentbased_traceidratio", OA_SAMPLER_PARENTBASED_TRACEIDRATIO},
    {"adaptive", OA_SAMPLER_ADAPTIVE},
    {"parentbased_adaptive", OA_SAMPLER_PARENTBASED_ADAPTIVE},
};

static const struct choice exporters[] = {
    {"otlp", OA_EXPORTER_OTLP},
    {"console", OA_EXPORTER_CONSOLE},
#if OA_FEATURE_JSON
    {"otlp/file", OA_EXPORTER_FILE},
#endif
    {"none", OA_EXPORTER_NONE},
};

static const struct choice metrics_exporters[] = {
    {"otlp", OA_EXPORTER_OTLP},
    {"console", OA_EXPORTER_CONSOLE},
#if OA_FEATURE_JSON
    {"otlp/file", OA_EXPORTER_FILE},
#endif
    {"none", OA_EXPORTER_NONE},
};

static const struct choice temporalities[] = {
    {"cumulative", OA_TEMPORALITY_CUMULATIVE},
    {"delta", OA_TEMPORALITY_DELTA},
    {"lowmemory", OA_TEMPORALITY_LOWMEMORY},
};

static const struct choice protocols[] = {
    {"http/protobuf", OA_PROTOCOL_PROTOBUF},
#if OA_FEATURE_JSON
    {"http/json", OA_PROTOCOL_JSON},
#endif
};

static const struct choice compressions[] = {
    {"none", false},
#if OA_FEATURE_GZIP
    {"gzip", true},
#endif
};

static const struct choice backpressures[] = {
    {"drop", OA_BACKPRESSURE_DROP},
    {"block", OA_BACKPRESSURE_BLOCK},
};

static const struct choice redact_queries[] = {
    {"sensitive", OA_REDACT_QUERY_SENSITIVE},
    {"all", OA_REDACT_QUERY_ALL},
    {"none", OA_REDACT_QUERY_NONE},
};

static const struct choice db_statements[] = {
    {"sanitized", OA_DB_STATEMENT_SANITIZED},
    {"off", OA_DB_STATEMENT_OFF},
};

static const struct choice db_propagations[] = {
    {"off", OA_DB_PROPAGATION_OFF},
    {"comment", OA_DB_PROPAGATION_COMMENT},
};

static const struct choice hook_names[] = {
    {"functions", OA_HOOK_FUNCTIONS},
    {"sockets", OA_HOOK_SOCKETS},
    {"dns", OA_HOOK_DNS},
    {"http", OA_HOOK_HTTP},
    {"process", OA_HOOK_PROCESS},
    {"files", OA_HOOK_FILES},
    {"tls", OA_HOOK_TLS},
    {"default", OA_HOOKS_DEFAULT},
    {"all", HOOKS_ALL},
    {"none", 0},
};

/* ---- Variables with their own rules ---- */

static void parse_log_level(struct oa_config *cfg, const struct env *env)
{
	/* A bad OTEL_LOG_LEVEL is itself reported at the default level. */
	oa_log_threshold = cfg->log_level;
	ENV_CHOICE(env, "OTEL_LOG_LEVEL", log_levels, cfg->log_level);
	oa_log_threshold = cfg->log_level;
}

/* Accepts plain decimals (1, 0.25, .5, 5e-1); strtod alone would also take
 * blanks, signs, hex, inf and nan. */
static bool parse_number(const char *s, double *out)
{
	const char *p = s;
	size_t digits = 0;
	for (; is_digit(*p); p++)
		digits++;
	if (*p == '.')
		for (p++; is_digit(*p); p++)
			digits++;
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!is_digit(*p))
			return false;
		while (is_digit(*p))
			p++;
	}
	if (*p)
		return false;
	/* The end check also rejects a locale whose decimal point is not '.'. */
	char *end;
	double value = strtod(s, &end);
	if (*end || !isfinite(value))
		return false;
	*out = value;
	return true;
}

static void parse_sampler(struct oa_config *cfg, const struct env *env)
{
	ENV_CHOICE(env, "OTEL_TRACES_SAMPLER", samplers, cfg->sampler);
	bool ratio = cfg->sampler == OA_SAMPLER_TRACEIDRATIO ||
		     cfg->sampler == OA_SAMPLER_PARENTBASED_TRACEIDRATIO;
	bool adaptive =
	    cfg->sampler == OA_SAMPLER_ADAPTIVE || cfg->sampler == OA_SAMPLER_PARENTBASED_ADAPTIVE;
	cfg->sampler_arg = adaptive ? 100.0 : 1.0;
	if (!ratio && !adaptive)
		return;
	char *value = env_value(env, "OTEL_TRACES_SAMPLER_ARG");
	if (!value)
		return;
	double arg;
	bool ok = parse_number(value, &arg) && (ratio ? arg <= 1.0 : arg > 0.0);
	if (ok)
		cfg->sampler_arg = arg;
	else
		warn_value("OTEL_TRACES_SAMPLER_ARG", value, "is not %s; using %g",
			   ratio ? "a sampling ratio between 0 and 1"
				 : "a positive number of sampled traces per second",
			   cfg->sampler_arg);
	free(value);
}

static const char *propagators_text(const struct oa_config *cfg)
{
	if (cfg->propagate_tracecontext && cfg->propagate_baggage)
		return "tracecontext,baggage";
	if (cfg->propagate_tracecontext)
		return "tracecontext";
	return cfg->propagate_baggage ? "baggage" : "none";
}

static void parse_propagators(struct oa_config *cfg, const struct env *env)
{
	char *value = env_value(env, "OTEL_PROPAGATORS");
	if (!value)
		return;
	struct oa_str_list entries;
	oa_parse_str_list(value, &entries);
	bool tracecontext = false, baggage = false, none = false, unsupported = false;
	for (size_t i = 0; i < entries.n; i++) {
		if (same_word(entries.items[i], "tracecontext"))
			tracecontext = true;
		else if (same_word(entries.items[i], "baggage"))
			baggage = true;
		else if (same_word(entries.items[i], "none"))
			none = true;
		else
			unsupported = true;
	}
	oa_str_list_free(&entries);
	if (none || tracecontext || baggage) {
		cfg->propagate_tracecontext = tracecontext && !none;
		cfg->propagate_baggage = baggage && !none;
	}
	if (none && (tracecontext || baggage || unsupported))
		warn_value("OTEL_PROPAGATORS", value, "combines none with propagators; using none");
	else if (unsupported)
		warn_value("OTEL_PROPAGATORS", value,
			   "names propagators other than tracecontext, baggage and none, which "
			   "are ignored; using %s",
			   propagators_text(cfg));
	free(value);
}

/* One exporter at a time: the first supported entry of the list. */
static void parse_exporter_list(const struct env *env, const char *name,
				const struct choice *choices, size_t n,
				enum oa_exporter_kind *field)
{
	char *value = env_value(env, name);
	if (!value)
		return;
	struct oa_str_list entries;
	oa_parse_str_list(value, &entries);
	bool found = false;
	int chosen;
	for (size_t i = 0; i < entries.n && !found; i++)
		found = match_choice(entries.items[i], choices, n, &chosen);
	if (found)
		*field = chosen;
	if (entries.n > 1 && found)
		warn_value(name, value,
			   "names more than one exporter, or unsupported ones; using only %s",
			   choice_name(choices, n, chosen));
	else if (entries.n && !found)
		warn_choice(name, value, choices, n, *field);
	oa_str_list_free(&entries);
	free(value);
}

static void parse_exporter(struct oa_config *cfg, const struct env *env)
{
	parse_exporter_list(env, "OTEL_TRACES_EXPORTER", exporters,
			    sizeof exporters / sizeof exporters[0], &cfg->exporter);
}

static bool endpoint_valid(const char *url)
{
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	const char *authority;
	if (same_prefix(url, "http://"))
		authority = url + 7;
	else if (same_prefix(url, "https://"))
		authority = url + 8;
	else
		return false;
	const char *end = authority;
	while (*end && *end != '/' && *end != '?' && *end != '#')
		end++;
	const char *at = memrchr(authority, '@', (size_t)(end - authority));
	const char *host = at ? at + 1 : authority, *host_end;
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end || host_end == host + 1)
			return false;
		host_end++;
	} else {
		host_end = memchr(host, ':', (size_t)(end - host));
		if (!host_end)
			host_end = end;
		if (host_end == host)
			return false;
	}
	if (host_end == end)
		return true;
	if (*host_end != ':' || end - host_end > 6)
		return false;
	unsigned port = 0;
	for (const char *p = host_end + 1; p < end; p++) {
		if (!is_digit(*p))
			return false;
		port = port * 10 + (unsigned)(*p - '0');
	}
	return port <= 65535;
}

/* The signal's own variable is used as is; the general one gets the path.
 * A bad general one is reported once, by the first signal that reads it. */
static void parse_signal_endpoint(const struct env *env, const char *specific, const char *path,
				  bool general_reported, char **endpoint)
{
	const char *name = pick(env, specific, "OTEL_EXPORTER_OTLP_ENDPOINT");
	char *value = env_value(env, name);
	if (!value)
		return;
	bool as_is = strcmp(name, specific) == 0;
	char *url = as_is ? strdup(value) : oa_endpoint_join_path(value, path);
	if (url && endpoint_valid(url)) {
		free(*endpoint);
		*endpoint = url;
		url = NULL;
	} else if (as_is || !general_reported) {
		struct quoted q;
		oa_warn("%s=%s is not an http:// or https:// URL with a host; using %s", name,
			quote_url(&q, value), *endpoint);
	}
	free(url);
	free(value);
}

static void parse_endpoint(struct oa_config *cfg, const struct env *env)
{
	parse_signal_endpoint(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", TRACES_PATH, false,
			      &cfg->endpoint);
}

/* Headers go on the wire: keys must be HTTP tokens, values free of control characters (a
 * decoded CR or LF would inject headers). */
static bool headers_valid(const struct oa_kv_list *headers)
{
	for (size_t i = 0; i < headers->n; i++) {
		for (const char *p = headers->items[i].key; *p; p++)
			if (!(is_digit(*p) || (*p >= 'a' && *p <= 'z') ||
			      (*p >= 'A' && *p <= 'Z') || strchr("!#$%&'*+-.^_`|~", *p)))
				return false;
		for (const unsigned char *p = (const unsigned char *)headers->items[i].value; *p;
		     p++)
			if ((*p < ' ' && *p != '\t') || *p == 0x7f)
				return false;
	}
	return true;
}

static void parse_headers_var(const struct env *env, const char *name, struct oa_kv_list *field)
{
	char *value = env_value(env, name);
	if (!value)
		return;
	struct oa_kv_list headers;
	if (oa_parse_kv_list(value, &headers) && headers_valid(&headers)) {
		oa_kv_list_free(field);
		*field = headers;
	} else {
		/* Never quoted: headers carry credentials. */
		oa_warn("%s is malformed (expected comma-separated key=value pairs, "
			"percent-encoded); ignoring it and sending no extra headers",
			name);
		oa_kv_list_free(&headers);
	}
	free(value);
}

static void parse_headers(struct oa_config *cfg, const struct env *env)
{
	parse_headers_var(
	    env, pick(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
	    &cfg->headers);
}

static void parse_resource_attributes(struct oa_config *cfg, const struct env *env)
{
	char *value = env_value(env, "OTEL_RESOURCE_ATTRIBUTES");
	if (!value)
		return;
	if (!oa_parse_kv_list(value, &cfg->resource_attributes))
		warn_value("OTEL_RESOURCE_ATTRIBUTES", value,
			   "is not a list of key=value pairs with valid percent-encoding; "
			   "ignoring all of it");
	free(value);
}

static void parse_protocol_var(const struct env *env, const char *name, enum oa_protocol *field)
{
	const size_t n = sizeof protocols / sizeof protocols[0];
	char *value = env_value(env, name);
	if (!value)
		return;
	int chosen;
	struct quoted q;
	if (same_word(value, "grpc"))
		oa_warn("%s=%s: grpc is not supported; using %s", name, quote(&q, value),
			choice_name(protocols, n, (int)*field));
	else if (match_choice(value, protocols, n, &chosen))
		*field = chosen;
	else
		warn_choice(name, value, protocols, n, (int)*field);
	free(value);
}

static void parse_protocol(struct oa_config *cfg, const struct env *env)
{
	parse_protocol_var(
	    env, pick(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
	    &cfg->protocol);
}

static const char *hooks_text(uint32_t hooks, char buf[static 64])
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof hook_names / sizeof hook_names[0]; i++) {
		uint32_t bit = (uint32_t)hook_names[i].value;
		/* Only the single-family names, not the keywords. */
		if (bit && (bit & (bit - 1)) == 0 && (hooks & bit))
			len += (size_t)snprintf(buf + len, 64 - len, "%s%s", len ? "," : "",
						hook_names[i].name);
	}
	return len ? buf : "none";
}

/* The list replaces the default set; names this build lacks are reported like unknown ones. */
static void parse_hooks(struct oa_config *cfg, const struct env *env)
{
	const char *name = "OTLPAUTO_HOOKS";
	char *value = env_value(env, name);
	if (!value)
		return;
	struct oa_str_list entries;
	oa_parse_str_list(value, &entries);
	uint32_t hooks = 0;
	bool any_known = false, any_rejected = false;
	for (size_t i = 0; i < entries.n; i++) {
		int bits;
		if (!match_choice(entries.items[i], hook_names,
				  sizeof hook_names / sizeof hook_names[0], &bits)) {
			any_rejected = true;
			continue;
		}
		/* Keywords (default, all, none) quietly leave out what is not built; a family
		 * named on its own is reported. */
		bool keyword = bits == 0 || (bits & (bits - 1)) != 0;
		if (!keyword && !(bits & HOOKS_BUILT)) {
			any_rejected = true;
			continue;
		}
		hooks |= (uint32_t)bits & HOOKS_BUILT;
		any_known = true;
	}
	oa_str_list_free(&entries);
	if (any_known)
		cfg->hooks = hooks;
	if (any_rejected) {
		char buf[64];
		warn_value(name, value,
			   "names hooks that are unknown or not built in (known: functions, "
			   "sockets, dns, http, process, files, default, all, none); using %s",
			   hooks_text(cfg->hooks, buf));
	}
	free(value);
}

static void parse_limits(struct oa_config *cfg, const struct env *env)
{
	env_uint32(env, pick(env, "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"),
		   0, UINT32_MAX, "", &cfg->attribute_count_limit);
	env_uint32(env,
		   pick(env, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
			"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
		   0, UINT32_MAX, "", &cfg->attribute_value_length_limit);
	env_uint32(env, "OTEL_SPAN_EVENT_COUNT_LIMIT", 0, UINT32_MAX, "", &cfg->event_count_limit);
	env_uint32(env, "OTEL_SPAN_LINK_COUNT_LIMIT", 0, UINT32_MAX, "", &cfg->link_count_limit);
}

static void parse_batching(struct oa_config *cfg, const struct env *env)
{
	env_ms(env, "OTEL_BSP_SCHEDULE_DELAY", 1, &cfg->schedule_delay_ms);
	env_ms(env, "OTEL_BSP_EXPORT_TIMEOUT", 0, &cfg->export_timeout_ms);
	env_uint32(env, "OTEL_BSP_MAX_QUEUE_SIZE", 1, UINT32_MAX, "", &cfg->max_queue_size);
	bool batch_set = env_uint32(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, UINT32_MAX, "",
				    &cfg->max_export_batch_size);
	if (cfg->max_export_batch_size > cfg->max_queue_size) {
		/* Only a batch size the user chose deserves a warning, not our default. */
		if (batch_set)
			oa_warn("OTEL_BSP_MAX_EXPORT_BATCH_SIZE=%" PRIu32
				" exceeds OTEL_BSP_MAX_QUEUE_SIZE=%" PRIu32 "; using %" PRIu32,
				cfg->max_export_batch_size, cfg->max_queue_size,
				cfg->max_queue_size);
		cfg->max_export_batch_size = cfg->max_queue_size;
	}
}

static void parse_exporter_settings(struct oa_config *cfg, const struct env *env)
{
	parse_exporter(cfg, env);
	parse_endpoint(cfg, env);
	parse_headers(cfg, env);
	env_ms(env, pick(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"), 0,
	       &cfg->otlp_timeout_ms);
	ENV_CHOICE(
	    env,
	    pick(env, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"),
	    compressions, cfg->gzip);
	parse_protocol(cfg, env);
	env_string(
	    env,
	    pick(env, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
	    &cfg->certificate);
	env_string(
	    env, pick(env, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
	    &cfg->client_key);
	env_string(env,
		   pick(env, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
		   &cfg->client_certificate);
	env_string(env, "OTLPAUTO_FILE", &cfg->file_path);
}

/* The variable a metrics setting comes from: its _METRICS_ one, else the
 * general one, which the traces read (and reported when bad) already
 * unless they had their own: read quietly then. */
struct metrics_var {
	char name[64];
	bool quiet;
};

static void var_name(struct metrics_var *v, const char *prefix, const char *setting)
{
	struct oa_text t = oa_text_into(v->name, sizeof v->name);
	oa_text_str(&t, prefix);
	oa_text_str(&t, setting);
}

static void metrics_var(const struct env *env, const char *setting, struct metrics_var *v)
{
	var_name(v, "OTEL_EXPORTER_OTLP_METRICS_", setting);
	v->quiet = false;
	if (env_is_set(env, v->name))
		return;
	var_name(v, "OTEL_EXPORTER_OTLP_TRACES_", setting);
	v->quiet = !env_is_set(env, v->name);
	var_name(v, "OTEL_EXPORTER_OTLP_", setting);
}

/* Start-up is single-threaded: the threshold is lowered around one read. */
#define METRICS_VAR(env, setting, v, read)                                                         \
	do {                                                                                       \
		enum oa_log_level threshold = oa_log_threshold;                                    \
		metrics_var((env), (setting), (v));                                                \
		if ((v)->quiet)                                                                    \
			oa_log_threshold = OA_LOG_NONE;                                            \
		read;                                                                              \
		oa_log_threshold = threshold;                                                      \
	} while (0)

static void parse_metrics_otlp(struct oa_config *cfg, const struct env *env)
{
	struct oa_otlp_settings *m = &cfg->metrics_otlp;
	struct metrics_var v;
	METRICS_VAR(env, "HEADERS", &v, parse_headers_var(env, v.name, &m->headers));
	METRICS_VAR(env, "TIMEOUT", &v, env_ms(env, v.name, 0, &m->timeout_ms));
	METRICS_VAR(env, "COMPRESSION", &v, ENV_CHOICE(env, v.name, compressions, m->gzip));
	METRICS_VAR(env, "PROTOCOL", &v, parse_protocol_var(env, v.name, &m->protocol));
	METRICS_VAR(env, "CERTIFICATE", &v, env_string(env, v.name, &m->certificate));
	METRICS_VAR(env, "CLIENT_KEY", &v, env_string(env, v.name, &m->client_key));
	METRICS_VAR(env, "CLIENT_CERTIFICATE", &v, env_string(env, v.name, &m->client_certificate));
}

/* Metrics follow the traces' exporter unless told: to the collector or
 * the file, not to the console (a line per span is for reading spans). */
static void parse_metrics(struct oa_config *cfg, const struct env *env)
{
	bool follows = cfg->exporter == OA_EXPORTER_OTLP || cfg->exporter == OA_EXPORTER_FILE;
	cfg->metrics_exporter = follows ? cfg->exporter : OA_EXPORTER_NONE;
	parse_exporter_list(env, "OTEL_METRICS_EXPORTER", metrics_exporters,
			    sizeof metrics_exporters / sizeof metrics_exporters[0],
			    &cfg->metrics_exporter);
	parse_signal_endpoint(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", METRICS_PATH,
			      !env_is_set(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
			      &cfg->metrics_endpoint);
	env_ms(env, "OTEL_METRIC_EXPORT_INTERVAL", 1, &cfg->metric_export_interval_ms);
	env_ms(env, "OTEL_METRIC_EXPORT_TIMEOUT", 0, &cfg->metric_export_timeout_ms);
	ENV_CHOICE(env, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", temporalities,
		   cfg->metrics_temporality);
	env_uint32(env, "OTLPAUTO_METRICS_MAX_SERIES", 1, 1000000, "", &cfg->metrics_max_series);
	parse_metrics_otlp(cfg, env);
}

static void parse_own_settings(struct oa_config *cfg, const struct env *env)
{
	env_uint32(env, "OTLPAUTO_BUFFER_SPANS", 16, 16777216, "", &cfg->buffer_spans);
	ENV_CHOICE(env, "OTLPAUTO_BACKPRESSURE", backpressures, cfg->backpressure);
	uint64_t cpu;
	if (env_uint(env, "OTLPAUTO_EXPORTER_CPU", 0, 1023, "", "no CPU affinity", 0, &cpu))
		cfg->exporter_cpu = (int)cpu;
	parse_hooks(cfg, env);
	env_duration(env, "OTLPAUTO_FUNCTION_THRESHOLD", &cfg->function_threshold_ns);
	char *value = env_value(env, "OTLPAUTO_FUNCTION_INCLUDE");
	if (value)
		oa_parse_str_list(value, &cfg->function_include);
	free(value);
	value = env_value(env, "OTLPAUTO_FUNCTION_EXCLUDE");
	if (value)
		oa_parse_str_list(value, &cfg->function_exclude);
	free(value);
	env_uint32(env, "OTLPAUTO_FUNCTION_MAX_DEPTH", 0, UINT32_MAX, "", &cfg->function_max_depth);
	env_bool(env, "OTLPAUTO_STACKTRACE", true, &cfg->stacktrace);
	env_duration(env, "OTLPAUTO_STACKTRACE_THRESHOLD", &cfg->stacktrace_threshold_ns);
	env_duration(env, "OTLPAUTO_FILE_THRESHOLD", &cfg->file_threshold_ns);
	ENV_CHOICE(env, "OTLPAUTO_REDACT_QUERY", redact_queries, cfg->redact_query);
	ENV_CHOICE(env, "OTLPAUTO_DB_STATEMENT", db_statements, cfg->db_statement);
	ENV_CHOICE(env, "OTLPAUTO_DB_PROPAGATION", db_propagations, cfg->db_propagation);
	env_duration(env, "OTLPAUTO_PROCESS_TRACE_DURATION", &cfg->process_trace_ns);
	env_uint32(env, "OTLPAUTO_PROCESS_TRACE_SPANS", 0, UINT32_MAX, "",
		   &cfg->process_trace_spans);
	env_duration(env, "OTLPAUTO_EXIT_TIMEOUT", &cfg->exit_timeout_ns);
}

/* ---- The configuration ---- */

void oa_config_defaults(struct oa_config *cfg)
{
	*cfg = (struct oa_config){
	    .log_level = OA_LOG_INFO,
	    .sampler = OA_SAMPLER_PARENTBASED_ALWAYS_ON,
	    .sampler_arg = 1.0,
	    .propagate_tracecontext = true,
	    .propagate_baggage = true,
	    .schedule_delay_ms = 5000,
	    .export_timeout_ms = 30000,
	    .max_queue_size = 2048,
	    .max_export_batch_size = 512,
	    .attribute_count_limit = 128,
	    .attribute_value_length_limit = OA_LIMIT_NONE,
	    .event_count_limit = 128,
	    .link_count_limit = 128,
	    .exporter = OA_EXPORTER_OTLP,
	    .endpoint = strdup(DEFAULT_ENDPOINT),
	    .metrics_endpoint = strdup(DEFAULT_METRICS_ENDPOINT),
	    .metric_export_interval_ms = 60000,
	    .metric_export_timeout_ms = 30000,
	    .metrics_temporality = OA_TEMPORALITY_CUMULATIVE,
	    .metrics_max_series = 2000,
	    .metrics_otlp = {.timeout_ms = 10000, .protocol = OA_PROTOCOL_PROTOBUF},
	    .otlp_timeout_ms = 10000,
	    .protocol = OA_PROTOCOL_PROTOBUF,
	    .buffer_spans = 4096,
	    .backpressure = OA_BACKPRESSURE_DROP,
	    .exporter_cpu = -1,
	    .hooks = OA_HOOKS_DEFAULT & HOOKS_BUILT,
	    .function_threshold_ns = 100 * NS_PER_US,
	    .function_max_depth = OA_LIMIT_NONE,
	    .stacktrace_threshold_ns = 10 * NS_PER_MS,
	    .file_threshold_ns = 1 * NS_PER_MS,
	    .redact_query = OA_REDACT_QUERY_SENSITIVE,
	    .db_statement = OA_DB_STATEMENT_SANITIZED,
	    .db_propagation = OA_DB_PROPAGATION_OFF,
	    .process_trace_ns = 60 * NS_PER_S,
	    .process_trace_spans = 1000,
	    .exit_timeout_ns = 2 * NS_PER_S,
	};
}

void oa_config_parse(struct oa_config *cfg, oa_getenv_fn get, void *ctx)
{
	const struct env env = {.get = get, .ctx = ctx};
	oa_config_free(cfg);
	oa_config_defaults(cfg);
	/* First, so it governs the warnings about everything else. */
	parse_log_level(cfg, &env);
	env_bool(&env, "OTEL_SDK_DISABLED", false, &cfg->sdk_disabled);
	env_string(&env, "OTEL_SERVICE_NAME", &cfg->service_name);
	parse_resource_attributes(cfg, &env);
	parse_sampler(cfg, &env);
	parse_propagators(cfg, &env);
	parse_batching(cfg, &env);
	parse_limits(cfg, &env);
	parse_exporter_settings(cfg, &env);
	parse_metrics(cfg, &env);
	parse_own_settings(cfg, &env);
}

void oa_config_free(struct oa_config *cfg)
{
	free(cfg->service_name);
	oa_kv_list_free(&cfg->resource_attributes);
	free(cfg->endpoint);
	free(cfg->metrics_endpoint);
	oa_kv_list_free(&cfg->metrics_otlp.headers);
	free(cfg->metrics_otlp.certificate);
	free(cfg->metrics_otlp.client_key);
	free(cfg->metrics_otlp.client_certificate);
	cfg->metrics_otlp.certificate = cfg->metrics_otlp.client_key =
	    cfg->metrics_otlp.client_certificate = NULL;
	oa_kv_list_free(&cfg->headers);
	free(cfg->certificate);
	free(cfg->client_key);
	free(cfg->client_certificate);
	free(cfg->file_path);
	oa_str_list_free(&cfg->function_include);
	oa_str_list_free(&cfg->function_exclude);
	cfg->service_name = cfg->endpoint = cfg->metrics_endpoint = cfg->certificate =
	    cfg->client_key = cfg->client_certificate = cfg->file_path = NULL;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s)
{
	/* The NUL separates fields; NULL and "" differ. */
	return s ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "\xff", 1);
}

uint64_t oa_config_export_fingerprint(const struct oa_config *cfg, int pid, bool with_headers)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint32_t fields[] = {cfg->exporter, cfg->protocol, cfg->gzip, cfg->otlp_timeout_ms};
	h = fnv1a(h, fields, sizeof fields);
	h = fnv1a_str(h, cfg->endpoint);
	for (size_t i = 0; with_headers && i < cfg->headers.n; i++) {
		h = fnv1a_str(h, cfg->headers.items[i].key);
		h = fnv1a_str(h, cfg->headers.items[i].value);
	}
	h = fnv1a_str(h, cfg->certificate);
	h = fnv1a_str(h, cfg->client_key);
	h = fnv1a_str(h, cfg->client_certificate);
	h = fnv1a_str(h, cfg->file_path);
	/* Metrics go through the relay too: the host sends them as it would. */
	const struct oa_otlp_settings *m = &cfg->metrics_otlp;
	uint32_t metrics_fields[] = {cfg->metrics_exporter, m->protocol, m->gzip, m->timeout_ms};
	h = fnv1a(h, metrics_fields, sizeof metrics_fields);
	h = fnv1a_str(h, cfg->metrics_endpoint);
	for (size_t i = 0; with_headers && i < m->headers.n; i++) {
		h = fnv1a_str(h, m->headers.items[i].key);
		h = fnv1a_str(h, m->headers.items[i].value);
	}
	h = fnv1a_str(h, m->certificate);
	h = fnv1a_str(h, m->client_key);
	h = fnv1a_str(h, m->client_certificate);
	/* The default file is named after each process: never shared. */
	if (cfg->exporter == OA_EXPORTER_FILE && !cfg->file_path)
		h = fnv1a(h, &pid, sizeof pid);
	return h;
}
