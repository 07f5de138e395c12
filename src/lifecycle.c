/* Start-up, fork and exit. Initialisation runs from our constructor or from
 * the first hook that comes earlier (another library's constructor), once;
 * the final flush runs from our destructor or the _exit hooks, bounded by
 * OTEL_BSP_EXPORT_TIMEOUT. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "clock.h"
#include "lifecycle.h"
#include "log.h"
#include "runtime.h"
#include "stack.h"
#include "traceparent.h"
#include "transport.h"

struct oa_runtime oa_rt;

static struct {
	char **settings; /* OTEL_*, OTLPAUTO_* and LD_PRELOAD entries at start */
	size_t n_settings;
	char self_path[4096];
} boot;

static const char *env_get(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

/* The clock's decision goes to the programs we start in place of the one we
 * inherited (if any), so that they need not measure the TSC again. */
static void save_settings(void)
{
	size_t n = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	boot.settings = calloc(n + 2, sizeof *boot.settings);
	if (!boot.settings)
		return;
	for (char **e = environ; e && *e; e++)
		if ((strncmp(*e, "OTEL_", 5) == 0 || strncmp(*e, "OTLPAUTO_", 9) == 0) &&
		    strncmp(*e, OA_CLOCK_VARIABLE "=", sizeof OA_CLOCK_VARIABLE) != 0)
			boot.settings[boot.n_settings++] = strdup(*e);
	boot.settings[boot.n_settings++] = strdup(oa_clock_setting());
	Dl_info info;
	if (dladdr((void *)oa_init_slow, &info) && info.dli_fname) {
		/* not snprintf: see format_setting in clock.c */
		size_t len = strnlen(info.dli_fname, sizeof boot.self_path - 1);
		memcpy(boot.self_path, info.dli_fname, len);
		boot.self_path[len] = '\0';
	}
}

const char *const *oa_saved_settings(size_t *n)
{
	*n = boot.n_settings;
	return (const char *const *)boot.settings;
}

const char *oa_self_path(void)
{
	return boot.self_path;
}

/* The parent of this process's top-level spans: TRACEPARENT from whoever
 * started us (an exec span of a traced parent), else a new trace. */
static void init_process_context(void)
{
	struct oa_rng rng;
	oa_rng_seed(&rng);
	struct oa_span_ctx *pc = &oa_rt.process_ctx;
	struct oa_span_context remote;
	const char *tp = getenv("TRACEPARENT");
	if (tp && oa_traceparent_parse(tp, strlen(tp), &remote)) {
		memcpy(pc->trace_id, remote.trace_id, 16);
		pc->span_id = oa_span_id_from_bytes(remote.span_id);
		pc->remote = true;
		pc->flags = remote.flags & 1;
		switch (oa_rt.cfg.sampler) {
		case OA_SAMPLER_ALWAYS_ON:
		case OA_SAMPLER_ALWAYS_OFF:
		case OA_SAMPLER_TRACEIDRATIO:
		case OA_SAMPLER_ADAPTIVE:
			pc->flags = oa_sample_root(pc->trace_id) ? 1 : 0;
			break;
		default:
			break;
		}
		return;
	}
	oa_new_trace_id(&rng, pc->trace_id);
	pc->span_id = 0;
	pc->remote = false;
	pc->flags = oa_sample_root(pc->trace_id) ? 1 : 0;
}

static void atfork_prepare(void)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE)
		return;
	/* Fix the id of the frame the child will parent on, here in the
	 * parent, so the parent sends that frame under the same id. */
	struct oa_thread *t = oa_tls.state;
	if ((uintptr_t)t > 1) {
		oa_tls.guard++;
		struct oa_span_ctx unused;
		oa_current_parent(t, &unused);
		oa_tls.guard--;
	}
	oa_exporter_atfork_prepare();
}

static void atfork_parent(void)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) == OA_STATE_ACTIVE)
		oa_exporter_atfork_parent();
}

