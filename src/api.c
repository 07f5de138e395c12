/* The manual API (include/otlpauto.h). Each thread has a pool of open spans,
 * each with a buffer that takes its payload items (name, attributes, events,
 * links) as they are set; ending a span copies the buffer into one ring
 * record. The hot path makes no malloc, lock or syscall: a pool is mapped on
 * the thread's first span and recycled when the thread exits.
 *
 * A span's context is pushed on its thread's context stack while it is open.
 * A span ended while it is not on top (ended out of order, or on another
 * thread) is marked ended; its entry is popped once everything above it is
 * gone, checked at each call on its own thread. */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "clock.h"
#include "payload.h"
#include "runtime.h"
#include "traceparent.h"

#define OTLPAUTO_TYPES_ONLY
#include "otlpauto.h"

#define OA_EXPORT __attribute__((visibility("default")))

#define POOL_SPANS 64
/* Span and event names and error messages are cut there. */
#define TEXT_MAX 4096
/* A span's payload fills at most one record of the largest size; the
 * producer's drop counts come after it. */
#define DROPPED_LINKS_ITEM 3
#define PAYLOAD_MAX                                                                                \
	(OA_MAX_SLOTS_PER_RECORD * OA_SLOT_SIZE - OA_RECORD_HEADER_SIZE -                          \
	 OA_PAYLOAD_DROPPED_ITEM - DROPPED_LINKS_ITEM)

enum span_state {
	SPAN_FREE,
	SPAN_OPEN,
	SPAN_ENDED, /* sent (or not sampled); its context entry is still pushed */
};

struct otlpauto_span {
	struct api_pool *pool;
	uint8_t state;	/* enum span_state; atomic: another thread may end the span */
	bool recording; /* sampled and open: setters write into w */
	bool foreign;	/* open in the parent at fork: the child never sends it */
	uint8_t kind;
	uint8_t status;
	uint8_t index; /* in pool->spans */
	uint32_t ctx_level;
	uint32_t events;
	uint32_t links;
	uint32_t dropped_attrs;
	uint32_t dropped_events;
	uint32_t dropped_links;
	uint64_t start;
	struct oa_span_ctx ctx;
	struct oa_span_ctx parent;
	struct oa_payload w; /* writes into the pool's buffer for this span */
};

struct api_pool {
	struct api_pool *next_recycled;
	uint32_t n_free;
	uint32_t sampled_out;		/* not yet added to oa_rt.spans_sampled_out */
	uint8_t free_index[POOL_SPANS]; /* a stack: the most recently freed first */
	uint8_t level_span[OA_MAX_CTX]; /* context level -> index + 1 of the span that pushed it */
	struct otlpauto_span spans[POOL_SPANS];
	_Alignas(64) uint8_t payloads[POOL_SPANS][PAYLOAD_MAX];
};

/* The handle returned when nothing can be recorded: every call ignores it. */
static struct otlpauto_span noop_span;

static __thread struct api_pool *thread_pool __attribute__((tls_model("initial-exec")));

static struct {
	pthread_once_t once;
	pthread_key_t exit_key;
	pthread_mutex_t lock;
	struct api_pool *recycled;
} pools = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER};

static void pool_reset(struct api_pool *pool)
{
	pool->n_free = POOL_SPANS;
	pool->sampled_out = 0;
	for (uint32_t i = 0; i < POOL_SPANS; i++) {
		pool->free_index[i] = (uint8_t)(POOL_SPANS - 1 - i);
		pool->spans[i].pool = pool;
		pool->spans[i].index = (uint8_t)i;
		__atomic_store_n(&pool->spans[i].state, SPAN_FREE, __ATOMIC_RELAXED);
	}
	memset(pool->level_span, 0, sizeof pool->level_span);
}

/* A thread that exits hands its pool on to the next new thread. Its open
 * spans are abandoned. */
static void pool_thread_exit(void *arg)
{
	struct api_pool *pool = arg;
	if (thread_pool == pool)
		thread_pool = NULL;
	__atomic_fetch_add(&oa_rt.spans_sampled_out, pool->sampled_out, __ATOMIC_RELAXED);
	pthread_mutex_lock(&pools.lock);
	pool->next_recycled = pools.recycled;
	pools.recycled = pool;
	pthread_mutex_unlock(&pools.lock);
}

