/* http.server/client.request.duration for every exchange, sampled or not
 * (src/metrics.h): the attributes are taken raw from the exchange and the
 * socket; the exporter turns them into text. One exception: a client
 * request without a usable Host names its server by the peer's address,
 * formatted here, as its span does. */
#include <string.h>

#include "metrics.h"
#include "net.h"

void oa_http_metric(const struct oa_fd *f, const struct oa_http_exchange *ex, uint64_t end, int err,
		    const char *error_type)
{
	if (!oa_metrics_enabled())
		return;
	const struct oa_http_head *head = &ex->head;
	struct oa_http_metric_attrs attrs = {
	    .method = head->method,
	    .https = f->tls.session != NULL,
	    .status = ex->status,
	};
	bool server = f->role == OA_ROLE_SERVER;
	char peer[sizeof f->peer.un.sun_path + 2];
	if (!server) {
		if (head->scheme_len)
			attrs.https = strcmp(head->scheme, "https") == 0;
		attrs.error = err;
		if (error_type) {
			attrs.error_text = error_type;
			attrs.error_text_len = strlen(error_type);
		}
		/* as the CLIENT span names the server */
		struct oa_host_port host = {.port = 0};
		if (oa_split_host_port(head->host, head->host_len, &host)) {
			attrs.address = host.name;
			attrs.address_len = host.name_len;
		} else if (f->peer_len &&
			   oa_sockaddr_text(&f->peer.sa, f->peer_len, peer, sizeof peer)) {
			attrs.address = peer;
			attrs.address_len = strlen(peer);
		}
		attrs.port = host.port;
		if (!attrs.port)
			attrs.port = (head->flags & OA_HTTP_ABSOLUTE_FORM)
					 ? (attrs.https ? 443 : 80)
					 : oa_sockaddr_port(&f->peer.sa);
	}
	struct oa_metric_key key;
	oa_metric_key_http(
	    &key, server ? OA_METRIC_HTTP_SERVER_DURATION : OA_METRIC_HTTP_CLIENT_DURATION, &attrs);
	if (oa_metrics_record(&key, end - ex->start))
		oa_exporter_start_if_needed();
}
