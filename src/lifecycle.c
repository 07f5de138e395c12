/* Start-up, fork and exit. Initialisation runs from our constructor or from
 * the first hook that comes earlier (another library's constructor), once;
 * the final flush runs from our destructor, the _exit hooks or a signal
 * handler (hooks/signals.c), bounded by OTLPAUTO_EXIT_TIMEOUT. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clock.h"
#include "family.h"
#include "fdguard.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "metrics_export.h"
#include "parcel.h"
#include "process_span.h"
#include "relay.h"
#include "runtime.h"
#include "sink.h"
#include "stack.h"
#include "summary.h"
#include "sys.h"
#include "traceparent.h"
#include "transport.h"

#define OA_EXPORT __attribute__((visibility("default")))

struct oa_runtime oa_rt;

static struct {
	char **settings; /* OTEL_*, OTLPAUTO_* and LD_PRELOAD entries at start */
	size_t n_settings;
	char self_path[4096];
} boot OA_LARGE_BSS;

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

/* A bad setting is said once per tree of processes, not once per command of
 * a traced script: a process tells the programs it starts that it warned
 * about its settings, by their fingerprint; one whose settings are the same
 * parses them quietly. */
static char warned_entry[sizeof OA_SETTINGS_WARNED_ENV + 17];

static bool passed_on_by_us(const char *entry)
{
	static const char *const ours[] = {OA_RELAY_ENV, OA_RELAY_HOST_ENV, "OTLPAUTO_HANDOFF",
					   OA_SETTINGS_WARNED_ENV, OA_CLOCK_VARIABLE};
	for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
		size_t len = strlen(ours[i]);
		if (strncmp(entry, ours[i], len) == 0 && entry[len] == '=')
			return true;
	}
	return false;
}

/* Of the OTEL_ and OTLPAUTO_ entries, in any order (FNV-1a, summed). */
static uint64_t settings_fingerprint(void)
{
	uint64_t sum = 0;
	for (char **e = environ; e && *e; e++) {
		if ((strncmp(*e, "OTEL_", 5) != 0 && strncmp(*e, "OTLPAUTO_", 9) != 0) ||
		    passed_on_by_us(*e))
			continue;
		uint64_t h = 0xcbf29ce484222325ULL;
		for (const char *c = *e; *c; c++)
			h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
		sum += h;
	}
	return sum;
}

static void ignore_line(const char *line)
{
	(void)line;
}

/* The settings, with warnings unless the parent gave them already. */
static void parse_settings(void)
{
	uint64_t fingerprint = settings_fingerprint();
	const char *warned = getenv(OA_SETTINGS_WARNED_ENV);
	bool quiet = warned && strtoull(warned, NULL, 16) == fingerprint;
	unsigned warnings = oa_log_warnings;
	if (quiet)
		oa_log_set_sink(ignore_line);
	oa_config_defaults(&oa_rt.cfg);
	oa_config_parse(&oa_rt.cfg, env_get, NULL);
	if (quiet)
		oa_log_set_sink(NULL);
	if (oa_log_warnings != warnings)
		snprintf(warned_entry, sizeof warned_entry, OA_SETTINGS_WARNED_ENV "=%016llx",
			 (unsigned long long)fingerprint);
}

const char *oa_settings_warned_entry(void)
{
	return warned_entry;
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

void oa_fork_fix_parent(void)
{
	/* Not from a signal handler that interrupted one of our hooks, which
	 * may be changing the frames: the child then parents higher up. */
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE || oa_tls.guard)
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
	/* A child relays through our relay: it must exist before the fork. */
	char relay[160];
	oa_relay_for_child(relay, sizeof relay, oa_can_host_relay());
}

static void atfork_prepare(void)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE)
		return;
	oa_fork_fix_parent();
	oa_families_atfork_prepare();
	oa_relay_atfork_prepare();
	oa_exporter_atfork_prepare();
}

static void atfork_parent(void)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) == OA_STATE_ACTIVE) {
		oa_exporter_atfork_parent();
		oa_relay_atfork_parent();
	}
}

static uint32_t fork_mark_unavailable = 1;
uint32_t *oa_fork_mark = &fork_mark_unavailable;

static void fork_mark_init(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint32_t *mark =
	    mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mark == MAP_FAILED)
		return;
	if (madvise(mark, page, MADV_WIPEONFORK) != 0) {
		munmap(mark, page);
		return;
	}
	*mark = 1;
	oa_fork_mark = mark;
}

