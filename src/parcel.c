#include "parcel.h"

#include <pthread.h>
#include <stdlib.h>

static struct {
	pthread_mutex_t lock;
	struct oa_parcel *head, **tail;
	size_t bytes;
} q = {PTHREAD_MUTEX_INITIALIZER, NULL, &q.head, 0};

struct oa_parcel *oa_parcel_new(uint32_t len, uint32_t spans, uint8_t format)
{
	struct oa_parcel *p = malloc(sizeof *p + len);
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
	free(p);
}

void oa_parcels_push(struct oa_parcel *p)
{
	pthread_mutex_lock(&q.lock);
	p->next = NULL;
	*q.tail = p;
	q.tail = &p->next;
	__atomic_fetch_add(&q.bytes, p->len, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&q.lock);
}

struct oa_parcel *oa_parcels_take(void)
{
	pthread_mutex_lock(&q.lock);
	struct oa_parcel *all = q.head;
	q.head = NULL;
	q.tail = &q.head;
	__atomic_store_n(&q.bytes, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&q.lock);
	return all;
}

size_t oa_parcels_bytes(void)
{
	return __atomic_load_n(&q.bytes, __ATOMIC_RELAXED);
}

void oa_parcels_atfork_child(void)
{
	/* Leaked, not freed: the list may have been mid-update in a thread
	 * the fork left behind. */
	pthread_mutex_init(&q.lock, NULL);
	q.head = NULL;
	q.tail = &q.head;
	q.bytes = 0;
}