/* In a forked child, the spans open at the fork are the parent's to send.
 * An atfork handler, also called for children made without one. */
void oa_api_atfork_child(void)
{
	struct api_pool *pool = thread_pool;
	if (!pool)
		return;
	for (uint32_t i = 0; i < POOL_SPANS; i++) {
		pool->spans[i].foreign = true;
		pool->spans[i].recording = false;
	}
}

static void pools_init(void)
{
	pthread_key_create(&pools.exit_key, pool_thread_exit);
	pthread_atfork(NULL, NULL, oa_api_atfork_child);
}

static struct api_pool *pool_create(void)
{
	pthread_once(&pools.once, pools_init);
	pthread_mutex_lock(&pools.lock);
	struct api_pool *pool = pools.recycled;
	if (pool)
		pools.recycled = pool->next_recycled;
	pthread_mutex_unlock(&pools.lock);
	if (!pool) {
		void *mem = mmap(NULL, sizeof *pool, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			return NULL;
		pool = mem;
	}
	pool_reset(pool);
	thread_pool = pool;
	pthread_setspecific(pools.exit_key, pool);
	return pool;
}

static inline struct api_pool *pool_get(void)
{
	struct api_pool *pool = thread_pool;
	return __builtin_expect(pool != NULL, 1) ? pool : pool_create();
}

static void span_free(struct api_pool *pool, struct otlpauto_span *s)
{
	__atomic_store_n(&s->state, SPAN_FREE, __ATOMIC_RELAXED);
	pool->free_index[pool->n_free++] = s->index;
}

/* Pops the context entries of ended spans from the top of the stack. */
static void reap(struct oa_thread *t, struct api_pool *pool)
{
	while (t->ctx_depth > 0) {
		uint32_t level = t->ctx_depth;
		uint8_t index = pool->level_span[level];
		if (!index)
			return;
		struct otlpauto_span *s = &pool->spans[index - 1];
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SPAN_ENDED)
			return;
		pool->level_span[level] = 0;
		oa_ctx_pop(t);
		span_free(pool, s);
	}
}

/* strnlen(s, max), moved back to a UTF-8 character boundary when cut (the
 * exporter makes any string valid UTF-8 in any case). */
static size_t text_len(const char *s, size_t max)
{
	size_t len = strnlen(s, max + 1);
	if (len <= max)
		return len;
	len = max;
	while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
		len--;
	return len;
}

static otlpauto_span *api_span_start(const char *name, int kind)
{
	if (!oa_hook_enter())
		return &noop_span;
	struct oa_thread *t = oa_thread_get();
	struct api_pool *pool = t ? pool_get() : NULL;
	if (!pool) {
		oa_hook_leave();
		return &noop_span;
	}
	reap(t, pool);
	if (!pool->n_free || t->ctx_depth + 1 >= OA_MAX_CTX) {
		oa_hook_leave();
		return &noop_span;
	}
	struct otlpauto_span *s = &pool->spans[pool->free_index[--pool->n_free]];
	oa_current_parent(t, &s->parent);
	/* No parent (the process span no longer adopts): the root of a new
	 * trace, linked to the process span when it would have been its child. */
	bool root = s->parent.span_id == 0 && !s->parent.remote;
	oa_span_ctx_start(t, root ? NULL : &s->parent, &s->ctx);
	if (root)
		s->parent = (struct oa_span_ctx){.link_process = s->parent.link_process};
	oa_ctx_push(t, &s->ctx);
	s->ctx_level = t->ctx_depth;
	pool->level_span[s->ctx_level] = (uint8_t)(s->index + 1);
	s->kind =
	    kind >= OA_KIND_INTERNAL && kind <= OA_KIND_CONSUMER ? (uint8_t)kind : OA_KIND_INTERNAL;
	s->status = OA_STATUS_UNSET;
	s->foreign = false;
	s->recording = s->ctx.flags & 1;
	if (s->recording) {
		s->events = s->links = 0;
		s->dropped_attrs = s->dropped_events = s->dropped_links = 0;
		s->w.p = pool->payloads[s->index];
		s->w.end = s->w.p + PAYLOAD_MAX;
		s->w.dropped_attrs = s->w.dropped_events = 0;
		if (!name)
			name = "span";
		oa_payload_text(&s->w, OA_ITEM_NAME, name, text_len(name, TEXT_MAX));
	}
	__atomic_store_n(&s->state, SPAN_OPEN, __ATOMIC_RELAXED);
	/* Only a sampled span needs its times (a clock read is a good part of
	 * a span's cost). */
	if (s->recording)
		s->start = oa_now();
	oa_hook_leave();
	return s;
}