/* Only the forking thread lives on in the child: the parent's records and
 * frames stay the parent's, the exporter and its connection are gone. Runs
 * once per child (the mark goes 0 -> 2 -> 1), from our atfork child handler
 * or from the first check that finds the mark zero, whichever comes first;
 * with syscalls and stores only, as a child of _Fork may call nothing that
 * takes a lock another thread held at the fork. */
static void reset_child(void)
{
	oa_tls.guard++;
	oa_rt.pid = getpid();
	/* The child counts its own spans. */
	oa_rt.spans_sampled_out = oa_rt.spans_exported = oa_rt.spans_relayed = 0;
	oa_rt.db_queries_commented = oa_rt.db_queries_uncommented = 0;
	memset(oa_rt.dropped, 0, sizeof oa_rt.dropped);
	oa_fd_atfork_child();
	oa_parcels_atfork_child();
	oa_relay_atfork_child();
	oa_exporter_atfork_child();
	oa_metrics_export_atfork_child();
	oa_metrics_atfork_child();
	oa_thread_atfork_child();
	struct oa_thread *t = oa_tls.state;
	oa_process_span_atfork_child((uintptr_t)t > 1 ? t : NULL);
	oa_api_atfork_child();
	oa_families_atfork_child();
	__atomic_store_n(oa_fork_mark, 1, __ATOMIC_RELEASE);
	oa_tls.guard--;
}

void oa_forked_child_reset(void)
{
	uint32_t unseen = 0;
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) == OA_STATE_ACTIVE &&
	    __atomic_compare_exchange_n(oa_fork_mark, &unseen, 2, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		reset_child();
}

void oa_fork_child(void)
{
	if (oa_fork_mark == &fork_mark_unavailable) {
		if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) == OA_STATE_ACTIVE)
			reset_child();
	} else {
		oa_forked_child_reset();
	}
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
	parse_settings();
	if (oa_rt.cfg.sdk_disabled) {
		__atomic_store_n(&oa_rt.state, OA_STATE_OFF, __ATOMIC_RELEASE);
		return;
	}
	oa_clock_init(false, getenv(OA_CLOCK_VARIABLE));
	oa_rt.function_threshold_ticks = oa_clock_ns_to_ticks(oa_rt.cfg.function_threshold_ns);
	oa_rt.stacktrace_threshold_ticks = oa_clock_ns_to_ticks(oa_rt.cfg.stacktrace_threshold_ns);
	if (oa_rt.cfg.metrics_exporter != OA_EXPORTER_NONE && (oa_rt.cfg.hooks & OA_HOOK_HTTP) &&
	    !oa_metrics_init(oa_rt.cfg.metrics_max_series))
		oa_warn("cannot map the metrics' series table; no metrics");
	oa_rt.pid = getpid();
	fork_mark_init();
	oa_process_span_init();
	save_settings();
	oa_thread_system_init();
	struct oa_relay_fingerprint fingerprint = {
	    oa_config_export_fingerprint(&oa_rt.cfg, oa_rt.pid, true),
	    oa_config_export_fingerprint(&oa_rt.cfg, oa_rt.pid, false)};
	bool relayed = oa_relay_applies(&oa_rt.cfg) &&
		       oa_relay_init(getenv(OA_RELAY_ENV), &fingerprint, oa_rt.cfg.headers.n != 0);
	/* The previous image of this process hosted a relay: this one does. */
	const char *relay_host = getenv(OA_RELAY_HOST_ENV);
	if (relay_host && !relayed && oa_can_host_relay())
		oa_relay_host_adopt(relay_host);
	/* The exporter's descriptors are opened on its thread, sharing the
	 * table: it is grown now, while this thread is likely the only one. */
	if (oa_rt.cfg.exporter != OA_EXPORTER_NONE && !relayed)
		oa_fd_reserve_table();
	/* libcurl (https, proxies) loads with the exporter, at the first span,
	 * unless OpenSSL is already here (see oa_transport_load_early) */
	if (oa_rt.cfg.exporter == OA_EXPORTER_OTLP && !relayed &&
	    oa_transport_needs_libcurl(&oa_rt.cfg))
		oa_transport_load_early();
	/* Hooks capture stack traces: libunwind must be there before them. */
	if (oa_rt.cfg.stacktrace && !oa_stack_init())
		oa_rt.cfg.stacktrace = false;
	pthread_atfork(atfork_prepare, atfork_parent, oa_fork_child);
	oa_families_init();
	__atomic_store_n(&oa_rt.state, OA_STATE_ACTIVE, __ATOMIC_RELEASE);
	oa_families_start();
	/* What the previous program of this process left to send. */
	const char *handoff = getenv("OTLPAUTO_HANDOFF");
	if (handoff)
		oa_exporter_adopt_handoff(handoff);
}

