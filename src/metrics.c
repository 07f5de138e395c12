/* Series table and per-thread cells (see metrics.h).
 *
 * The table is open addressing over slots claimed with one CAS: a slot's tag
 * is 0 (free), CLAIMED (its key being written) or the key's hash (published,
 * release). A lookup that passes a CLAIMED slot goes on probing and may claim
 * another slot for the same key: the exporter merges such twins (the one
 * first in the probe chain is the series). Ids are dense, handed out in
 * claim order, so a thread's cells and the exporter's sums cover only the
 * ids in use. */
#include "metrics.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mem.h"

const struct oa_metric_info oa_metric_info[OA_METRIC_COUNT] = {
    [OA_METRIC_HTTP_SERVER_DURATION] =
	{
	    .name = "http.server.request.duration",
	    .description = "Duration of HTTP server requests.",
	    .scope = "otlpauto.http",
	    .n_bounds = 14,
	    .bounds_s = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10},
	},
    [OA_METRIC_HTTP_CLIENT_DURATION] =
	{
	    .name = "http.client.request.duration",
	    .description = "Duration of HTTP client requests.",
	    .scope = "otlpauto.http",
	    .n_bounds = 14,
	    .bounds_s = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10},
	},
    [OA_METRIC_DB_CLIENT_DURATION] =
	{
	    .name = "db.client.operation.duration",
	    .description = "Duration of database client operations.",
	    .scope = "otlpauto.db",
	    .n_bounds = 9,
	    .bounds_s = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10},
	},
};

const char *const oa_db_system_names[OA_DB_SYSTEMS] = {
    [OA_DB_REDIS] = "redis",
    [OA_DB_POSTGRESQL] = "postgresql",
    [OA_DB_MYSQL] = "mysql",
    [OA_DB_MARIADB] = "mariadb",
};

uint64_t oa_metric_bound_ticks[OA_METRIC_COUNT][OA_METRIC_BOUNDS_MAX];

#define CLAIMED 1u
struct slot {
	uint64_t tag;
	uint32_t id;
	uint32_t unused;
	struct oa_metric_key key;
};

/* A thread's cells: this header, then one cell per id. */
struct region {
	struct region *next;
	uint32_t tid;
	size_t bytes;
};
#define REGION_HEADER 64

static struct {
	struct slot *slots;
	uint32_t mask;
	uint32_t max_series; /* per metric */
	uint32_t ids_max;
	uint32_t next_id;
	uint32_t series[OA_METRIC_COUNT]; /* attribute sets taken, per metric */
	uint32_t *slot_of_id;		  /* slot index + 1, once published */
	struct region *regions;		  /* pushed by threads, unlinked by the exporter */
	/* The exporter's: sums of threads gone, and each id's series. */
	struct oa_metric_cell *retired;
	uint32_t *canonical; /* id + 1 once known */
	uint64_t start_unix_ns;
} tab;

static uint64_t unix_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The calling thread's cells; NO_CELLS when they could not be mapped. */
static __thread struct region *thread_cells __attribute__((tls_model("initial-exec")));
#define NO_CELLS ((struct region *)1)

static struct oa_metric_cell *region_cells(struct region *r)
{
	return (struct oa_metric_cell *)((char *)r + REGION_HEADER);
}

bool oa_metrics_init(uint32_t max_series)
{
	uint64_t ids = (uint64_t)OA_METRIC_COUNT * ((uint64_t)max_series + 1);
	if (!max_series || ids > UINT32_MAX / 4)
		return false;
	uint64_t capacity = 16;
	while (capacity < 2 * ids)
		capacity *= 2;
	size_t bytes = capacity * sizeof(struct slot) + ids * sizeof(uint32_t);
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return false;
	tab.slots = mem;
	tab.slot_of_id = (uint32_t *)((char *)mem + capacity * sizeof(struct slot));
	tab.mask = (uint32_t)capacity - 1;
	tab.max_series = max_series;
	tab.ids_max = (uint32_t)ids;
	tab.next_id = OA_METRIC_COUNT;
	tab.start_unix_ns = unix_now_ns();
	for (int m = 0; m < OA_METRIC_COUNT; m++)
		for (int i = 0; i < oa_metric_info[m].n_bounds; i++)
			oa_metric_bound_ticks[m][i] = oa_clock_ns_to_ticks(
			    (uint64_t)(oa_metric_info[m].bounds_s[i] * 1e9 + 0.5));
	return true;
}

bool oa_metrics_enabled(void)
{
	return tab.slots != NULL;
}

/* Words of the text (zero-padded). */
static inline size_t text_words(const struct oa_metric_key *k)
{
	return (oa_metric_key_text_len(k) + 7) / 8;
}

static inline uint64_t text_word(const struct oa_metric_key *k, size_t i)
{
	uint64_t w;
	memcpy(&w, k->text + 8 * i, 8);
	return w;
}

