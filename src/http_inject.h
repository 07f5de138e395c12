/* Pure helpers of the HTTP client hooks (hooks/http.c): the header lines put
 * into outgoing requests, the layout of an application write with those lines
 * inserted, and the accounting that keeps the application's view exact when
 * the kernel takes only part of it. */
#ifndef OTLPAUTO_HTTP_INJECT_H
#define OTLPAUTO_HTTP_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "traceparent.h"

/* "traceparent: <55>\r\n" and an optional "tracestate: <value>\r\n". */
#define OA_INJECT_MAX 160

/* Writes the header lines (tracestate only when ts_len > 0, and only if it
 * fits); returns their length. out holds OA_INJECT_MAX bytes. */
size_t oa_inject_format(const struct oa_span_context *ctx, const char *tracestate, size_t ts_len,
			char out[OA_INJECT_MAX]);

/* The value that replaces a forwarded version-00 traceparent (same length):
 * the CLIENT span's trace id, span id and sampled bit; the received value's
 * other flag bits are kept. Writes 55 chars and a NUL. */
void oa_traceparent_rewrite(const struct oa_span_context *received,
			    const struct oa_span_context *client, char out[OA_TRACEPARENT_LEN + 1]);

/* Bytes to insert before application byte `offset` (counted across the
 * application's iovec array); with `replaces` (= len), bytes that go out
 * instead of the application's next `replaces` bytes. */
struct oa_insert {
	size_t offset;
	const char *bytes;
	size_t len;
	size_t replaces;
	size_t sent; /* how many of them went out so far: oa_layout_consume */
};

#define OA_LAYOUT_MAX 64

/* What one send call offers the kernel: the application's bytes with the
 * inserts in between. Pieces [first, n) are still unsent. */
struct oa_layout {
	int first, n;
	struct iovec iov[OA_LAYOUT_MAX];
	int8_t owner[OA_LAYOUT_MAX]; /* the insert's index, or -1: application bytes */
};

/* Lays out app[0..n_app) with ins[0..n_ins) (sorted by offset, offsets at
 * most the application's total, replaced ranges within it and apart;
 * n_ins <= 64). Empty pieces are left out. False when more than
 * OA_LAYOUT_MAX pieces would be needed. */
bool oa_layout_build(struct oa_layout *l, const struct iovec *app, int n_app,
		     const struct oa_insert *ins, int n_ins);

/* The kernel took `sent` bytes from the front of the unsent pieces: drops and
 * trims pieces, adds to each insert's `sent`, returns the application bytes
 * among them (replacing bytes count as the ones they replace). */
size_t oa_layout_consume(struct oa_layout *l, size_t sent, struct oa_insert *ins);

struct oa_host_port {
	const char *name; /* inside the value split: not NUL-terminated */
	size_t name_len;
	uint16_t port; /* 0 when absent or not a number below 65536 */
};

/* Splits a Host header value of len bytes ("name", "name:port", "[v6]",
 * "[v6]:port") into the name, without brackets, and the port. False when no
 * name is left. */
bool oa_split_host_port(const char *host, size_t len, struct oa_host_port *out);

#endif
