/* libFuzzer: the built-in OTLP client's response reader and URL reader on
 * arbitrary bytes. Beyond "no crash", the reader must consume what it says
 * and come to the same answer whether the input is fed whole, split at a
 * fuzzer-chosen point or a byte at a time; the URL reader must give a
 * NUL-terminated host and a decimal port.
 *
 * Input: bytes 0-1 = split point, then the response (also read as a URL). */
#include "http_client.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

struct outcome {
	enum oa_http_read result;
	size_t used;
	int status;
	bool close;
	int64_t retry_after_s;
	size_t body_len;
	char body[48];
};

/* Feeds in pieces of `piece` bytes (0: whole, else a split at `split`
 * first when piece is SIZE_MAX), then the end of the stream. */
static void read_all(const char *text, size_t len, size_t split, size_t piece, struct outcome *o)
{
	struct oa_http_response r;
	oa_http_response_init(&r, o->body, sizeof o->body);
	size_t at = 0;
	enum oa_http_read result = OA_HTTP_READ_MORE;
	while (at < len && result == OA_HTTP_READ_MORE) {
		size_t n = len - at;
		if (piece == SIZE_MAX && at < split)
			n = split - at;
		else if (piece && piece != SIZE_MAX && n > piece)
			n = piece;
		size_t used = 0;
		result = oa_http_response_feed(&r, text + at, n, &used);
		check(used <= n);
		check(result != OA_HTTP_READ_MORE || used == n);
		at += used;
	}
	if (result == OA_HTTP_READ_MORE)
		result = oa_http_response_end(&r);
	check(r.body_len <= sizeof o->body);
	o->result = result;
	o->used = at;
	o->status = r.status;
	o->close = r.close;
	o->retry_after_s = r.retry_after_s;
	o->body_len = r.body_len;
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
	check(a->result == b->result);
	if (a->result != OA_HTTP_READ_DONE)
		return;
	check(a->used == b->used && a->status == b->status && a->close == b->close);
	check(a->body_len == b->body_len && memcmp(a->body, b->body, a->body_len) == 0);
	/* a date is read against the clock, which may tick between runs */
	check(a->retry_after_s == b->retry_after_s ||
	      (a->retry_after_s >= 0 && b->retry_after_s >= 0 &&
	       llabs(a->retry_after_s - b->retry_after_s) <= 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t len = size - 2;
	size_t split = ((size_t)data[0] << 8 | data[1]) % (len + 1);
	const char *text = (const char *)data + 2;

	struct outcome whole, parts, bytes;
	read_all(text, len, 0, 0, &whole);
	read_all(text, len, split, SIZE_MAX, &parts);
	read_all(text, len, 0, 1, &bytes);
	check_same(&whole, &parts);
	check_same(&whole, &bytes);
	if (whole.result == OA_HTTP_READ_DONE)
		check(whole.status >= 200 && whole.status <= 999);

	char *url = malloc(len + 1);
	if (!url)
		return 0;
	memcpy(url, text, len);
	url[len] = '\0';
	struct oa_http_url u;
	if (oa_http_url_parse(url, &u)) {
		check(strnlen(u.host, sizeof u.host) < sizeof u.host && u.host[0]);
		check(u.port[0] && strspn(u.port, "0123456789") == strlen(u.port));
		check(u.authority >= url && u.authority + u.authority_len <= url + len);
		check(u.target >= url && u.target + u.target_len <= url + len);
	}
	free(url);
	return 0;
}
