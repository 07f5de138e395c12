/* A series is one attribute set of one metric of one process. Cumulative
 * points of a series supersede each other (the latest counts); delta points
 * add up. Rows add their series up; percentiles are interpolated linearly
 * inside the bucket where they fall (the last bucket, beyond the largest
 * bound, shows as that bound). */
#include "metrics_view.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

#define MAX_BUCKETS	  64
#define LINE_MEMORY_LIMIT (64u << 20)
#define DELTA		  1

#define SPANS_METRIC "otlpauto.spans"
#define DB_METRIC    "db.client.operation.duration"
enum outcome {
	OUTCOME_NONE, /* a histogram's point */
	OUTCOME_PRODUCED,
	OUTCOME_EXPORTED,
	OUTCOME_SAMPLED_OUT,
	OUTCOME_DROPPED,
	OUTCOMES,
};

struct series {
	char *service, *metric, *attributes; /* attributes: a key that tells sets apart */
	/* A database operation's row: db.system.name and db.operation.name
	 * ("" when absent); NULL for other metrics. */
	char *db_system, *db_operation;
	enum outcome outcome; /* of an otlpauto.spans point: count is its value */
	int64_t pid;
	bool error; /* has error.type */
	bool delta;
	uint64_t start, time, count;
	size_t n_buckets;
	uint64_t buckets[MAX_BUCKETS];
	double bounds[MAX_BUCKETS - 1];
};

struct table {
	struct series *series;
	size_t n, cap;
	bool failed;
};

static const struct json_value *member(const struct json_value *object, const char *key,
				       enum json_type type)
{
	const struct json_value *v = json_get(object, key);
	return v && v->type == type ? v : NULL;
}

static const char *attribute_text(const struct json_value *attributes, const char *key,
				  char buf[static 32])
{
	if (!attributes)
		return NULL;
	for (const struct json_value *kv = attributes->first; kv; kv = kv->next) {
		const struct json_value *k = member(kv, "key", JSON_STRING);
		const struct json_value *v = member(kv, "value", JSON_OBJECT);
		if (!k || !v || strcmp(k->text, key) != 0)
			continue;
		const struct json_value *s = member(v, "stringValue", JSON_STRING);
		if (s)
			return s->text;
		int64_t i;
		const struct json_value *n = json_get(v, "intValue");
		if (n && json_int64(n, &i)) {
			snprintf(buf, 32, "%lld", (long long)i);
			return buf;
		}
	}
	return NULL;
}

/* "key=value;" for every attribute, in their order (the shim's is fixed). */
static char *attributes_key(const struct json_value *attributes)
{
	size_t len = 0, cap = 64;
	char *key = malloc(cap);
	if (!key)
		return NULL;
	key[0] = '\0';
	for (const struct json_value *kv = attributes ? attributes->first : NULL; kv;
	     kv = kv->next) {
		const struct json_value *k = member(kv, "key", JSON_STRING);
		const struct json_value *v = member(kv, "value", JSON_OBJECT);
		const struct json_value *inner = v ? v->first : NULL;
		if (!k || !inner)
			continue;
		const char *text = inner->text ? inner->text : "";
		size_t need = len + strlen(k->text) + strlen(text) + 3;
		if (need > cap) {
			while (cap < need)
				cap *= 2;
			char *bigger = realloc(key, cap);
			if (!bigger) {
				free(key);
				return NULL;
			}
			key = bigger;
		}
		len += (size_t)sprintf(key + len, "%s=%s;", k->text, text);
	}
	return key;
}

static void series_free(struct series *s)
{
	free(s->service), free(s->metric), free(s->attributes);
	free(s->db_system), free(s->db_operation);
}

static struct series *find(struct table *t, const struct series *s)
{
	for (size_t i = 0; i < t->n; i++) {
		struct series *x = &t->series[i];
		if (x->pid == s->pid && strcmp(x->service, s->service) == 0 &&
		    strcmp(x->metric, s->metric) == 0 && strcmp(x->attributes, s->attributes) == 0)
			return x;
	}
	return NULL;
}

