/* Recording, merging and the series cap of src/metrics.c, HTTP's and the
 * database's keys; the request encoder is decoded by python3-protobuf in
 * tests/integration/test_http_metrics.py and test_db_metrics.py from
 * `test_metrics --dump DIR`. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "encode_json.h"
#include "encode_metrics.h"
#include "http_parse.h"
#include "metrics.h"

#define MAX_SERIES 3
#define MS	   1000000ull

static struct oa_metric_cell totals[OA_METRIC_COUNT * (MAX_SERIES + 1)];

static struct oa_metric_key server_key(uint8_t method, uint16_t status)
{
	struct oa_metric_key k;
	struct oa_http_metric_attrs a = {.method = method, .status = status};
	oa_metric_key_http(&k, OA_METRIC_HTTP_SERVER_DURATION, &a);
	return k;
}

static struct oa_metric_key client_key(const char *address, uint16_t port, uint16_t status, int err)
{
	struct oa_metric_key k;
	struct oa_http_metric_attrs a = {
	    .address = address,
	    .address_len = strlen(address),
	    .port = port,
	    .status = status,
	    .error = err,
	};
	oa_metric_key_http(&k, OA_METRIC_HTTP_CLIENT_DURATION, &a);
	return k;
}

static struct oa_metric_key db_key(const char *operation, const char *status, int err)
{
	struct oa_metric_key k;
	struct oa_db_metric_attrs a = {
	    .system = OA_DB_POSTGRESQL,
	    .name_space = "shop",
	    .name_space_len = 4,
	    .operation = operation,
	    .operation_len = strlen(operation),
	    .collection = "accounts",
	    .collection_len = 8,
	    .status = status,
	    .status_len = status ? strlen(status) : 0,
	    .error = err,
	};
	oa_metric_key_db(&k, &a);
	return k;
}

/* Keys are equal in their words and the text their length covers. */
static bool same_key(const struct oa_metric_key *a, const struct oa_metric_key *b)
{
	return a->head[0] == b->head[0] && a->head[1] == b->head[1] &&
	       memcmp(a->text, b->text, oa_metric_key_text_len(a)) == 0;
}

/* The id whose key equals k, or -1. */
static int id_of(const struct oa_metric_key *k)
{
	for (uint32_t id = OA_METRIC_COUNT; id < oa_metrics_ids(); id++) {
		uint8_t metric;
		const struct oa_metric_key *got = oa_metrics_key(id, &metric);
		if (got && same_key(got, k))
			return (int)id;
	}
	return -1;
}

static uint64_t count_of(const struct oa_metric_cell *c)
{
	uint64_t n = 0;
	for (int b = 0; b < OA_METRIC_BUCKETS; b++)
		n += c->buckets[b];
	return n;
}

static void collect(void)
{
	oa_metrics_collect(totals, oa_metrics_ids());
}

static void test_buckets(void)
{
	struct oa_metric_key get200 = server_key(OA_HTTP_GET, 200);
	CHECK(oa_metrics_record(&get200, 1 * MS));  /* the thread's first record */
	CHECK(!oa_metrics_record(&get200, 5 * MS)); /* a bound belongs to its bucket */
	oa_metrics_record(&get200, 5 * MS + 1);
	oa_metrics_record(&get200, 999 * MS);
	oa_metrics_record(&get200, 20000 * MS);
	collect();
	int id = id_of(&get200);
	CHECK(id >= OA_METRIC_COUNT);
	if (id < 0)
		return;
	const struct oa_metric_cell *c = &totals[id];
	CHECK_EQ_INT(c->buckets[0], 2);
	CHECK_EQ_INT(c->buckets[1], 1);
	CHECK_EQ_INT(c->buckets[9], 1);	 /* (0.75 s, 1 s] */
	CHECK_EQ_INT(c->buckets[14], 1); /* beyond 10 s */
	CHECK_EQ_INT(count_of(c), 5);
	CHECK_EQ_INT(oa_clock_ticks_to_ns(c->sum_ticks), 21010 * MS + 1);
	/* collecting again adds nothing */
	collect();
	CHECK_EQ_INT(count_of(&totals[id]), 5);
}