bool oa_can_host_relay(void)
{
	/* The default output file is named after each process: nothing to share. */
	return oa_relay_applies(&oa_rt.cfg) &&
	       !(oa_rt.cfg.exporter == OA_EXPORTER_FILE && !oa_rt.cfg.file_path);
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

/* The first caller (a thread of the program, never one of ours) takes the
 * runtime to SHUTDOWN before the flush: hooks are no-ops from here and
 * frames that end later are counted, not queued, so the flush has a fixed
 * amount of work however busy the other threads are. A second caller (a
 * signal during the flush, another thread's _exit) returns at once. */
static void process_exit(bool async)
{
	/* A vfork child's exit ends nothing of its parent's (hooks/process.c). */
	int active = OA_STATE_ACTIVE;
	if (oa_tls.internal || oa_in_vfork_child() ||
	    !__atomic_compare_exchange_n(&oa_rt.state, &active, OA_STATE_SHUTDOWN, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&oa_rt.function_push_limit, 0, __ATOMIC_RELAXED);
	/* Interrupted inside a hook (a signal, or _exit from a handler): the
	 * ring or the shadow stack may be half written; frames stay open. */
	bool in_hook = oa_tls.guard != 0;
	oa_tls.guard++;
	struct oa_thread *t = oa_tls.state;
	if (!in_hook && t)
		oa_families_thread_exit(t, OA_END_PROCESS_EXIT);
	oa_families_process_exit(async);
	if (!in_hook && (uintptr_t)t != 1 && (oa_rt.cfg.hooks & OA_HOOK_PROCESS) &&
	    !oa_rt.relay_only && (t = oa_thread_get()) != NULL)
		oa_process_span_end(t, OA_END_NORMAL);
	uint64_t deadline = oa_mono_ns() + oa_rt.cfg.exit_timeout_ns;
	/* What other processes of the tree relayed through us goes out too;
	 * what they send from now on, they export themselves. */
	oa_relay_host_end(deadline);
	oa_exporter_exit_flush(oa_rt.cfg.exit_timeout_ns, async, in_hook);
	oa_relay_report(true, async, deadline);
	if (oa_log_threshold >= OA_LOG_DEBUG) /* its code is a page an exit need not touch */
		oa_shutdown_summary();
	oa_tls.guard--;
}

void oa_process_exit(void)
{
	process_exit(false);
}

void oa_process_exit_async(void)
{
	process_exit(true);
}

/* ---- `otlpauto run`: the relay host, in a process that traces nothing */

static bool relay_host(char *value, size_t size)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE ||
	    !oa_can_host_relay())
		return false;
	oa_rt.relay_only = true;
	if (!oa_relay_for_child(value, size, true))
		return false;
	/* Set up (its thread, resource, transport) while the program runs,
	 * rather than at its first parcel, which is often its exit: the
	 * finish would wait for that too. */
	oa_exporter_start_if_needed();
	/* The program otlpauto starts has the same settings: told here. */
	if (warned_entry[0])
		putenv(warned_entry);
	return true;
}

static void relay_finish(uint32_t timeout_ms, struct oa_relay_totals *totals)
{
	oa_tls.guard++;
	uint64_t timeout_ns = (uint64_t)timeout_ms * 1000000u;
	oa_relay_host_end(oa_mono_ns() + timeout_ns);
	oa_exporter_exit_flush(timeout_ns, false, false);
	oa_relay_host_totals(totals);
	oa_sink_parcel_totals(&totals->exported, &totals->failed, &totals->unsent_at_exit);
	oa_tls.guard--;
}

OA_EXPORT const struct otlpauto_relay_v1 otlpauto_relay_v1 = {
    .host = relay_host,
    .finish = relay_finish,
};

__attribute__((constructor)) static void otlpauto_constructor(void)
{
	if (__atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) == OA_STATE_UNINIT)
		oa_init_slow();
}

__attribute__((destructor)) static void otlpauto_destructor(void)
{
	oa_process_exit();
}
