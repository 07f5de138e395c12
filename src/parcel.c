#include "parcel.h"
#include "mem.h"

#include <pthread.h>
#include <stdlib.h>

struct queue {
	pthread_mutex_t lock;
	struct oa_parcel *head, **tail;
	size_t bytes;
	uint64_t spans_pushed; /* ever */
};

static struct queue traces = {PTHREAD_MUTEX_INITIALIZER, NULL, &traces.head, 0, 0};
static struct queue metrics = {PTHREAD_MUTEX_INITIALIZER, NULL, &metrics.head, 0, 0};

struct oa_parcel *oa_parcel_new(uint32_t len, uint32_t spans, uint8_t format)
{
	struct oa_parcel *p = oa_malloc(sizeof *p + len);
	if (p) {
		p->next = NULL;
		p->len = len;
		p->spans = spans;
		p->format = format;
	}
	return p;
}

void oa_parcel_free(struct oa_parcel *p)
{
	oa_free(p);
}

static void push(struct queue *q, struct oa_parcel *p)
{
	pthread_mutex_lock(&q->lock);
	p->next = NULL;
	*q->tail = p;
	q->tail = &p->next;
	__atomic_fetch_add(&q->bytes, p->len, __ATOMIC_RELAXED);
	__atomic_fetch_add(&q->spans_pushed, p->spans, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&q->lock);
}

static struct oa_parcel *take(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	struct oa_parcel *all = q->head;
	q->head = NULL;
	q->tail = &q->head;
	__atomic_store_n(&q->bytes, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&q->lock);
	return all;
}

/* Leaked, not freed: the list may have been mid-update in a thread the fork
 * left behind. */
static void forget(struct queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->head = NULL;
	q->tail = &q->head;
	q->bytes = 0;
	q->spans_pushed = 0;
}

void oa_parcels_push(struct oa_parcel *p)
{
	push(&traces, p);
}

struct oa_parcel *oa_parcels_take(void)
{
	return take(&traces);
}

size_t oa_parcels_bytes(void)
{
	return __atomic_load_n(&traces.bytes, __ATOMIC_RELAXED);
}

uint64_t oa_parcels_spans_pushed(void)
{
	return __atomic_load_n(&traces.spans_pushed, __ATOMIC_RELAXED);
}

void oa_metric_parcels_push(struct oa_parcel *p)
{
	push(&metrics, p);
}

struct oa_parcel *oa_metric_parcels_take(void)
{
	return take(&metrics);
}

size_t oa_metric_parcels_bytes(void)
{
	return __atomic_load_n(&metrics.bytes, __ATOMIC_RELAXED);
}

void oa_parcels_atfork_child(void)
{
	forget(&traces);
	forget(&metrics);
}
