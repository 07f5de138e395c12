#include "sink.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "batch.h"
#include "buf.h"
#include "clock.h"
#include "encode_console.h"
#include "encode_metrics.h"
#include "encode_pb.h"
#include "filesink.h"
#include "log.h"
#include "parcel.h"
#include "relay.h"
#include "resource.h"
#include "runtime.h"
#include "transport.h"
#if OA_FEATURE_JSON
#include "encode_json.h"
#endif

#define MAX_REQUEST_BYTES (64u << 20)
/* Parcels from other processes go out when this much waits (or on the
 * schedule, or for a flush); protobuf parcels are sent this many bytes per
 * request at most, concatenated (one message with their ResourceSpans). */
#define PARCEL_SEND_BYTES  (1u << 20)
#define PARCEL_REQUEST_MAX (8u << 20)

static const struct oa_sink_waits *waits;

static struct {
	struct oa_transport *transport;
	struct oa_buf out;
	bool flushing; /* exporting for a flush request (exit, exec, signal) */
	bool sending_parcels;
	/* During an exec: requests go into the hand-over file for the new
	 * program when there is one, and to the relay as this frame type. */
	int handoff_fd;
	uint64_t handoff_tentative_from; /* offset where the tentative part starts */
	uint8_t relay_frame;		 /* enum oa_relay_frame */
	bool tentative_escaped;		 /* a tentative request went out for good */
} sk = {.handoff_fd = -1, .relay_frame = OA_RELAY_PARCEL};

/* Spans of other processes (parcels) are counted apart from our own. */
static struct {
	uint64_t exported, failed;
} parcel_counts;

void oa_sink_init(const struct oa_sink_waits *w)
{
	waits = w;
}

static struct oa_transport *create_transport(void)
{
	struct oa_transport *t = oa_transport_create(&oa_rt.cfg);
	if (t)
		oa_transport_release_while_waiting(t, waits->working);
	return t;
}

/* libcurl loads then, while the program runs, not at the first send: that
 * may be the exit flush, after the application's OpenSSL was shut down (see
 * oa_transport_load_early). */
void oa_sink_prepare_transport(void)
{
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP && !oa_relay_connected())
		sk.transport = create_transport();
}

void oa_sink_prepare_confinement(void)
{
	if (oa_rt.cfg.exporter == OA_EXPORTER_FILE)
		oa_filesink_open();
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP && !sk.transport)
		sk.transport = create_transport();
}

void oa_sink_set_flushing(bool flushing)
{
	sk.flushing = flushing;
}

