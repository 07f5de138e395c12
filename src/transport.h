/* OTLP/HTTP delivery: headers, gzip, retries with exponential backoff and
 * jitter honouring Retry-After, all within a caller-given deadline, over one
 * kept-alive connection. A plain http:// endpoint (no userinfo, no proxy in
 * the environment) is served by the built-in client (http_client.h); https,
 * userinfo and proxies by libcurl, which is not linked but opened (dlopen)
 * when first needed. Transports live on the exporter thread only. */
#ifndef OTLPAUTO_TRANSPORT_H
#define OTLPAUTO_TRANSPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum oa_send_result {
	OA_SEND_OK,	   /* 2xx; *rejected may still be > 0 (partial_success) */
	OA_SEND_REFUSED,   /* a non-retryable answer (400, 404, ...): dropped */
	OA_SEND_GAVE_UP,   /* retryable failures until the deadline: dropped */
	OA_SEND_TOO_LARGE, /* body over 64 MiB: never sent */
};

struct oa_transport;

/* The library opened, "libcurl.so.4"; tests name one that does not exist. */
extern const char *oa_transport_libcurl;
/* True: http:// endpoints use the built-in client; tests turn it off to
 * put libcurl through the same cases. */
extern bool oa_transport_builtin_http;

/* Whether sending to an endpoint of cfg's (traces, and metrics when they go
 * over OTLP) needs libcurl: https, userinfo or a proxy. */
bool oa_transport_needs_libcurl(const struct oa_config *cfg);

/* Opens and initialises libcurl once per process, from any thread (later
 * calls return the first answer); false, after one warning, when it cannot
 * be. */
bool oa_transport_load(void);
/* Called around fork (in that order of the atfork handlers): a fork waits
 * for a load in progress, so the child does not inherit it halfway. */
void oa_transport_atfork_prepare(void);
void oa_transport_atfork_parent(void);
void oa_transport_atfork_child(void);
/* At start-up: loads libcurl now if the process already has OpenSSL. Its
 * atexit shutdown (before our final flush) would forbid loading libcurl
 * then, and a program whose only spans end at exit sends only then. */
void oa_transport_load_early(void);
/* Whether the application's OpenSSL may shut down in an atexit handler of
 * its own, before our final flush: libcurl uses OpenSSL and was loaded
 * after start-up, when the application may have set OpenSSL up first. */
bool oa_transport_tls_ends_before_exit(void);

/* Copies what it needs from cfg (endpoint, headers, TLS files, timeout,
 * compression, protocol). NULL when libcurl cannot be loaded or set up. */
struct oa_transport *oa_transport_create(const struct oa_config *cfg);
void oa_transport_destroy(struct oa_transport *t);
/* In a forked child: forget the parent's handle without touching its
 * connection (the socket is shared with the parent) or freeing anything. */
void oa_transport_abandon(struct oa_transport *t);

/* The lock the caller holds while it works, which a fork waits for (see the
 * exporter): sends release it while they wait on the network or back off,
 * and hold it while libcurl runs. NULL (the default): none. */
void oa_transport_release_while_waiting(struct oa_transport *t, pthread_mutex_t *lock);

/* While flushing for exit or exec, a collector nobody listens on is not
 * retried (waiting would only delay the exit); overload answers (429, 503
 * with Retry-After) still are, within the deadline. */
void oa_transport_set_flushing(struct oa_transport *t, bool flushing);

/* POSTs body (already encoded per cfg->protocol; gzip is applied here when
 * configured). deadline_ns is CLOCK_MONOTONIC: no attempt or backoff runs
 * past it. *rejected receives partial_success.rejected_spans. Warnings are
 * logged once per kind of failure, never with header values. */
enum oa_send_result oa_transport_send(struct oa_transport *t, const uint8_t *body, size_t len,
				      uint64_t deadline_ns, uint64_t *rejected);

#endif
