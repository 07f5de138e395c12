#include "dns_names.h"

#include <string.h>

#include "sys.h"

/* Seqlocked slots: a writer that finds one busy gives up, a reader that
 * sees one change misses. */

#define CACHE_SLOTS 256

struct cache_slot {
	uint32_t seq; /* odd while being written; 0: never written */
	uint8_t family, name_len;
	uint8_t addr[16];
	char name[OA_DNS_NAME_MAX];
};

static struct cache_slot cache[CACHE_SLOTS] OA_LARGE_BSS;

static struct cache_slot *slot_for(int family, const uint8_t *addr, size_t len)
{
	uint32_t h = 2166136261u ^ (uint32_t)family;
	for (size_t i = 0; i < len; i++)
		h = (h ^ addr[i]) * 16777619u;
	return &cache[h % CACHE_SLOTS];
}

void oa_dns_remember(const struct sockaddr *sa, const char *name)
{
	const uint8_t *addr;
	size_t len = oa_dns_addr_bytes(sa, &addr);
	if (!len)
		return;
	struct cache_slot *s = slot_for(sa->sa_family, addr, len);
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
	if ((seq & 1) || !__atomic_compare_exchange_n(&s->seq, &seq, seq + 1, false,
						      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	size_t name_len = strnlen(name, OA_DNS_NAME_MAX - 1);
	s->family = (uint8_t)sa->sa_family;
	memset(s->addr, 0, sizeof s->addr);
	memcpy(s->addr, addr, len);
	memcpy(s->name, name, name_len);
	s->name_len = (uint8_t)name_len;
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

bool oa_dns_name_of(const struct sockaddr *sa, char *out, size_t cap)
{
	const uint8_t *addr;
	size_t len = oa_dns_addr_bytes(sa, &addr);
	if (!len || !cap)
		return false;
	struct cache_slot *s = slot_for(sa->sa_family, addr, len);
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
	if (!seq || (seq & 1))
		return false;
	struct cache_slot copy;
	memcpy(&copy, s, sizeof copy);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq || copy.family != sa->sa_family ||
	    memcmp(copy.addr, addr, len) != 0)
		return false;
	size_t n = copy.name_len < cap ? copy.name_len : cap - 1;
	memcpy(out, copy.name, n);
	out[n] = '\0';
	return n > 0;
}