static void add_point(struct table *t, struct series *s)
{
	struct series *x = find(t, s);
	if (!x) {
		if (t->n == t->cap) {
			size_t cap = t->cap ? 2 * t->cap : 16;
			struct series *bigger = realloc(t->series, cap * sizeof *bigger);
			if (!bigger) {
				t->failed = true;
				goto drop;
			}
			t->series = bigger;
			t->cap = cap;
		}
		t->series[t->n++] = *s;
		return;
	}
	if (s->delta && x->delta && s->n_buckets == x->n_buckets) {
		x->count += s->count;
		for (size_t b = 0; b < s->n_buckets; b++)
			x->buckets[b] += s->buckets[b];
		if (s->start < x->start)
			x->start = s->start;
		if (s->time > x->time)
			x->time = s->time;
	} else if (s->time >= x->time) {
		series_free(x);
		*x = *s;
		return;
	}
drop:
	series_free(s);
}

/* One histogram data point (of db.client.operation.duration: `db`); false
 * when it is not one. */
static bool read_point(const struct json_value *p, struct series *s, bool db)
{
	const struct json_value *counts = member(p, "bucketCounts", JSON_ARRAY);
	const struct json_value *bounds = member(p, "explicitBounds", JSON_ARRAY);
	if (!counts || !bounds || counts->count != bounds->count + 1 || counts->count > MAX_BUCKETS)
		return false;
	const struct json_value *start = json_get(p, "startTimeUnixNano");
	const struct json_value *time = json_get(p, "timeUnixNano");
	const struct json_value *count = json_get(p, "count");
	if (!start || !time || !count || !json_uint64(start, &s->start) ||
	    !json_uint64(time, &s->time) || !json_uint64(count, &s->count))
		return false;
	s->n_buckets = counts->count;
	size_t b = 0;
	for (const struct json_value *c = counts->first; c; c = c->next, b++)
		if (!json_uint64(c, &s->buckets[b]))
			return false;
	b = 0;
	for (const struct json_value *x = bounds->first; x; x = x->next, b++) {
		if (x->type != JSON_NUMBER)
			return false;
		s->bounds[b] = strtod(x->text, NULL);
	}
	char buf[32];
	const struct json_value *attributes = member(p, "attributes", JSON_ARRAY);
	s->error = attribute_text(attributes, "error.type", buf) != NULL;
	s->attributes = attributes_key(attributes);
	if (s->attributes && db) {
		const char *system = attribute_text(attributes, "db.system.name", buf);
		s->db_system = strdup(system ? system : "");
		const char *operation = attribute_text(attributes, "db.operation.name", buf);
		s->db_operation = strdup(operation ? operation : "");
		if (!s->db_system || !s->db_operation)
			return false;
	}
	return s->attributes != NULL;
}

/* One point of the shim's span counts (a sum, asInt); false when it is
 * not one. Its count is the value, its outcome in s->outcome. */
static bool read_count_point(const struct json_value *p, struct series *s)
{
	const struct json_value *start = json_get(p, "startTimeUnixNano");
	const struct json_value *time = json_get(p, "timeUnixNano");
	const struct json_value *value = json_get(p, "asInt");
	if (!start || !time || !value || !json_uint64(start, &s->start) ||
	    !json_uint64(time, &s->time) || !json_uint64(value, &s->count))
		return false;
	char buf[32];
	const struct json_value *attributes = member(p, "attributes", JSON_ARRAY);
	const char *outcome = attribute_text(attributes, "otlpauto.span.outcome", buf);
	s->outcome = !outcome				   ? OUTCOME_NONE
		     : strcmp(outcome, "produced") == 0	   ? OUTCOME_PRODUCED
		     : strcmp(outcome, "exported") == 0	   ? OUTCOME_EXPORTED
		     : strcmp(outcome, "sampled_out") == 0 ? OUTCOME_SAMPLED_OUT
		     : strcmp(outcome, "dropped") == 0	   ? OUTCOME_DROPPED
							   : OUTCOME_NONE;
	s->attributes = attributes_key(attributes);
	return s->outcome != OUTCOME_NONE && s->attributes != NULL;
}

