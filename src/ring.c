#include "ring.h"

#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

static uint32_t ring_capacity(uint32_t capacity)
{
	uint32_t cap = 16;
	while (cap < capacity && cap < (1u << 24))
		cap <<= 1;
	return cap;
}

uint32_t oa_ring_high_water(uint32_t capacity)
{
	return ring_capacity(capacity) / 4;
}

size_t oa_ring_bytes(uint32_t capacity)
{
	return offsetof(struct oa_ring, slots) + (size_t)ring_capacity(capacity) * OA_SLOT_SIZE;
}

struct oa_ring *oa_ring_place(void *mem, uint32_t capacity, uint32_t tid, void *map_base,
			      size_t map_size)
{
	struct oa_ring *ring = mem;
	ring->capacity = ring_capacity(capacity);
	ring->mask = ring->capacity - 1;
	ring->high_water = oa_ring_high_water(capacity);
	ring->tid = tid;
	ring->map_base = map_base;
	ring->map_size = map_size;
	return ring;
}

struct oa_ring *oa_ring_create(uint32_t capacity, uint32_t tid)
{
	size_t size = oa_ring_bytes(capacity);
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	return oa_ring_place(mem, capacity, tid, mem, size);
}

void oa_ring_destroy(struct oa_ring *ring)
{
	if (ring)
		munmap(ring->map_base, ring->map_size);
}

void oa_ring_reset(struct oa_ring *ring)
{
	ring->head = ring->reserved_head = ring->tail_cache = ring->tail = 0;
	ring->head_at_scan = 0;
	ring->head_seen = 0;
	ring->name = NULL;
	ring->records = ring->records_released = ring->records_at_scan = 0;
	ring->sampled_out = 0;
	ring->high_water_signalled = 0;
}

/* A sequence lock with one writer, without fences: the words are stored
 * with release (after the odd count) and loaded with acquire (before the
 * count is read again), so a reader that saw any new word sees the count
 * moved. The exporter keeps its old copy then, and reads again next batch. */
void oa_ring_set_name(struct oa_ring *ring, const char *name)
{
	uint64_t words[2] = {0, 0};
	memcpy(words, name, strnlen(name, sizeof words - 1));
	uint32_t seq = ring->name_seq;
	__atomic_store_n(&ring->name_seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&ring->name_words[0], words[0], __ATOMIC_RELEASE);
	__atomic_store_n(&ring->name_words[1], words[1], __ATOMIC_RELEASE);
	__atomic_store_n(&ring->name_seq, seq + 2, __ATOMIC_RELEASE);
}

bool oa_ring_get_name(struct oa_ring *ring, uint32_t *seen, char out[16])
{
	uint32_t seq = __atomic_load_n(&ring->name_seq, __ATOMIC_ACQUIRE);
	if (seq == *seen || (seq & 1))
		return false;
	uint64_t words[2] = {__atomic_load_n(&ring->name_words[0], __ATOMIC_ACQUIRE),
			     __atomic_load_n(&ring->name_words[1], __ATOMIC_ACQUIRE)};
	if (__atomic_load_n(&ring->name_seq, __ATOMIC_RELAXED) != seq)
		return false;
	memcpy(out, words, sizeof words);
	out[15] = '\0';
	*seen = seq;
	return true;
}
