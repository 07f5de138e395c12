/* Root sampling decisions (OpenTelemetry SDK samplers) on the configuration;
 * the decisions themselves are in sampling.c. Children follow the parent's
 * decision in the parent-based samplers (thread.c). */
#include "clock.h"
#include "runtime.h"
#include "sampling.h"

bool oa_sample_root(const uint8_t trace_id[16])
{
	switch (oa_rt.cfg.sampler) {
	case OA_SAMPLER_ALWAYS_OFF:
	case OA_SAMPLER_PARENTBASED_ALWAYS_OFF:
		return false;
	case OA_SAMPLER_TRACEIDRATIO:
	case OA_SAMPLER_PARENTBASED_TRACEIDRATIO:
		return oa_ratio_keeps(trace_id, oa_rt.cfg.sampler_arg);
	case OA_SAMPLER_ADAPTIVE:
	case OA_SAMPLER_PARENTBASED_ADAPTIVE:
		return oa_adaptive_keeps(trace_id);
	default:
		return true;
	}
}

static struct oa_adaptive adaptive = OA_ADAPTIVE_INIT;

double oa_adaptive_ratio(void)
{
	return oa_adaptive_current_ratio(&adaptive);
}

bool oa_adaptive_keeps(const uint8_t trace_id[16])
{
	return oa_adaptive_decide(&adaptive, oa_rt.cfg.sampler_arg, trace_id, oa_mono_ns());
}