/* A TLS library's reason is the error.type of a client exchange, as on its
 * span; the address and it share the key's text without mixing. */
static void test_error_text(void)
{
	static const char reason[] = "tlsv1 alert unknown ca";
	struct oa_http_metric_attrs a = {
	    .address = "example.com",
	    .address_len = 11,
	    .port = 443,
	    .https = true,
	    .error = EPROTO,
	    .error_text = reason,
	    .error_text_len = sizeof reason - 1,
	};
	struct oa_metric_key k;
	oa_metric_key_http(&k, OA_METRIC_HTTP_CLIENT_DURATION, &a);
	struct oa_http_metric_attrs back;
	oa_metric_http_attrs(&k, &back);
	CHECK_EQ_INT((int)back.address_len, 11);
	CHECK(memcmp(back.address, "example.com", 11) == 0);
	CHECK_EQ_INT((int)back.error_text_len, (int)sizeof reason - 1);
	CHECK(memcmp(back.error_text, reason, sizeof reason - 1) == 0);
	CHECK_EQ_INT(back.error, EPROTO);

	struct oa_metric_point p = {.metric = OA_METRIC_HTTP_CLIENT_DURATION, .key = &k};
	struct oa_attr attrs[16];
	struct oa_metric_attr_text scratch;
	size_t n = oa_metric_point_attrs(&p, attrs, &scratch);
	const struct oa_attr *error = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(attrs[i].key.ptr, "error.type") == 0)
			error = &attrs[i];
	CHECK(error && error->v.s.len == sizeof reason - 1 &&
	      memcmp(error->v.s.ptr, reason, sizeof reason - 1) == 0);

	/* without it, the errno's name as before; a different series */
	a.error_text = NULL;
	a.error_text_len = 0;
	struct oa_metric_key plain;
	oa_metric_key_http(&plain, OA_METRIC_HTTP_CLIENT_DURATION, &a);
	CHECK(memcmp(&plain, &k, sizeof plain) != 0);
	p.key = &plain;
	n = oa_metric_point_attrs(&p, attrs, &scratch);
	error = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(attrs[i].key.ptr, "error.type") == 0)
			error = &attrs[i];
	CHECK(error && strncmp(error->v.s.ptr, "EPROTO", error->v.s.len) == 0);
}

#define THREADS	   4
#define PER_THREAD 20000

static void *recorder(void *arg)
{
	(void)arg;
	struct oa_metric_key a = client_key("example.com", 443, 200, 0);
	struct oa_metric_key b = client_key("10.0.0.1", 8080, 0, ECONNRESET);
	for (int i = 0; i < PER_THREAD; i++)
		oa_metrics_record(i % 4 ? &a : &b, 2 * MS);
	return NULL;
}

/* Threads add the same series at once; their cells outlive them. */
static void test_threads(void)
{
	pthread_t threads[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, recorder, NULL);
	/* merged while they run: never more than was recorded */
	collect();
	struct oa_metric_key a = client_key("example.com", 443, 200, 0);
	struct oa_metric_key b = client_key("10.0.0.1", 8080, 0, ECONNRESET);
	int ia = id_of(&a), ib = id_of(&b);
	if (ia >= 0)
		CHECK(count_of(&totals[ia]) <= THREADS * PER_THREAD * 3 / 4);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	/* a joined thread may still be exiting in the kernel: wait until it is gone */
	usleep(100000);
	ia = id_of(&a), ib = id_of(&b);
	CHECK(ia >= 0 && ib >= 0 && ia != ib);
	if (ia < 0 || ib < 0)
		return;
	for (int round = 0; round < 2; round++) { /* folded once, kept after */
		collect();
		uint64_t na = 0, nb = 0;
		for (uint32_t id = 0; id < oa_metrics_ids(); id++) {
			uint8_t metric;
			const struct oa_metric_key *k = oa_metrics_key(id, &metric);
			if (k && same_key(k, &a))
				na += count_of(&totals[id]);
			if (k && same_key(k, &b))
				nb += count_of(&totals[id]);
		}
		CHECK_EQ_INT(na, THREADS * PER_THREAD * 3 / 4);
		CHECK_EQ_INT(nb, THREADS * PER_THREAD / 4);
		CHECK_EQ_INT(count_of(&totals[ia]), THREADS * PER_THREAD * 3 / 4);
		CHECK_EQ_INT(totals[ia].buckets[0], THREADS * PER_THREAD * 3 / 4);
	}
}

