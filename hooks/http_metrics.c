/* http.server/client.request.duration for every exchange, sampled or not
 * (src/metrics.h): the attributes are taken raw from the exchange and the
 * socket; the exporter turns them into text. */
#include <string.h>

#include "metrics.h"
#include "net.h"

void oa_http_metric(const struct oa_fd *f, const struct oa_http_exchange *ex, uint64_t end, int err)
{
	if (!oa_metrics_enabled())
		return;
	const struct oa_http_head *head = &ex->head;
	struct oa_metric_key key;
	bool server = f->role == OA_ROLE_SERVER;
	memset(&key, 0, 16); /* the fields, and the address's first bytes */
	key.method = head->method;
	key.https = f->u.http.tls.session != NULL;
	key.status = ex->status;
	if (server) {
		key.metric = OA_METRIC_HTTP_SERVER_DURATION;
	} else {
		key.metric = OA_METRIC_HTTP_CLIENT_DURATION;
		if (head->scheme_len)
			key.https = strcmp(head->scheme, "https") == 0;
		key.error = err;
		/* as the CLIENT span names the server */
		struct oa_host_port host = {.port = 0};
		if (oa_split_host_port(head->host, head->host_len, &host)) {
			oa_metric_key_set_address(&key, host.name, host.name_len);
		} else if (f->peer_len) {
			char peer[sizeof f->peer.un.sun_path + 2];
			if (oa_sockaddr_text(&f->peer.sa, f->peer_len, peer, sizeof peer))
				oa_metric_key_set_address(&key, peer, strlen(peer));
		}
		key.port = host.port;
		if (!key.port)
			key.port = (head->flags & OA_HTTP_ABSOLUTE_FORM)
				       ? (key.https ? 443 : 80)
				       : oa_sockaddr_port(&f->peer.sa);
	}
	if (oa_metrics_record(&key, end - ex->start))
		oa_exporter_start_if_needed();
}
