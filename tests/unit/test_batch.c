/* The exporter's record decoding (src/batch.c): a span record's payload
 * items become attributes with the right keys, types and formatted values. */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/un.h>

#include "batch.h"
#include "config.h"
#include "payload.h"

static uint64_t ticks_as_ns(uint64_t ticks)
{
	return ticks;
}

static _Alignas(16) uint8_t record_bytes[8 * OA_SLOT_SIZE];

static struct oa_record *new_record(struct oa_payload *w)
{
	struct oa_record *rec = (struct oa_record *)record_bytes;
	memset(record_bytes, 0, sizeof record_bytes);
	rec->type = OA_REC_SPAN;
	rec->n_slots = (uint8_t)oa_record_slots(sizeof record_bytes - OA_RECORD_HEADER_SIZE -
						OA_PAYLOAD_DROPPED_ITEM);
	rec->kind = 2; /* SERVER */
	rec->scope = OA_SCOPE_HTTP;
	rec->name_source = OA_NAME_PAYLOAD;
	rec->trace_flags = 1;
	rec->trace_id[15] = 1;
	rec->span_id = 0x1122334455667788u;
	rec->start = 1000;
	rec->end = 2000;
	oa_payload_init(w, rec);
	return rec;
}

static const struct oa_attr *find(const struct oa_export_span *s, const char *key)
{
	for (uint32_t i = 0; i < s->n_attrs; i++)
		if (s->attrs[i].key.len == strlen(key) &&
		    !memcmp(s->attrs[i].key.ptr, key, strlen(key)))
			return &s->attrs[i];
	return NULL;
}

static void check_string_attr(const struct oa_export_span *s, const char *key, const char *value)
{
	const struct oa_attr *a = find(s, key);
	CHECK(a != NULL);
	if (!a)
		return;
	CHECK_EQ_INT(a->type, OA_VALUE_STRING);
	CHECK(a->v.s.len == strlen(value) && !memcmp(a->v.s.ptr, value, a->v.s.len));
}

static struct oa_config cfg;
static struct oa_batch *batch;

/* A fresh batch with default settings, and a record to fill. */
static struct oa_record *setup(struct oa_payload *w)
{
	oa_config_defaults(&cfg);
	batch = oa_batch_create(&cfg, NULL, ticks_as_ns);
	return new_record(w);
}

/* Adds the record and returns its span as the exporter would encode it. */
static const struct oa_export_span *add_and_view(const struct oa_record *rec)
{
	CHECK(oa_batch_add(batch, rec, NULL));
	const struct oa_export_batch *view = oa_batch_view(batch, NULL, 0);
	CHECK_EQ_INT(view->n_scopes, 1);
	return &view->scopes[0].spans[0];
}

static void teardown(void)
{
	oa_batch_destroy(batch);
	oa_config_free(&cfg);
}

static void test_http_server_record(void)
{
	struct oa_payload w;
	struct oa_record *rec = setup(&w);
	oa_payload_text(&w, OA_ITEM_NAME, "GET", 3);
	oa_payload_attr_static(&w, OA_KEY_HTTP_REQUEST_METHOD, "GET");
	oa_payload_attr_str(&w, OA_KEY_URL_PATH, "/items", 6);
	oa_payload_attr_int(&w, OA_KEY_SERVER_PORT, 8080);
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(40000)};
	inet_pton(AF_INET, "192.168.10.7", &v4.sin_addr);
	oa_payload_attr_sockaddr(&w, OA_KEY_CLIENT_ADDRESS, (struct sockaddr *)&v4, sizeof v4);
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "2001:db8::5", &v6.sin6_addr);
	oa_payload_attr_sockaddr(&w, OA_KEY_NETWORK_PEER_ADDRESS, (struct sockaddr *)&v6,
				 sizeof v6);
	struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/run/app.sock"};
	oa_payload_attr_sockaddr(&w, OA_KEY_SERVER_ADDRESS, (struct sockaddr *)&un,
				 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 14));
	oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, ECONNREFUSED);
	oa_payload_finish(&w);
	const struct oa_export_span *s = add_and_view(rec);
	CHECK(s->name.len == 3 && !memcmp(s->name.ptr, "GET", 3));
	CHECK_EQ_INT(s->n_attrs, 7);
	check_string_attr(s, "http.request.method", "GET");
	check_string_attr(s, "url.path", "/items");
	const struct oa_attr *port = find(s, "server.port");
	CHECK(port && port->type == OA_VALUE_INT && port->v.i == 8080);
	check_string_attr(s, "client.address", "192.168.10.7");
	check_string_attr(s, "network.peer.address", "2001:db8::5");
	check_string_attr(s, "server.address", "/run/app.sock");
	check_string_attr(s, "error.type", "ECONNREFUSED");
	teardown();
}

/* A value cut off inside the record is malformed: the span keeps what came
 * before it and nothing is read past the payload. */
static void test_truncated_sockaddr(void)
{
	struct oa_payload w;
	struct oa_record *rec = setup(&w);
	oa_payload_attr_str(&w, OA_KEY_URL_PATH, "/", 1);
	struct sockaddr_in v4 = {.sin_family = AF_INET};
	oa_payload_attr_sockaddr(&w, OA_KEY_CLIENT_ADDRESS, (struct sockaddr *)&v4, sizeof v4);
	oa_payload_finish(&w);
	rec->payload_len = (uint16_t)(rec->payload_len - 4);
	const struct oa_export_span *s = add_and_view(rec);
	check_string_attr(s, "url.path", "/");
	CHECK(find(s, "client.address") == NULL);
	teardown();
}