static uint64_t key_hash(const struct oa_metric_key *k)
{
	uint64_t h = (k->head[0] * 0x9e3779b97f4a7c15u) ^ (k->head[1] * 0xff51afd7ed558ccdu);
	for (size_t i = 0, n = text_words(k); i < n; i++)
		h = (h ^ text_word(k, i)) * 0xc4ceb9fe1a85ec53u;
	return h ^ h >> 29;
}

static bool key_equal(const struct oa_metric_key *a, const struct oa_metric_key *b)
{
	if ((a->head[0] ^ b->head[0]) | (a->head[1] ^ b->head[1]))
		return false;
	uint64_t diff = 0;
	for (size_t i = 0, n = text_words(a); i < n; i++)
		diff |= text_word(a, i) ^ text_word(b, i);
	return diff == 0;
}

/* One more attribute set for metric, unless it has max_series. */
static bool take_series(uint8_t metric)
{
	uint32_t *n = &tab.series[metric];
	if (__atomic_load_n(n, __ATOMIC_RELAXED) >= tab.max_series)
		return false;
	if (__atomic_fetch_add(n, 1, __ATOMIC_RELAXED) < tab.max_series)
		return true;
	__atomic_fetch_sub(n, 1, __ATOMIC_RELAXED);
	return false;
}

static uint32_t series_id(const struct oa_metric_key *key, uint8_t metric)
{
	uint64_t tag = key_hash(key) | 2;
	uint32_t i = (uint32_t)(tag >> 40) & tab.mask;
	for (uint32_t probes = 0; probes <= tab.mask; probes++, i = (i + 1) & tab.mask) {
		struct slot *s = &tab.slots[i];
		uint64_t seen = __atomic_load_n(&s->tag, __ATOMIC_ACQUIRE);
		if (seen == tag && key_equal(&s->key, key))
			return s->id;
		if (seen != 0)
			continue;
		if (!take_series(metric))
			return metric;
		if (!__atomic_compare_exchange_n(&s->tag, &seen, CLAIMED, false, __ATOMIC_ACQUIRE,
						 __ATOMIC_ACQUIRE)) {
			/* another thread took it: look at it again */
			__atomic_fetch_sub(&tab.series[metric], 1, __ATOMIC_RELAXED);
			i = (i - 1) & tab.mask;
			continue;
		}
		memcpy(&s->key, key, sizeof key->head + text_words(key) * 8);
		s->id = __atomic_fetch_add(&tab.next_id, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&s->tag, tag, __ATOMIC_RELEASE);
		__atomic_store_n(&tab.slot_of_id[s->id], i + 1, __ATOMIC_RELEASE);
		return s->id;
	}
	return metric;
}

static struct region *region_create(void)
{
	size_t bytes = REGION_HEADER + (size_t)tab.ids_max * sizeof(struct oa_metric_cell);
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		thread_cells = NO_CELLS; /* not tried again on every record */
		return NULL;
	}
	struct region *r = mem;
	r->tid = (uint32_t)syscall(SYS_gettid);
	r->bytes = bytes;
	r->next = __atomic_load_n(&tab.regions, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&tab.regions, &r->next, r, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
	thread_cells = r;
	return r;
}

static unsigned bucket_of(uint8_t metric, uint64_t ticks)
{
	const uint64_t *bounds = oa_metric_bound_ticks[metric];
	unsigned b = 0, n = oa_metric_info[metric].n_bounds;
	while (b < n && ticks > bounds[b])
		b++;
	return b;
}

/* The only writer of the cell: a load and a store, atomic only so that the
 * exporter's concurrent reads are defined. */
