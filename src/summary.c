#include "summary.h"

#include <stdint.h>

#include "log.h"
#include "relay.h"
#include "runtime.h"
#include "sink.h"

static char *append_text(char *p, char *end, const char *text)
{
	while (*text && p < end)
		*p++ = *text++;
	return p;
}

static char *append_count(char *p, char *end, uint64_t n)
{
	char digits[20];
	int len = 0;
	do
		digits[len++] = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	while (len && p < end)
		*p++ = digits[--len];
	return p;
}

/* Formatted by hand: it is printed from signal handlers and _exit. */
void oa_shutdown_summary(void)
{
	static const struct {
		const char *label;
		const uint64_t *counter;
	} parts[] = {
	    {"spans: exported ", &oa_rt.spans_exported},
	    {", sampled out ", &oa_rt.spans_sampled_out},
	    {", dropped: ring full ", &oa_rt.dropped[OA_DROP_RING_FULL]},
	    {", queue full ", &oa_rt.dropped[OA_DROP_QUEUE_FULL]},
	    {", export failed ", &oa_rt.dropped[OA_DROP_EXPORT_FAILED]},
	    {", rejected ", &oa_rt.dropped[OA_DROP_REJECTED]},
	    {", unsent at exit ", &oa_rt.dropped[OA_DROP_UNSENT_AT_EXIT]},
	    {", ended after exit ", &oa_rt.dropped[OA_DROP_ENDED_AFTER_EXIT]},
	    {", connection full ", &oa_rt.dropped[OA_DROP_CONNECTION_FULL]},
	};
	_Static_assert(sizeof parts / sizeof parts[0] == 2 + OA_DROP_COUNT,
		       "every reason for a drop is reported");
	char line[256];
	char *p = line, *end = line + sizeof line - 1;
	/* Atomic reads: threads still running go on counting. */
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		p = append_text(p, end, parts[i].label);
		p = append_count(p, end, __atomic_load_n(parts[i].counter, __ATOMIC_RELAXED));
	}
	*p = '\0';
	oa_log_text(OA_LOG_DEBUG, line);
	uint64_t relayed = __atomic_load_n(&oa_rt.spans_relayed, __ATOMIC_RELAXED);
	if (relayed) {
		p = append_text(line, end, "relay: ");
		p = append_count(p, end, relayed);
		p = append_text(p, end, " of the exported spans went through the relay");
		*p = '\0';
		oa_log_text(OA_LOG_DEBUG, line);
	}
	uint64_t commented = __atomic_load_n(&oa_rt.db_queries_commented, __ATOMIC_RELAXED);
	uint64_t uncommented = __atomic_load_n(&oa_rt.db_queries_uncommented, __ATOMIC_RELAXED);
	if (commented || uncommented) {
		p = append_text(line, end, "database queries: ");
		p = append_count(p, end, commented);
		p = append_text(p, end, " sent with their span's traceparent comment, ");
		p = append_count(p, end, uncommented);
		p = append_text(p, end, " without");
		*p = '\0';
		oa_log_text(OA_LOG_DEBUG, line);
	}
	uint64_t relayed_in = oa_relay_host_spans_in();
	if (relayed_in) {
		p = append_text(line, end, "relay host: ");
		p = append_count(p, end, relayed_in);
		p = append_text(p, end, " spans from other processes: exported ");
		uint64_t exported, failed, unsent;
		oa_sink_parcel_totals(&exported, &failed, &unsent);
		p = append_count(p, end, exported);
		p = append_text(p, end, ", failed ");
		p = append_count(p, end, failed);
		p = append_text(p, end, ", unsent at exit ");
		p = append_count(p, end, unsent);
		*p = '\0';
		oa_log_text(OA_LOG_DEBUG, line);
	}
}