/* Bytes of an attribute item with a custom key. */
static inline size_t attr_bytes(size_t key_len, size_t value_len)
{
	return 4 + key_len + value_len;
}

/* Writes an attribute's header when the item fits; counts it dropped if not. */
static bool attr_begin(otlpauto_span *s, const char *key, enum oa_item_value type, size_t value_len)
{
	if (!s->recording || !key)
		return false;
	size_t key_len = text_len(key, 255);
	if (!oa_payload_room(&s->w, attr_bytes(key_len, value_len))) {
		s->dropped_attrs++;
		return false;
	}
	return oa_payload_attr_head(&s->w, OA_KEY_CUSTOM, key, key_len, type, value_len);
}

static void api_span_set_str(otlpauto_span *s, const char *key, const char *value)
{
	if (!s->recording || !value)
		return;
	/* Cut to the length limit here already, so that a long value is kept
	 * truncated rather than dropped for want of room. */
	size_t limit = oa_rt.cfg.attribute_value_length_limit;
	size_t len = text_len(value, limit < UINT16_MAX ? limit : UINT16_MAX);
	if (attr_begin(s, key, OA_VAL_STR, 2 + len)) {
		oa_payload_u16(&s->w, (uint16_t)len);
		oa_payload_put(&s->w, value, len);
	}
}

static void api_span_set_int(otlpauto_span *s, const char *key, int64_t value)
{
	if (attr_begin(s, key, OA_VAL_INT, 8))
		oa_payload_put(&s->w, &value, 8);
}

static void api_span_set_double(otlpauto_span *s, const char *key, double value)
{
	if (attr_begin(s, key, OA_VAL_DOUBLE, 8))
		oa_payload_put(&s->w, &value, 8);
}

static void api_span_set_bool(otlpauto_span *s, const char *key, int value)
{
	if (attr_begin(s, key, OA_VAL_BOOL, 1))
		oa_payload_u8(&s->w, value != 0);
}

static void api_span_add_event(otlpauto_span *s, const char *name)
{
	if (!s->recording || !name)
		return;
	size_t len = text_len(name, TEXT_MAX);
	if (s->events >= oa_rt.cfg.event_count_limit || !oa_payload_room(&s->w, 11 + len)) {
		s->dropped_events++;
		return;
	}
	s->events++;
	oa_payload_event(&s->w, oa_now(), name, len);
}

static void api_span_add_link(otlpauto_span *s, const char *traceparent)
{
	struct oa_span_context target;
	if (!s->recording || !traceparent ||
	    !oa_traceparent_parse(traceparent, strlen(traceparent), &target))
		return;
	if (s->links >= oa_rt.cfg.link_count_limit || !oa_payload_room(&s->w, 1 + 16 + 8 + 1)) {
		s->dropped_links++;
		return;
	}
	s->links++;
	uint64_t span_id = oa_span_id_from_bytes(target.span_id);
	oa_payload_u8(&s->w, OA_ITEM_LINK);
	oa_payload_put(&s->w, target.trace_id, 16);
	oa_payload_put(&s->w, &span_id, 8);
	oa_payload_u8(&s->w, target.flags);
}

static void api_span_set_error(otlpauto_span *s, const char *message)
{
	if (!s->recording)
		return;
	s->status = OA_STATUS_ERROR;
	if (message)
		oa_payload_text(&s->w, OA_ITEM_STATUS_MSG, message, text_len(message, TEXT_MAX));
}

static inline uint16_t saturate16(uint32_t n)
{
	return n > UINT16_MAX ? UINT16_MAX : (uint16_t)n;
}