static void read_request(struct table *t, const struct json_value *request)
{
	const struct json_value *resources = member(request, "resourceMetrics", JSON_ARRAY);
	for (const struct json_value *rm = resources ? resources->first : NULL; rm; rm = rm->next) {
		const struct json_value *resource = member(rm, "resource", JSON_OBJECT);
		const struct json_value *rattrs =
		    resource ? member(resource, "attributes", JSON_ARRAY) : NULL;
		char pid_text[32], unused[32];
		const char *service = attribute_text(rattrs, "service.name", unused);
		const char *pid = attribute_text(rattrs, "process.pid", pid_text);
		const struct json_value *scopes = member(rm, "scopeMetrics", JSON_ARRAY);
		for (const struct json_value *sm = scopes ? scopes->first : NULL; sm;
		     sm = sm->next) {
			const struct json_value *metrics = member(sm, "metrics", JSON_ARRAY);
			for (const struct json_value *m = metrics ? metrics->first : NULL; m;
			     m = m->next) {
				const struct json_value *name = member(m, "name", JSON_STRING);
				const struct json_value *h = member(m, "histogram", JSON_OBJECT);
				bool counts = !h && name && strcmp(name->text, SPANS_METRIC) == 0;
				if (counts)
					h = member(m, "sum", JSON_OBJECT);
				const struct json_value *points =
				    h ? member(h, "dataPoints", JSON_ARRAY) : NULL;
				int64_t temporality = 0;
				const struct json_value *tv =
				    h ? json_get(h, "aggregationTemporality") : NULL;
				if (tv)
					json_int64(tv, &temporality);
				for (const struct json_value *p = points ? points->first : NULL; p;
				     p = p->next) {
					struct series s = {.pid = pid ? atoll(pid) : 0,
							   .delta = temporality == DELTA};
					bool db = name && strcmp(name->text, DB_METRIC) == 0;
					if (!name || !(counts ? read_count_point(p, &s)
							      : read_point(p, &s, db))) {
						series_free(&s);
						continue;
					}
					s.service = strdup(service ? service : "(no service.name)");
					s.metric = strdup(name->text);
					if (!s.service || !s.metric) {
						t->failed = true;
						series_free(&s);
						continue;
					}
					add_point(t, &s);
				}
			}
		}
	}
}

static bool read_file(struct table *t, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "otlpauto view: cannot open %s: %s\n", path, strerror(errno));
		return false;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		/* only metrics lines: spans are the trees' */
		if (!strstr(line, "\"resourceMetrics\""))
			continue;
		struct arena arena = {.limit = LINE_MEMORY_LIMIT};
		struct json_error err;
		const struct json_value *request = json_parse(line, (size_t)len, &arena, &err);
		if (request && request->type == JSON_OBJECT)
			read_request(t, request);
		arena_free(&arena);
	}
	bool ok = !ferror(f);
	if (!ok)
		fprintf(stderr, "otlpauto view: cannot read %s: %s\n", path, strerror(errno));
	free(line);
	fclose(f);
	return ok;
}

/* The q-quantile in seconds of merged buckets; NAN without counts. */
static double quantile(const uint64_t *buckets, const double *bounds, size_t n, double q)
{
	uint64_t total = 0;
	for (size_t b = 0; b < n; b++)
		total += buckets[b];
	if (!total)
		return NAN;
	double rank = q * (double)total, seen = 0;
	for (size_t b = 0; b < n; b++) {
		if (seen + (double)buckets[b] >= rank && buckets[b]) {
			if (b == n - 1)
				return n > 1 ? bounds[n - 2] : 0;
			double lower = b ? bounds[b - 1] : 0, upper = bounds[b];
			return lower + (upper - lower) * (rank - seen) / (double)buckets[b];
		}
		seen += (double)buckets[b];
	}
	return n > 1 ? bounds[n - 2] : 0;
}

static int text_order(const char *x, const char *y)
{
	return x && y ? strcmp(x, y) : (x != NULL) - (y != NULL);
}

static int by_row(const void *a, const void *b)
{
	const struct series *x = a, *y = b;
	int c = strcmp(x->service, y->service);
	if (!c)
		c = strcmp(x->metric, y->metric);
	if (!c)
		c = text_order(x->db_system, y->db_system);
	return c ? c : text_order(x->db_operation, y->db_operation);
}

static const char *seconds_text(double s, char buf[static 32])
{
	if (isnan(s))
		return "-";
	return format_duration((uint64_t)(s * 1e9 + 0.5), buf);
}

/* The shim's own counts per service (series sorted by service): what became
 * of the spans its processes produced. */
static void print_span_counts(FILE *out, const struct table *t, bool after_requests)
{
	bool header = false;
	for (size_t i = 0; i < t->n;) {
		const char *service = t->series[i].service;
		uint64_t sums[OUTCOMES] = {0};
		bool any = false;
		for (; i < t->n && strcmp(t->series[i].service, service) == 0; i++) {
			if (t->series[i].outcome != OUTCOME_NONE) {
				sums[t->series[i].outcome] += t->series[i].count;
				any = true;
			}
		}
		if (!any)
			continue;
		if (!header) {
			fprintf(out, "%s%-24s %12s %12s %12s %12s\n", after_requests ? "\n" : "",
				"service", "spans", "exported", "sampled out", "dropped");
			header = true;
		}
		fprintf(out, "%-24s %12llu %12llu %12llu %12llu\n", service,
			(unsigned long long)sums[OUTCOME_PRODUCED],
			(unsigned long long)sums[OUTCOME_EXPORTED],
			(unsigned long long)sums[OUTCOME_SAMPLED_OUT],
			(unsigned long long)sums[OUTCOME_DROPPED]);
	}
}