static void atfork_child(void)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE)
		return;
	oa_rt.pid = getpid();
	oa_exporter_atfork_child();
	oa_thread_atfork_child();
}

/* Another copy of this library (preloaded from two paths, or dlopened from
 * another path) comes first in the symbol search order: the program's calls
 * reach its hooks, and ours behind them through RTLD_NEXT. Only that copy
 * runs; a second one would record every span again. */
static bool another_copy_comes_first(void)
{
	void *first = dlsym(RTLD_DEFAULT, "otlpauto_api_v1");
	Dl_info theirs, ours;
	return first && dladdr(first, &theirs) && dladdr((void *)oa_init_slow, &ours) &&
	       theirs.dli_fbase != ours.dli_fbase;
}

static void init_runtime(void)
{
	/* Set-uid/set-gid programs: the environment is the caller's, not to be
	 * trusted with where spans go (or what library runs). Stay off. */
	if (getauxval(AT_SECURE) || another_copy_comes_first()) {
		__atomic_store_n(&oa_rt.state, OA_STATE_OFF, __ATOMIC_RELEASE);
		return;
	}
	oa_config_defaults(&oa_rt.cfg);
	oa_config_parse(&oa_rt.cfg, env_get, NULL);
	if (oa_rt.cfg.sdk_disabled) {
		__atomic_store_n(&oa_rt.state, OA_STATE_OFF, __ATOMIC_RELEASE);
		return;
	}
	oa_clock_init(false, getenv(OA_CLOCK_VARIABLE));
	oa_rt.function_threshold_ticks = oa_clock_ns_to_ticks(oa_rt.cfg.function_threshold_ns);
	oa_rt.stacktrace_threshold_ticks = oa_clock_ns_to_ticks(oa_rt.cfg.stacktrace_threshold_ns);
	oa_rt.pid = getpid();
	init_process_context();
	save_settings();
	oa_thread_system_init();
	/* libcurl loads with the exporter, at the first span, unless OpenSSL
	 * is already here (see oa_transport_load_early) */
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP)
		oa_transport_load_early();
	/* Hooks capture stack traces: libunwind must be there before them. */
	if (oa_rt.cfg.stacktrace && !oa_stack_init())
		oa_rt.cfg.stacktrace = false;
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
#if OA_FEATURE_FUNCTIONS
	oa_functions_init();
#endif
	if (oa_rt.cfg.hooks & OA_HOOK_PROCESS)
		oa_signals_init();
	__atomic_store_n(&oa_rt.state, OA_STATE_ACTIVE, __ATOMIC_RELEASE);
#if OA_FEATURE_FUNCTIONS
	oa_functions_start();
#endif
}

bool oa_init_slow(void)
{
	int expected = OA_STATE_UNINIT;
	if (__atomic_compare_exchange_n(&oa_rt.state, &expected, OA_STATE_INITIALIZING, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		oa_tls.guard++;
		init_runtime();
		oa_tls.guard--;
		expected = __atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE);
	}
	/* Another thread initialising: its hooks pass through meanwhile. */
	return expected == OA_STATE_ACTIVE;
}

void oa_process_exit(void)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE)
		return;
	oa_tls.guard++;
	struct oa_thread *t = oa_tls.state;
	if ((uintptr_t)t > 1)
		oa_frames_end_all(t, OA_END_PROCESS_EXIT);
	oa_exporter_flush(oa_rt.cfg.export_timeout_ms);
	__atomic_store_n(&oa_rt.function_push_limit, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&oa_rt.state, OA_STATE_SHUTDOWN, __ATOMIC_RELEASE);
	oa_exporter_shutdown_summary();
	oa_tls.guard--;
}

__attribute__((constructor)) static void otlpauto_constructor(void)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) == OA_STATE_UNINIT)
		oa_init_slow();
}

__attribute__((destructor)) static void otlpauto_destructor(void)
{
	oa_process_exit();
}