static void write_record(struct oa_thread *t, otlpauto_span *s, uint64_t end)
{
	uint8_t *payload = s->pool->payloads[s->index];
	if (s->dropped_links) {
		s->w.end += DROPPED_LINKS_ITEM; /* kept back for this */
		oa_payload_u8(&s->w, OA_ITEM_DROPPED_LINKS);
		oa_payload_u16(&s->w, saturate16(s->dropped_links));
	}
	uint32_t len = (uint32_t)(s->w.p - payload);
	struct oa_record *rec = oa_record_begin(t, len);
	if (!rec)
		return;
	oa_record_head(rec, t, &s->parent, &s->ctx, s->ctx.span_id, s->kind, OA_SCOPE_MANUAL,
		       OA_NAME_PAYLOAD, s->start);
	rec->status = s->status;
	rec->end = end;
	memcpy(rec->payload, payload, len);
	if (s->dropped_attrs | s->dropped_events) {
		/* oa_record_begin left room for this item. */
		uint16_t counts[2] = {saturate16(s->dropped_attrs), saturate16(s->dropped_events)};
		rec->payload[len] = OA_ITEM_DROPPED;
		memcpy(rec->payload + len + 1, counts, sizeof counts);
		len += OA_PAYLOAD_DROPPED_ITEM;
	}
	rec->payload_len = (uint16_t)len;
	oa_record_commit(t, rec);
}

/* One shared counter update per this many unsampled spans (the exit
 * summary may miss fewer than this many per thread). */
#define SAMPLED_OUT_BATCH 64

static void api_span_end(otlpauto_span *s)
{
	uint64_t end = s->recording ? oa_now() : 0;
	if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != SPAN_OPEN)
		return; /* the no-op handle, or ended already */
	/* Not entered: the runtime has shut down (or this is a nested call);
	 * the span is not sent, but its context entry is still popped. */
	bool entered = oa_hook_enter();
	struct oa_thread *t = entered ? oa_thread_get() : oa_tls.state;
	bool alive = (uintptr_t)t > 1;
	struct api_pool *pool = s->pool;
	if (entered && s->recording && alive)
		write_record(t, s, end);
	else if (!s->recording && !s->foreign && pool == thread_pool &&
		 ++pool->sampled_out == SAMPLED_OUT_BATCH) {
		__atomic_fetch_add(&oa_rt.spans_sampled_out, SAMPLED_OUT_BATCH, __ATOMIC_RELAXED);
		pool->sampled_out = 0;
	}
	s->recording = false;
	if (pool != thread_pool) {
		/* Its own thread pops the context at its next call. */
		__atomic_store_n(&s->state, SPAN_ENDED, __ATOMIC_RELEASE);
	} else if (!alive) {
		span_free(pool, s);
	} else if (s->ctx_level == t->ctx_depth) {
		pool->level_span[s->ctx_level] = 0;
		oa_ctx_pop(t);
		span_free(pool, s);
		reap(t, pool);
	} else if (s->ctx_level < t->ctx_depth && pool->level_span[s->ctx_level] == s->index + 1 &&
		   t->ctx[s->ctx_level].span_id == s->ctx.span_id) {
		__atomic_store_n(&s->state, SPAN_ENDED, __ATOMIC_RELAXED);
	} else {
		/* Its entry was popped from under it: nothing left to pop. */
		if (pool->level_span[s->ctx_level] == s->index + 1)
			pool->level_span[s->ctx_level] = 0;
		span_free(pool, s);
	}
	if (entered)
		oa_hook_leave();
}

static int api_current_traceparent(char *buf, size_t len)
{
	if (buf && len)
		buf[0] = 0;
	if (!buf || len < OA_TRACEPARENT_LEN + 1 || !oa_hook_enter())
		return 0;
	int written = 0;
	struct oa_thread *t = oa_thread_get();
	if (t) {
		if (thread_pool)
			reap(t, thread_pool);
		struct oa_span_ctx current;
		oa_current_parent(t, &current);
		if (current.span_id) {
			struct oa_span_context sc;
			memcpy(sc.trace_id, current.trace_id, 16);
			oa_span_id_to_bytes(current.span_id, sc.span_id);
			sc.flags = current.flags;
			oa_traceparent_format(&sc, buf);
			written = OA_TRACEPARENT_LEN;
		}
	}
	oa_hook_leave();
	return written;
}

OA_EXPORT const struct otlpauto_api_v1 otlpauto_api_v1 = {
    .span_start = api_span_start,
    .span_set_str = api_span_set_str,
    .span_set_int = api_span_set_int,
    .span_set_double = api_span_set_double,
    .span_set_bool = api_span_set_bool,
    .span_add_event = api_span_add_event,
    .span_add_link = api_span_add_link,
    .span_set_error = api_span_set_error,
    .span_end = api_span_end,
    .current_traceparent = api_current_traceparent,
};