/* Prints the row that starts at series i (its series are adjacent): its
 * operations, rate, error % and percentiles. Returns the index after it. */
static size_t print_row(FILE *out, const struct table *t, size_t i)
{
	const struct series *row = &t->series[i];
	uint64_t requests = 0, errors = 0, start = UINT64_MAX, end = 0;
	uint64_t buckets[MAX_BUCKETS] = {0};
	size_t j = i;
	for (; j < t->n && by_row(&t->series[j], row) == 0; j++) {
		const struct series *s = &t->series[j];
		requests += s->count;
		errors += s->error ? s->count : 0;
		start = s->start < start ? s->start : start;
		end = s->time > end ? s->time : end;
		if (s->n_buckets == row->n_buckets)
			for (size_t b = 0; b < s->n_buckets; b++)
				buckets[b] += s->buckets[b];
	}
	double window = end > start ? (double)(end - start) / 1e9 : 0;
	char rate[32], p50[32], p90[32], p99[32];
	if (window > 0)
		snprintf(rate, sizeof rate, "%.2f", (double)requests / window);
	else
		snprintf(rate, sizeof rate, "-");
	if (row->db_system)
		fprintf(out, "%-24s %-12s %-20s ", row->service,
			row->db_system[0] ? row->db_system : "-",
			row->db_operation[0] ? row->db_operation : "-");
	else
		fprintf(out, "%-24s %-30s ", row->service, row->metric);
	fprintf(out, "%10llu %10s %7.1f%% %12s %12s %12s\n", (unsigned long long)requests, rate,
		requests ? 100.0 * (double)errors / (double)requests : 0.0,
		seconds_text(quantile(buckets, row->bounds, row->n_buckets, 0.5), p50),
		seconds_text(quantile(buckets, row->bounds, row->n_buckets, 0.9), p90),
		seconds_text(quantile(buckets, row->bounds, row->n_buckets, 0.99), p99));
	return j;
}

bool print_metrics(FILE *out, char *const *paths, size_t n_paths)
{
	struct table t = {0};
	bool ok = true;
	for (size_t i = 0; i < n_paths; i++)
		ok = read_file(&t, paths[i]) && ok;
	if (ok && !t.n && !t.failed) {
		/* Not an empty table: say why there is nothing to show. */
		fprintf(stderr,
			"otlpauto view: no metrics in %s (the otlp/file exporter writes them: "
			"HTTP request and database operation durations and each process's span "
			"counts)\n",
			n_paths == 1 ? paths[0] : "these files");
		return false;
	}
	if (t.n)
		qsort(t.series, t.n, sizeof *t.series, by_row);
	/* the requests' table, then the database operations' */
	size_t n_requests = 0, n_operations = 0;
	for (size_t i = 0; i < t.n; i++) {
		n_requests += t.series[i].outcome == OUTCOME_NONE && !t.series[i].db_system;
		n_operations += t.series[i].db_system != NULL;
	}
	if (n_requests)
		fprintf(out, "%-24s %-30s %10s %10s %8s %12s %12s %12s\n", "service", "metric",
			"requests", "rate/s", "errors", "p50", "p90", "p99");
	for (size_t i = 0; i < t.n;)
		i = t.series[i].outcome == OUTCOME_NONE && !t.series[i].db_system
			? print_row(out, &t, i)
			: i + 1;
	if (n_operations)
		fprintf(out, "%s%-24s %-12s %-20s %10s %10s %8s %12s %12s %12s\n",
			n_requests ? "\n" : "", "service", "db.system", "operation", "operations",
			"rate/s", "errors", "p50", "p90", "p99");
	for (size_t i = 0; i < t.n;)
		i = t.series[i].db_system ? print_row(out, &t, i) : i + 1;
	print_span_counts(out, &t, n_requests + n_operations != 0);
	for (size_t i = 0; i < t.n; i++)
		series_free(&t.series[i]);
	free(t.series);
	if (t.failed)
		fprintf(stderr, "otlpauto view: out of memory; metrics left out\n");
	return ok && !t.failed;
}