static bool write_fd(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = syscall(SYS_write, fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
}

static bool write_all(int fd, const char *p, size_t len)
{
	waits->blocking(); /* a full pipe or a slow disk may block */
	bool ok = write_fd(fd, p, len);
	waits->resumed();
	return ok;
}

/* Encodes one view per the protocol into sk.out; false when too large or
 * out of memory. */
static bool encode(const struct oa_export_batch *view, bool json)
{
	sk.out.len = 0;
#if OA_FEATURE_JSON
	if (json)
		return oa_json_batch_encode(view, &sk.out) && sk.out.len <= MAX_REQUEST_BYTES;
#else
	(void)json;
#endif
	size_t size = oa_pb_batch_size(view);
	if (size > MAX_REQUEST_BYTES || !oa_buf_reserve(&sk.out, size))
		return false;
	sk.out.len = oa_pb_batch_encode(view, (uint8_t *)sk.out.data, size);
	return true;
}

static void count_exported(size_t n, uint64_t rejected)
{
	if (rejected > n)
		rejected = n;
	if (sk.sending_parcels) {
		parcel_counts.exported += n - rejected;
		parcel_counts.failed += rejected;
		return;
	}
	__atomic_fetch_add(&oa_rt.spans_exported, n - rejected, __ATOMIC_RELAXED);
	__atomic_fetch_add(&oa_rt.dropped[OA_DROP_REJECTED], rejected, __ATOMIC_RELAXED);
}

static void count_failed(size_t n)
{
	if (sk.sending_parcels) {
		parcel_counts.failed += n;
		return;
	}
	__atomic_fetch_add(&oa_rt.dropped[OA_DROP_EXPORT_FAILED], n, __ATOMIC_RELAXED);
}

void oa_sink_discarded(uint64_t spans)
{
	count_exported(spans, 0);
}

void oa_sink_parcel_totals(uint64_t *exported, uint64_t *failed, uint64_t *unsent_at_exit)
{
	*exported = parcel_counts.exported;
	*failed = parcel_counts.failed;
	uint64_t counted = *exported + *failed, queued = oa_parcels_spans_pushed();
	*unsent_at_exit = queued > counted ? queued - counted : 0;
}

/* Writes sk.out (count spans, one OTLP JSON line per request for the file)
 * to the file, or posts it to the collector; counts the outcome but for a
 * request the collector found too large, which the caller may split. */
static enum oa_send_result send_encoded(size_t count, uint64_t deadline_ns)
{
	const struct oa_config *cfg = &oa_rt.cfg;
	if (cfg->exporter == OA_EXPORTER_FILE) {
		if (!oa_filesink_write(sk.out.data, sk.out.len)) {
			count_failed(count);
			return OA_SEND_GAVE_UP;
		}
		count_exported(count, 0);
		return OA_SEND_OK;
	}
	if (!sk.transport)
		sk.transport = create_transport();
	if (!sk.transport) {
		count_failed(count);
		return OA_SEND_GAVE_UP;
	}
	oa_transport_set_flushing(sk.transport, sk.flushing);
	uint64_t rejected = 0;
	waits->blocking();
	enum oa_send_result r = oa_transport_send(sk.transport, (const uint8_t *)sk.out.data,
						  sk.out.len, deadline_ns, &rejected);
	waits->resumed();
	if (r == OA_SEND_OK)
		count_exported(count, rejected);
	else if (r != OA_SEND_TOO_LARGE)
		count_failed(count);
	return r;
}

static uint8_t sink_format(void)
{
	const struct oa_config *cfg = &oa_rt.cfg;
	bool json = cfg->exporter == OA_EXPORTER_FILE || cfg->protocol == OA_PROTOCOL_JSON;
	return json ? OA_PARCEL_JSON : OA_PARCEL_PROTOBUF;
}

/* A hand-over record: u32 length, u32 spans, u8 format, u8 kind, 2 zero
 * bytes, then the request. */
#define HANDOFF_HEADER 12
enum handoff_kind { HANDOFF_TRACES, HANDOFF_METRICS };

static bool write_handoff(const void *data, uint32_t len, uint32_t spans, uint8_t format,
			  enum handoff_kind kind)
{
	uint8_t header[HANDOFF_HEADER] = {0};
	memcpy(header, &len, 4);
	memcpy(header + 4, &spans, 4);
	header[8] = format;
	header[9] = (uint8_t)kind;
	return write_all(sk.handoff_fd, (const char *)header, sizeof header) &&
	       write_all(sk.handoff_fd, data, len);
}

/* Passes an encoded request on to the next program (during an exec) or to
 * the relay; false when neither takes it and this process sends it. */
static bool pass_on(const void *data, uint32_t len, uint32_t spans, uint8_t format,
		    uint64_t deadline_ns)
{
	if (sk.handoff_fd >= 0) {
		if (write_handoff(data, len, spans, format, HANDOFF_TRACES))
			count_exported(spans, 0);
		else
			count_failed(spans);
		return true;
	}
	waits->blocking(); /* a relay slow to read may make this wait */
	bool sent = oa_relay_connected() &&
		    oa_relay_send(sk.relay_frame, data, len, spans, format, deadline_ns);
	waits->resumed();
	if (!sent) {
		sk.tentative_escaped |= sk.relay_frame == OA_RELAY_TENTATIVE;
		return false;
	}
	count_exported(spans, 0);
	if (!sk.sending_parcels)
		__atomic_fetch_add(&oa_rt.spans_relayed, spans, __ATOMIC_RELAXED);
	return true;
}

/* Sends spans [first, first+count) of the batch, halving a request that
 * would exceed 64 MiB. */
static void send_range(struct oa_batch *batch, const struct oa_resource *resource, size_t first,
		       size_t count, uint64_t deadline_ns)
{
	const struct oa_config *cfg = &oa_rt.cfg;
	uint8_t format = sink_format();
	const struct oa_export_batch *view =
	    oa_batch_view_range(batch, resource->attrs, resource->n_attrs, first, count);
	if (cfg->exporter == OA_EXPORTER_CONSOLE) {
		sk.out.len = 0;
		if (oa_console_batch_encode(view, &sk.out) && write_all(2, sk.out.data, sk.out.len))
			count_exported(count, 0);
		else
			count_failed(count);
		return;
	}
	bool encoded = encode(view, format == OA_PARCEL_JSON);
	if (encoded &&
	    pass_on(sk.out.data, (uint32_t)sk.out.len, (uint32_t)count, format, deadline_ns))
		return;
	if (encoded && cfg->exporter == OA_EXPORTER_FILE)
		encoded = oa_buf_append(&sk.out, "\n", 1);
	if (encoded && send_encoded(count, deadline_ns) != OA_SEND_TOO_LARGE)
		return;
	if (count > 1) {
		send_range(batch, resource, first, count / 2, deadline_ns);
		send_range(batch, resource, first + count / 2, count - count / 2, deadline_ns);
	} else {
		count_failed(count);
	}
}

void oa_sink_send_batch(struct oa_batch *batch, const struct oa_resource *resource,
			uint64_t deadline_ns)
{
	size_t n = oa_batch_count(batch);
	if (n)
		send_range(batch, resource, 0, n, deadline_ns);
}

/* Sends one request made of parcels [p, stop): relayed on, written to the
 * file, or posted (protobuf parcels concatenated: one message). */
static void send_parcel_run(struct oa_parcel *p, struct oa_parcel *stop, uint64_t deadline_ns)
{
	size_t spans = 0;
	for (struct oa_parcel *q = p; q != stop; q = q->next)
		spans += q->spans;
	if (p->format != sink_format()) {
		count_failed(spans);
		return;
	}
	if (sk.handoff_fd >= 0 || oa_relay_connected()) {
		while (p != stop && pass_on(p->data, p->len, p->spans, p->format, deadline_ns))
			p = p->next;
		if (p != stop)
			send_parcel_run(p, stop, deadline_ns);
		return;
	}
	sk.out.len = 0;
	for (struct oa_parcel *q = p; q != stop; q = q->next)
		if (!oa_buf_append(&sk.out, (const char *)q->data, q->len) ||
		    (oa_rt.cfg.exporter == OA_EXPORTER_FILE && !oa_buf_append(&sk.out, "\n", 1))) {
			count_failed(spans);
			return;
		}
	if (send_encoded(spans, deadline_ns) == OA_SEND_TOO_LARGE)
		count_failed(spans);
}

bool oa_sink_parcels_due(void)
{
	return oa_parcels_bytes() >= PARCEL_SEND_BYTES;
}

void oa_sink_send_parcels(bool everything, uint64_t deadline_ns)
{
	if (!everything && !oa_sink_parcels_due())
		return;
	struct oa_parcel *p = oa_parcels_take();
	while (p) {
		/* protobuf requests concatenate; JSON ones go one by one (a file
		 * takes any number of lines at once) */
		struct oa_parcel *stop = p->next;
		size_t bytes = p->len;
		bool concatenates =
		    p->format == OA_PARCEL_PROTOBUF || oa_rt.cfg.exporter == OA_EXPORTER_FILE;
		while (concatenates && stop && stop->format == p->format &&
		       bytes + stop->len <= PARCEL_REQUEST_MAX) {
			bytes += stop->len;
			stop = stop->next;
		}
		sk.sending_parcels = true;
		send_parcel_run(p, stop, deadline_ns);
		sk.sending_parcels = false;
		while (p != stop) {
			struct oa_parcel *next = p->next;
			oa_parcel_free(p);
			p = next;
		}
	}
}

void oa_sink_exec_begin(int handoff_fd)
{
	sk.handoff_fd = handoff_fd;
	sk.relay_frame = OA_RELAY_PARCEL;
}

void oa_sink_exec_tentative(void)
{
	if (sk.handoff_fd >= 0)
		sk.handoff_tentative_from = (uint64_t)lseek(sk.handoff_fd, 0, SEEK_CUR);
	sk.relay_frame = OA_RELAY_TENTATIVE;
	sk.tentative_escaped = false;
}

bool oa_sink_exec_all_held(void)
{
	return !sk.tentative_escaped;
}

bool oa_sink_exec_hands_over(void)
{
	return sk.handoff_fd >= 0;
}

/* During an exec that hands requests over in a file: a metrics request
 * is written there (true). */
static bool hand_over_metrics(const void *data, uint32_t len, uint8_t format)
{
	if (sk.handoff_fd < 0)
		return false;
	if (!write_handoff(data, len, 0, format, HANDOFF_METRICS))
		oa_debug("a metrics request was not handed over to the next program");
	return true;
}

/* Queues the hand-over records of fd as parcels: the spans' before offset
 * `end`, the metrics' wherever they are (they are not tentative); returns
 * the spans' bytes. */
static size_t queue_handoff(int fd, uint64_t end)
{
	size_t bytes = 0;
	for (uint64_t at = 0;;) {
		uint8_t header[HANDOFF_HEADER];
		if ((ssize_t)syscall(SYS_pread64, fd, header, sizeof header, (off_t)at) !=
		    sizeof header)
			break;
		uint32_t len, spans;
		memcpy(&len, header, 4);
		memcpy(&spans, header + 4, 4);
		bool metrics = header[9] == HANDOFF_METRICS;
		if (!metrics && at >= end) {
			at += HANDOFF_HEADER + len;
			continue;
		}
		struct oa_parcel *p = oa_parcel_new(len, spans, header[8]);
		if (!p || (ssize_t)syscall(SYS_pread64, fd, p->data, (size_t)len,
					   (off_t)(at + HANDOFF_HEADER)) != len) {
			oa_parcel_free(p);
			break;
		}
		if (metrics) {
			oa_metric_parcels_push(p);
		} else {
			oa_parcels_push(p);
			bytes += len;
		}
		at += HANDOFF_HEADER + len;
	}
	return bytes;
}

void oa_sink_exec_failed(void)
{
	/* Parcels written to the hand-over file before its tentative part are
	 * ours to send again. */
	if (sk.handoff_fd >= 0) {
		queue_handoff(sk.handoff_fd, sk.handoff_tentative_from);
	} else if (sk.relay_frame == OA_RELAY_TENTATIVE && oa_relay_connected()) {
		oa_relay_send(OA_RELAY_CANCEL, NULL, 0, 0, 0, oa_mono_ns() + 100000000u);
	}
	sk.handoff_fd = -1;
	sk.handoff_tentative_from = 0;
	sk.relay_frame = OA_RELAY_PARCEL;
}

size_t oa_sink_adopt_handoff(int fd)
{
	size_t bytes = queue_handoff(fd, UINT64_MAX);
	syscall(SYS_close, fd);
	return bytes;
}

/* ---- metrics: one request per round, to the metrics endpoint (its own
 * transport and settings), stderr, the otlp/file sink or the relay host */

static struct {
	bool set_up;
	struct oa_config cfg; /* the traces' settings with the metrics endpoint */
	struct oa_transport *transport;
	struct oa_buf out;
	struct oa_buf relayed; /* a relayed JSON line with its newline */
} mk;

static void metrics_set_up(void)
{
	mk.set_up = true;
	/* A shallow copy with the metrics' settings: the transport copies what
	 * it keeps. */
	const struct oa_otlp_settings *m = &oa_rt.cfg.metrics_otlp;
	mk.cfg = oa_rt.cfg;
	mk.cfg.endpoint = oa_rt.cfg.metrics_endpoint;
	mk.cfg.headers = m->headers;
	mk.cfg.otlp_timeout_ms = m->timeout_ms;
	mk.cfg.gzip = m->gzip;
	mk.cfg.protocol = m->protocol;
	mk.cfg.certificate = m->certificate;
	mk.cfg.client_key = m->client_key;
	mk.cfg.client_certificate = m->client_certificate;
}

/* A relay client hands its request to the relay host (the process that
 * started it, or otlpauto run), which sends it with its own at its next
 * round: a short process neither loads libcurl nor waits for the collector
 * at its exit. */
static bool metrics_relayed(enum oa_parcel_format format, uint64_t deadline_ns)
{
	return oa_relay_connected() && oa_relay_send(OA_RELAY_METRICS, mk.out.data,
						     (uint32_t)mk.out.len, 0, format, deadline_ns);
}

static void metrics_post(const char *data, size_t len, size_t n_points, bool flush,
			 uint64_t deadline_ns)
{
	if (!mk.transport) {
		mk.transport = oa_transport_create(&mk.cfg);
		if (!mk.transport)
			return;
		oa_transport_release_while_waiting(mk.transport, waits->working);
	}
	oa_transport_set_flushing(mk.transport, flush);
	uint64_t rejected = 0;
	enum oa_send_result r =
	    oa_transport_send(mk.transport, (const uint8_t *)data, len, deadline_ns, &rejected);
	if (r != OA_SEND_OK || rejected)
		oa_debug("%zu metric points not delivered (%s)", r != OA_SEND_OK ? n_points : 0,
			 r == OA_SEND_OK ? "partly rejected" : "send failed");
}

/* What relay clients sent, with this process's own request (mk.out, may be
 * empty): protobuf requests concatenated into one (their resource_metrics
 * add up), JSON ones one by one, lines of the file each. */
static void metrics_send_with_relayed(bool flush, uint64_t deadline_ns)
{
	struct oa_parcel *all = oa_metric_parcels_take();
	enum oa_exporter_kind exporter = oa_rt.cfg.metrics_exporter;
	bool json = exporter == OA_EXPORTER_FILE || mk.cfg.protocol == OA_PROTOCOL_JSON;
	for (struct oa_parcel *p = all; p; p = p->next) {
		if ((p->format == OA_PARCEL_JSON) != json)
			continue;
#if OA_FEATURE_JSON
		if (exporter == OA_EXPORTER_FILE) {
			if (oa_buf_append(&mk.relayed, (const char *)p->data, p->len) &&
			    oa_buf_append(&mk.relayed, "\n", 1))
				oa_filesink_write(mk.relayed.data, mk.relayed.len);
			mk.relayed.len = 0;
			continue;
		}
#endif
		if (json)
			metrics_post((const char *)p->data, p->len, 0, flush, deadline_ns);
		else
			oa_buf_append(&mk.out, (const char *)p->data, p->len);
	}
	while (all) {
		struct oa_parcel *next = all->next;
		oa_parcel_free(all);
		all = next;
	}
}

void oa_sink_send_metrics(const struct oa_metrics_export *m, bool flush, uint64_t deadline_ns)
{
	if (!mk.set_up)
		metrics_set_up();
	mk.out.len = 0;
	enum oa_exporter_kind exporter = oa_rt.cfg.metrics_exporter;
	bool any = m->n_points || m->n_span_counts;
	if (exporter == OA_EXPORTER_CONSOLE) {
		if (any && oa_metrics_console_encode(m, &mk.out))
			write_fd(STDERR_FILENO, mk.out.data, mk.out.len);
		return;
	}
	bool encoded = any;
#if OA_FEATURE_JSON
	bool json = exporter == OA_EXPORTER_FILE || mk.cfg.protocol == OA_PROTOCOL_JSON;
	if (encoded)
		encoded =
		    json ? oa_json_metrics_encode(m, &mk.out) : oa_metrics_pb_encode(m, &mk.out);
#else
	bool json = false;
	if (encoded)
		encoded = oa_metrics_pb_encode(m, &mk.out);
#endif
	uint8_t format = json ? OA_PARCEL_JSON : OA_PARCEL_PROTOBUF;
	if (encoded && (metrics_relayed(format, deadline_ns) ||
			hand_over_metrics(mk.out.data, (uint32_t)mk.out.len, format)))
		return;
#if OA_FEATURE_JSON
	if (exporter == OA_EXPORTER_FILE) {
		/* A sink that fails has said so once (filesink.c). */
		if (encoded && oa_buf_append(&mk.out, "\n", 1))
			oa_filesink_write(mk.out.data, mk.out.len);
		mk.out.len = 0;
		metrics_send_with_relayed(flush, deadline_ns);
		return;
	}
#endif
	if (!encoded)
		mk.out.len = 0;
	if (json && encoded) {
		metrics_post(mk.out.data, mk.out.len, m->n_points, flush, deadline_ns);
		mk.out.len = 0;
	}
	metrics_send_with_relayed(flush, deadline_ns);
	if (mk.out.len)
		metrics_post(mk.out.data, mk.out.len, m->n_points, flush, deadline_ns);
}

/* ---- a fork */

void oa_sink_atfork_child(void)
{
	if (sk.transport)
		oa_transport_abandon(sk.transport);
	if (mk.transport)
		oa_transport_abandon(mk.transport);
	memset(&mk, 0, sizeof mk);
	memset(&sk, 0, sizeof sk);
	sk.handoff_fd = -1;
	sk.relay_frame = OA_RELAY_PARCEL;
	memset(&parcel_counts, 0, sizeof parcel_counts);
	oa_filesink_atfork_child();
}
