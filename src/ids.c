#include "ids.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void oa_rng_seed(struct oa_rng *rng)
{
	uint64_t seed[4];
	ssize_t got = getrandom(seed, sizeof seed, GRND_NONBLOCK);
	if (got != (ssize_t)sizeof seed) {
		/* Early boot without entropy: mix what differs between processes. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
			     ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)rng;
		for (int i = 0; i < 4; i++)
			seed[i] = splitmix64(&x);
	}
	memcpy(rng->s, seed, sizeof seed);
	if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]))
		rng->s[0] = 1;
}

void oa_new_trace_id(struct oa_rng *rng, uint8_t out[16])
{
	uint64_t hi, lo;
	do {
		hi = oa_rng_next(rng);
		lo = oa_rng_next(rng);
	} while ((hi | lo) == 0);
	memcpy(out, &hi, 8);
	memcpy(out + 8, &lo, 8);
}