/* A string list becomes an array of strings: one item per NUL-ended
 * string, each made valid UTF-8 and held to the value length limit. */
static void test_string_list(void)
{
	struct oa_payload w;
	struct oa_record *rec = setup(&w);
	cfg.attribute_value_length_limit = 4;
	static const char list[] = "127.0.0.1\0::1\0\xff\0";
	oa_payload_attr_str_list(&w, OA_KEY_DNS_ANSWERS, list, sizeof list - 1);
	oa_payload_finish(&w);
	const struct oa_export_span *s = add_and_view(rec);
	const struct oa_attr *a = find(s, "dns.answers");
	CHECK(a && a->type == OA_VALUE_STRING_ARRAY && a->v.array.n == 3);
	if (a && a->v.array.n == 3) {
		const struct oa_str *items = a->v.array.items;
		CHECK(((uintptr_t)items % _Alignof(struct oa_str)) == 0);
		CHECK(items[0].len == 4 && !memcmp(items[0].ptr, "127.", 4));
		CHECK(items[1].len == 3 && !memcmp(items[1].ptr, "::1", 3));
		CHECK(items[2].len == 3 && !memcmp(items[2].ptr, "\xef\xbf\xbd", 3));
	}
	teardown();
}

/* Raw addresses become an array of strings, formatted here: IPv4, IPv6;
 * an entry cut short, or of another family, ends the list. */
static void test_address_list(void)
{
	struct oa_payload w;
	struct oa_record *rec = setup(&w);
	uint8_t list[1 + 4 + 1 + 16 + 1 + 4 + 1 + 16] = {AF_INET, 10, 0, 0, 1, AF_INET6};
	inet_pton(AF_INET6, "2001:db8::5", list + 6);
	list[22] = AF_UNIX;
	oa_payload_attr_addr_list(&w, OA_KEY_DNS_ANSWERS, list, 22 + 5);
	oa_payload_finish(&w);
	const struct oa_export_span *s = add_and_view(rec);
	const struct oa_attr *a = find(s, "dns.answers");
	CHECK(a && a->type == OA_VALUE_STRING_ARRAY && a->v.array.n == 2);
	if (a && a->v.array.n == 2) {
		const struct oa_str *items = a->v.array.items;
		CHECK(items[0].len == 8 && !memcmp(items[0].ptr, "10.0.0.1", 8));
		CHECK(items[1].len == 11 && !memcmp(items[1].ptr, "2001:db8::5", 11));
	}
	teardown();
	rec = setup(&w);
	oa_payload_attr_addr_list(&w, OA_KEY_DNS_ANSWERS, list, 22 - 1);
	oa_payload_finish(&w);
	s = add_and_view(rec);
	a = find(s, "dns.answers");
	CHECK(a && a->type == OA_VALUE_STRING_ARRAY && a->v.array.n == 1);
	teardown();
}

/* A connect span's name: the prefix and the peer, formatted here in the
 * form of the socket's family. */
static void check_peer_name(int family, const struct sockaddr *sa, socklen_t len, const char *want)
{
	struct oa_payload w;
	struct oa_record *rec = setup(&w);
	oa_payload_name_peer(&w, "socket connect ", 15, family, sa, len);
	oa_payload_attr_sockaddr(&w, OA_KEY_NETWORK_PEER_ADDRESS, sa, len);
	oa_payload_finish(&w);
	const struct oa_export_span *s = add_and_view(rec);
	bool named = s->name.len == strlen(want) && !memcmp(s->name.ptr, want, s->name.len);
	CHECK(named);
	if (!named)
		fprintf(stderr, "name: '%.*s', want '%s'\n", (int)s->name.len, s->name.ptr, want);
	teardown();
}

static void test_peer_names(void)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(8080)};
	inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr);
	check_peer_name(AF_INET, (struct sockaddr *)&v4, sizeof v4, "socket connect 10.1.2.3:8080");
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	inet_pton(AF_INET6, "2001:db8::5", &v6.sin6_addr);
	check_peer_name(AF_INET6, (struct sockaddr *)&v6, sizeof v6,
			"socket connect [2001:db8::5]:443");
	struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/run/app.sock"};
	check_peer_name(AF_UNIX, (struct sockaddr *)&un,
			(socklen_t)(offsetof(struct sockaddr_un, sun_path) + 14),
			"socket connect /run/app.sock");
	/* An abstract name starts with a NUL: shown with '@'. */
	struct sockaddr_un abstract = {.sun_family = AF_UNIX, .sun_path = "\0bus"};
	check_peer_name(AF_UNIX, (struct sockaddr *)&abstract,
			(socklen_t)(offsetof(struct sockaddr_un, sun_path) + 4),
			"socket connect @bus");
	/* An unnamed peer: the prefix alone. */
	check_peer_name(AF_UNIX, (struct sockaddr *)&un,
			(socklen_t)offsetof(struct sockaddr_un, sun_path), "socket connect ");
	/* An IPv6 socket given an IPv4 address (the connect fails): the
	 * socket's family decides the form. */
	check_peer_name(AF_INET6, (struct sockaddr *)&v4, sizeof v4,
			"socket connect [10.1.2.3]:8080");
	/* AF_UNSPEC: the address alone (a reverse DNS lookup's question). */
	check_peer_name(AF_UNSPEC, (struct sockaddr *)&v6, sizeof v6, "socket connect 2001:db8::5");
}

int main(void)
{
	test_string_list();
	test_address_list();
	test_http_server_record();
	test_truncated_sockaddr();
	test_peer_names();
	CHECK_DONE();
}