static inline void cell_add(uint64_t *word, uint64_t n)
{
	__atomic_store_n(word, __atomic_load_n(word, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

bool oa_metrics_record(const struct oa_metric_key *key, uint64_t ticks)
{
	if (!tab.slots)
		return false;
	struct region *r = thread_cells;
	bool created = false;
	if (__builtin_expect((uintptr_t)r <= 1, 0)) {
		if (r || !(r = region_create()))
			return false;
		created = true;
	}
	uint8_t metric = oa_metric_key_metric(key);
	struct oa_metric_cell *c = &region_cells(r)[series_id(key, metric)];
	cell_add(&c->buckets[bucket_of(metric, ticks)], 1);
	cell_add(&c->sum_ticks, ticks);
	return created;
}

/* ---- exporter side */

uint32_t oa_metrics_ids(void)
{
	if (!tab.slots)
		return 0;
	uint32_t n = __atomic_load_n(&tab.next_id, __ATOMIC_RELAXED);
	/* The overflow ids are in use only once the series ran out. */
	if (n == OA_METRIC_COUNT)
		return 0;
	return n < tab.ids_max ? n : tab.ids_max;
}

uint64_t oa_metrics_start_unix_ns(void)
{
	return tab.start_unix_ns;
}

static const struct slot *published(uint32_t id)
{
	uint32_t at = __atomic_load_n(&tab.slot_of_id[id], __ATOMIC_ACQUIRE);
	return at ? &tab.slots[at - 1] : NULL;
}

const struct oa_metric_key *oa_metrics_key(uint32_t id, uint8_t *metric)
{
	if (id < OA_METRIC_COUNT) {
		*metric = (uint8_t)id;
		return NULL;
	}
	const struct slot *s = published(id);
	*metric = s ? oa_metric_key_metric(&s->key) : OA_METRIC_COUNT;
	return s ? &s->key : NULL;
}

/* The id of id's series: the first published slot with its key in its probe
 * chain. Known for good once no slot before it in the chain is half written. */
static uint32_t canonical_id(uint32_t id)
{
	if (id < OA_METRIC_COUNT)
		return id;
	if (tab.canonical && tab.canonical[id])
		return tab.canonical[id] - 1;
	const struct slot *mine = published(id);
	if (!mine)
		return id;
	uint32_t i = (uint32_t)(mine->tag >> 40) & tab.mask, found = id;
	bool settled = true;
	for (;; i = (i + 1) & tab.mask) {
		const struct slot *s = &tab.slots[i];
		uint64_t tag = __atomic_load_n(&s->tag, __ATOMIC_ACQUIRE);
		if (s == mine)
			break;
		if (tag == CLAIMED)
			settled = false;
		else if (tag == mine->tag && key_equal(&s->key, &mine->key)) {
			found = s->id;
			break;
		}
	}
	if (settled && tab.canonical)
		tab.canonical[id] = found + 1;
	return found;
}

static void cell_add_to(struct oa_metric_cell *to, const struct oa_metric_cell *from)
{
	for (int b = 0; b < OA_METRIC_BUCKETS; b++)
		to->buckets[b] += __atomic_load_n(&from->buckets[b], __ATOMIC_RELAXED);
	to->sum_ticks += __atomic_load_n(&from->sum_ticks, __ATOMIC_RELAXED);
}

static void cells_add(struct oa_metric_cell *to, const struct oa_metric_cell *from, uint32_t n)
{
	for (uint32_t id = 0; id < n; id++)
		cell_add_to(&to[id], &from[id]);
}

static bool thread_gone(uint32_t tid)
{
	return syscall(SYS_tgkill, getpid(), (pid_t)tid, 0) != 0 && errno == ESRCH;
}

static void unlink_region(struct region *prev, struct region *r)
{
	if (!prev) {
		struct region *expected = r;
		if (__atomic_compare_exchange_n(&tab.regions, &expected, r->next, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return;
		/* threads pushed since: r is further down now */
		for (prev = expected; prev->next != r; prev = prev->next)
			;
	}
	prev->next = r->next;
}

void oa_metrics_collect(struct oa_metric_cell *totals, uint32_t n)
{
	memset(totals, 0, (size_t)n * sizeof *totals);
	if (!tab.slots)
		return;
	if (!tab.retired)
		tab.retired = oa_calloc(tab.ids_max, sizeof *tab.retired);
	if (!tab.canonical)
		tab.canonical = oa_calloc(tab.ids_max, sizeof *tab.canonical);
	int saved = errno;
	struct region *prev = NULL;
	struct region *r = __atomic_load_n(&tab.regions, __ATOMIC_ACQUIRE);
	while (r) {
		struct region *next = r->next;
		if (tab.retired && thread_gone(r->tid)) {
			cells_add(tab.retired, region_cells(r), oa_metrics_ids());
			unlink_region(prev, r);
			munmap(r, r->bytes);
		} else {
			cells_add(totals, region_cells(r), n);
			prev = r;
		}
		r = next;
	}
	errno = saved;
	if (tab.retired)
		cells_add(totals, tab.retired, n);
	for (uint32_t id = OA_METRIC_COUNT; id < n; id++) {
		uint32_t c = canonical_id(id);
		if (c == id)
			continue;
		cell_add_to(&totals[c], &totals[id]);
		memset(&totals[id], 0, sizeof totals[id]);
	}
}

void oa_metrics_atfork_child(void)
{
	struct region *r = tab.regions;
	while (r) {
		struct region *next = r->next;
		munmap(r, r->bytes);
		r = next;
	}
	tab.regions = NULL;
	thread_cells = NULL;
	/* The parent's sums, left to it (the child's start afresh): dropped,
	 * not zeroed, as zeroing would copy every page of them into the child
	 * (hundreds of page faults in each child of a long-running server). */
	tab.retired = NULL;
	tab.start_unix_ns = unix_now_ns();
}
