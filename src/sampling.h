/* Sampling decisions as pure functions of the trace id (and, for the
 * adaptive sampler, of a clock the caller passes in), so they are tested
 * without the runtime. sampler.c applies them to the configuration. */
#ifndef OTLPAUTO_SAMPLING_H
#define OTLPAUTO_SAMPLING_H

#include <stdbool.h>
#include <stdint.h>

/* TraceIdRatioBased: deterministic per trace id; a higher ratio keeps a
 * superset of what a lower one keeps. */
bool oa_ratio_keeps(const uint8_t trace_id[16], double ratio);

/* Adaptive sampling toward a target of sampled roots per second. Once a
 * second the ratio becomes target / (smoothed root rate: it follows a rise
 * by halves, a fall at once), bounded by
 * OA_ADAPTIVE_FLOOR and 1; each root is kept when oa_ratio_keeps at that
 * ratio and the second's budget of `target` kept roots is not spent, so a
 * burst is held near the target before the next adjustment catches up.
 * Safe to call from several threads at once. */
struct oa_adaptive {
	uint64_t window_start_ns; /* 0 until the first decision */
	uint64_t roots;		  /* roots seen in the current window */
	uint64_t kept;		  /* roots sampled in the current window */
	double smoothed_rate;	  /* roots per second; written by the adjusting thread */
	double ratio;
	bool measured; /* smoothed_rate holds a measurement */
};

#define OA_ADAPTIVE_FLOOR     1e-6
#define OA_ADAPTIVE_WINDOW_NS 1000000000ull
#define OA_ADAPTIVE_INIT                                                                           \
	{                                                                                          \
		.ratio = 1.0                                                                       \
	}

/* now_ns: a monotonic clock, never 0. */
bool oa_adaptive_decide(struct oa_adaptive *a, double target, const uint8_t trace_id[16],
			uint64_t now_ns);
double oa_adaptive_current_ratio(struct oa_adaptive *a);

#endif