/* MAX_SERIES attribute sets per metric; the rest go to its overflow series. */
static void test_cap(void)
{
	/* GET 200 is one of the server's three already */
	struct oa_metric_key keys[5] = {
	    server_key(OA_HTTP_GET, 200),  server_key(OA_HTTP_GET, 404),
	    server_key(OA_HTTP_POST, 201), server_key(OA_HTTP_PUT, 500),
	    server_key(OA_HTTP_GET, 503),
	};
	for (int i = 0; i < 5; i++)
		for (int n = 0; n <= i; n++)
			oa_metrics_record(&keys[i], 1 * MS);
	collect();
	CHECK(id_of(&keys[1]) >= 0 && id_of(&keys[2]) >= 0);
	CHECK_EQ_INT(id_of(&keys[3]), -1);
	CHECK_EQ_INT(id_of(&keys[4]), -1);
	uint8_t metric = OA_METRIC_COUNT;
	CHECK(oa_metrics_key(OA_METRIC_HTTP_SERVER_DURATION, &metric) == NULL);
	CHECK_EQ_INT(metric, OA_METRIC_HTTP_SERVER_DURATION);
	CHECK_EQ_INT(count_of(&totals[OA_METRIC_HTTP_SERVER_DURATION]), 4 + 5);
	CHECK_EQ_INT(count_of(&totals[id_of(&keys[2])]), 3);
	/* the client metric's cap is its own: two used, one left */
	struct oa_metric_key c = client_key("third.example", 80, 200, 0);
	oa_metrics_record(&c, 1 * MS);
	collect();
	CHECK(id_of(&c) >= 0);
	CHECK_EQ_INT(count_of(&totals[OA_METRIC_HTTP_CLIENT_DURATION]), 0);
	CHECK(oa_metrics_ids() <= OA_METRIC_COUNT * (MAX_SERIES + 1));
}

/* db.client.operation.duration: its own bounds (1 ms to 10 s), its own
 * attribute set and cap. */
static void test_db(void)
{
	struct oa_metric_key select = db_key("SELECT", NULL, 0);
	oa_metrics_record(&select, 1 * MS); /* a bound belongs to its bucket */
	oa_metrics_record(&select, 1 * MS + 1);
	oa_metrics_record(&select, 20000 * MS);
	struct oa_metric_key syntax = db_key("SELECT", "42601", 0);
	struct oa_metric_key reset = db_key("SELECT", NULL, ECONNRESET);
	oa_metrics_record(&syntax, 3 * MS);
	oa_metrics_record(&reset, 3 * MS);
	struct oa_metric_key insert = db_key("INSERT", NULL, 0);
	oa_metrics_record(&insert, 3 * MS); /* the fourth set: over the cap */
	collect();
	int id = id_of(&select);
	CHECK(id >= OA_METRIC_COUNT);
	CHECK(id_of(&syntax) >= 0 && id_of(&reset) >= 0 && id_of(&syntax) != id_of(&reset));
	CHECK_EQ_INT(id_of(&insert), -1);
	CHECK_EQ_INT(count_of(&totals[OA_METRIC_DB_CLIENT_DURATION]), 1);
	if (id < 0)
		return;
	CHECK_EQ_INT(totals[id].buckets[0], 1);
	CHECK_EQ_INT(totals[id].buckets[1], 1);
	CHECK_EQ_INT(totals[id].buckets[9], 1); /* beyond 10 s */
	uint8_t metric;
	const struct oa_metric_key *k = oa_metrics_key((uint32_t)id, &metric);
	CHECK_EQ_INT(metric, OA_METRIC_DB_CLIENT_DURATION);
	/* the attributes come back as they went in */
	struct oa_db_metric_attrs a;
	oa_metric_db_attrs(k, &a);
	CHECK_EQ_INT(a.system, OA_DB_POSTGRESQL);
	CHECK(a.name_space_len == 4 && memcmp(a.name_space, "shop", 4) == 0);
	CHECK(a.operation_len == 6 && memcmp(a.operation, "SELECT", 6) == 0);
	CHECK(a.collection_len == 8 && memcmp(a.collection, "accounts", 8) == 0);
	CHECK_EQ_INT(a.status_len, 0);
	CHECK_EQ_INT(a.ip_version, 0);
	oa_metric_db_attrs(oa_metrics_key((uint32_t)id_of(&syntax), &metric), &a);
	CHECK(a.status_len == 5 && memcmp(a.status, "42601", 5) == 0);
	/* a long name is cut, not written past the text */
	char long_name[300];
	memset(long_name, 'x', sizeof long_name);
	struct oa_db_metric_attrs big = {
	    .name_space = long_name,
	    .name_space_len = sizeof long_name,
	    .operation = long_name,
	    .operation_len = sizeof long_name,
	    .collection = long_name,
	    .collection_len = sizeof long_name,
	    .status = long_name,
	    .status_len = sizeof long_name,
	    .ip_version = 6,
	    .address = long_name,
	};
	struct oa_metric_key cut;
	oa_metric_key_db(&cut, &big);
	oa_metric_db_attrs(&cut, &a);
	CHECK_EQ_INT(a.name_space_len, OA_METRIC_DB_NAMESPACE_MAX);
	CHECK_EQ_INT(a.operation_len, OA_METRIC_DB_OPERATION_MAX);
	CHECK_EQ_INT(a.collection_len, OA_METRIC_DB_COLLECTION_MAX);
	CHECK_EQ_INT(a.status_len, OA_METRIC_DB_STATUS_MAX);
	CHECK_EQ_INT(oa_metric_key_text_len(&cut),
		     OA_METRIC_DB_NAMESPACE_MAX + OA_METRIC_DB_OPERATION_MAX +
			 OA_METRIC_DB_COLLECTION_MAX + OA_METRIC_DB_STATUS_MAX + 16);
}

