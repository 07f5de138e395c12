/* db.client.operation.duration for every client operation of the database
 * families (redis.c, pg.c, mysql.c), sampled or not (src/metrics.h): the
 * attributes are taken raw from the connection state and the socket (the
 * peer's address as its bytes); the exporter turns them into text. */
#include "metrics.h"
#include "net.h"

void oa_db_metric(const struct oa_fd *f, struct oa_db_metric_attrs *attrs, uint64_t start,
		  uint64_t end)
{
	if (!oa_metrics_enabled())
		return;
	/* as the CLIENT span names the server: an IP peer only */
	if (f->peer_len && f->peer.sa.sa_family == AF_INET) {
		attrs->ip_version = 4;
		attrs->address = &f->peer.in.sin_addr;
		attrs->port = ntohs(f->peer.in.sin_port);
	} else if (f->peer_len && f->peer.sa.sa_family == AF_INET6) {
		attrs->ip_version = 6;
		attrs->address = &f->peer.in6.sin6_addr;
		attrs->port = ntohs(f->peer.in6.sin6_port);
	}
	struct oa_metric_key key;
	oa_metric_key_db(&key, attrs);
	if (oa_metrics_record(&key, end - start))
		oa_exporter_start_if_needed();
}
