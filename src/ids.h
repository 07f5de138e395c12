/* Trace and span ids from a per-thread xoshiro256** generator seeded with
 * getrandom: no syscall, lock or shared cache line per id. A forked child
 * reseeds so parent and child never produce the same ids. */
#ifndef OTLPAUTO_IDS_H
#define OTLPAUTO_IDS_H

#include <stdint.h>

struct oa_rng {
	uint64_t s[4];
};

void oa_rng_seed(struct oa_rng *rng);

static inline uint64_t oa_rng_next(struct oa_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = s[3] << 45 | s[3] >> 19;
	return result;
}

/* Never zero: zero means "no span" everywhere. */
static inline uint64_t oa_new_span_id(struct oa_rng *rng)
{
	uint64_t id;
	do
		id = oa_rng_next(rng);
	while (id == 0);
	return id;
}

void oa_new_trace_id(struct oa_rng *rng, uint8_t out[16]);

/* Span ids travel as 8 bytes, most significant first (as in traceparent). */
static inline void oa_span_id_to_bytes(uint64_t id, uint8_t out[8])
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(id >> (56 - 8 * i));
}

static inline uint64_t oa_span_id_from_bytes(const uint8_t in[8])
{
	uint64_t id = 0;
	for (int i = 0; i < 8; i++)
		id = id << 8 | in[i];
	return id;
}

#endif