/* A request with one point of each kind, for the Python decoder. */
static int dump(const char *dir)
{
	struct oa_metric_key get200 = server_key(OA_HTTP_GET, 200);
	struct oa_metric_key put503 = server_key(OA_HTTP_PUT, 503);
	struct oa_metric_key client404;
	struct oa_http_metric_attrs https404 = {.https = true,
						.status = 404,
						.address = "api.example.com",
						.address_len = 15,
						.port = 8443};
	oa_metric_key_http(&client404, OA_METRIC_HTTP_CLIENT_DURATION, &https404);
	struct oa_metric_key refused = client_key("::1", 9, 0, ECONNREFUSED);
	struct oa_metric_point points[5] = {
	    {.metric = OA_METRIC_HTTP_SERVER_DURATION, .key = &get200, .count = 3, .sum_s = 0.5},
	    {.metric = OA_METRIC_HTTP_SERVER_DURATION, .key = &put503, .count = 1, .sum_s = 12},
	    {.metric = OA_METRIC_HTTP_SERVER_DURATION, .key = NULL, .count = 2, .sum_s = 0.25},
	    {.metric = OA_METRIC_HTTP_CLIENT_DURATION,
	     .key = &client404,
	     .count = 1,
	     .sum_s = 0.01},
	    {.metric = OA_METRIC_HTTP_CLIENT_DURATION, .key = &refused, .count = 1, .sum_s = 0.002},
	};
	points[0].buckets[0] = 1, points[0].buckets[7] = 2;
	points[1].buckets[14] = 1;
	points[2].buckets[3] = 2;
	points[3].buckets[1] = 1;
	points[4].buckets[0] = 1;
	/* The database points, after an HTTP one: two scopes. */
	struct oa_metric_key select = db_key("SELECT", NULL, 0);
	struct oa_metric_key syntax = db_key("", "42601", 0);
	struct oa_metric_key reset;
	const struct in6_addr loopback6 = IN6ADDR_LOOPBACK_INIT;
	const struct in_addr loopback4 = {.s_addr = htonl(INADDR_LOOPBACK)};
	struct oa_db_metric_attrs redis = {
	    .system = OA_DB_REDIS,
	    .ip_version = 6,
	    .address = &loopback6,
	    .port = 6379,
	    .name_space = "0",
	    .name_space_len = 1,
	    .operation = "GET",
	    .operation_len = 3,
	    .error = ECONNRESET,
	};
	oa_metric_key_db(&reset, &redis);
	struct oa_metric_key wrongtype;
	redis.ip_version = 4, redis.address = &loopback4, redis.error = 0;
	redis.status = "WRONGTYPE", redis.status_len = 9;
	oa_metric_key_db(&wrongtype, &redis);
	struct oa_metric_point db_points[6] = {
	    points[0],
	    {.metric = OA_METRIC_DB_CLIENT_DURATION, .key = &select, .count = 4, .sum_s = 0.02},
	    {.metric = OA_METRIC_DB_CLIENT_DURATION, .key = &syntax, .count = 1, .sum_s = 0.0005},
	    {.metric = OA_METRIC_DB_CLIENT_DURATION, .key = &reset, .count = 1, .sum_s = 20},
	    {.metric = OA_METRIC_DB_CLIENT_DURATION, .key = &wrongtype, .count = 1, .sum_s = 0.003},
	    {.metric = OA_METRIC_DB_CLIENT_DURATION, .key = NULL, .count = 2, .sum_s = 0.1},
	};
	db_points[1].buckets[1] = 3, db_points[1].buckets[2] = 1;
	db_points[2].buckets[0] = 1;
	db_points[3].buckets[9] = 1;
	db_points[4].buckets[1] = 1;
	db_points[5].buckets[4] = 2;
	struct oa_str args[2] = {{"nginx", 5}, {"-g", 2}};
	struct oa_attr resource[3] = {
	    {.key = {"service.name", 12}, .type = OA_VALUE_STRING, .v.s = {"svc", 3}},
	    {.key = {"process.pid", 11}, .type = OA_VALUE_INT, .v.i = 4242},
	    {.key = {"process.command_args", 20},
	     .type = OA_VALUE_STRING_ARRAY,
	     .v.array = {args, 2}},
	};
	struct oa_span_count counts[4] = {
	    {"produced", NULL, 10},
	    {"exported", NULL, 6},
	    {"sampled_out", NULL, 1},
	    {"dropped", "export_failed", 3},
	};
	/* cumulative and delta with both kinds; the span counts alone; the
	 * database points */
	static const char *const variants[4] = {"cumulative", "delta", "counts", "db"};
	for (int variant = 0; variant < 4; variant++) {
		bool delta = variant == 1, counts_only = variant == 2, db = variant == 3;
		struct oa_metrics_export m = {
		    .resource_attrs = resource,
		    .n_resource_attrs = 3,
		    .scope_version = {"0.1.0", 5},
		    .start_unix_nano = 1700000000000000000ull,
		    .time_unix_nano = 1700000060000000000ull,
		    .delta = delta,
		    .points = db ? db_points : points,
		    .n_points = counts_only ? 0
				: db	    ? 6
					    : 5,
		    .span_counts = counts,
		    .n_span_counts = 4,
		};
		for (int json = 0; json < 2; json++) {
			struct oa_buf out = {0};
			if (!(json ? oa_json_metrics_encode(&m, &out)
				   : oa_metrics_pb_encode(&m, &out)))
				return 1;
			char path[4096];
			snprintf(path, sizeof path, "%s/metrics-%s.%s", dir, variants[variant],
				 json ? "json" : "pb");
			FILE *f = fopen(path, "wb");
			if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0)
				return 1;
			oa_buf_free(&out);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	/* ticks are ns: durations below are exact */
	oa_clock_init(true, NULL);
	if (argc == 3 && strcmp(argv[1], "--dump") == 0)
		return dump(argv[2]);
	CHECK(!oa_metrics_enabled());
	struct oa_metric_key k = server_key(OA_HTTP_GET, 200);
	CHECK(!oa_metrics_record(&k, 1)); /* off: nothing happens */
	CHECK(oa_metrics_init(MAX_SERIES));
	CHECK(oa_metrics_enabled());
	CHECK_EQ_INT(oa_metrics_ids(), 0); /* none before the first series */
	test_buckets();
	test_error_text();
	test_threads();
	test_cap();
	test_db();
	CHECK_DONE();
}
