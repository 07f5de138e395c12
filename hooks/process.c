/* Process hooks: exec (flush first, then hand the new program our settings
 * and a TRACEPARENT naming an exec span that has already been sent),
 * posix_spawn, system and popen (the same hand-over, without a flush: this
 * process goes on and sends the span later), vfork (run as fork so the child
 * cannot write into its parent's memory), and _exit/_Exit (bounded flush). */
#include <alloca.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "exec_target.h"
#include "family.h"
#include "lifecycle.h"
#include "payload.h"
#include "process_span.h"
#include "real.h"
#include "relay.h"
#include "runtime.h"
#include "self.h"
#include "text.h"
#include "traceparent.h"

#define OA_EXPORT __attribute__((visibility("default")))

OA_REAL(int, execve, (const char *a0, char *const a1[], char *const a2[]), -1)
OA_REAL(int, execvpe, (const char *a0, char *const a1[], char *const a2[]), -1)
OA_REAL(int, fexecve, (int a0, char *const a1[], char *const a2[]), -1)
OA_REAL(int, posix_spawn,
	(pid_t * a0, const char *a1, const posix_spawn_file_actions_t *a2,
	 const posix_spawnattr_t *a3, char *const a4[], char *const a5[]),
	ENOSYS)
OA_REAL(int, posix_spawnp,
	(pid_t * a0, const char *a1, const posix_spawn_file_actions_t *a2,
	 const posix_spawnattr_t *a3, char *const a4[], char *const a5[]),
	ENOSYS)
OA_REAL(int, system, (const char *a0), -1)
OA_REAL(FILE *, popen, (const char *a0, const char *a1), NULL)
OA_REAL(int, pclose, (FILE * a0), -1)
OA_REAL(int, fclose, (FILE * a0), -1)
OA_REAL(int, sigaction, (int a0, const struct sigaction *a1, struct sigaction *a2), -1)
OA_REAL_VOID(_exit, (int status), syscall(SYS_exit_group, status))
OA_REAL_VOID(exit, (int status), syscall(SYS_exit_group, status))
OA_REAL(int, __libc_start_main,
	(int (*a0)(int, char **, char **), int a1, char **a2, void (*a3)(void), void (*a4)(void),
	 void (*a5)(void), void *a6),
	-1)
OA_REAL_VOID(_Exit, (int status), syscall(SYS_exit_group, status))

static bool process_hooks_on(void)
{
	return (oa_rt.cfg.hooks & OA_HOOK_PROCESS) != 0;
}

/* Writes a finished process span (exec, spawn, system, popen) with context
 * ctx; end_reason says why a span ended before its process did. */
static void write_span(struct oa_thread *t, const struct oa_span_ctx *parent,
		       const struct oa_span_ctx *ctx, const char *name, const char *path,
		       uint64_t start, int err, int exit_code, bool has_exit_code,
		       enum oa_end_reason end_reason, bool flush_next)
{
	if (!(ctx->flags & 1))
		return;
	size_t name_len = strlen(name), path_len = path ? strlen(path) : 0;
	struct oa_record *rec =
	    oa_record_begin(t, (uint32_t)(3 + name_len + 5 + path_len + 8 + 11 + 16 + 11));
	if (!rec)
		return;
	oa_record_head(rec, t, parent, ctx, ctx->span_id, OA_KIND_INTERNAL, OA_SCOPE_PROCESS,
		       OA_NAME_PAYLOAD, start);
	rec->status = err ? OA_STATUS_ERROR : OA_STATUS_UNSET;
	rec->end_reason = end_reason;
	rec->end = oa_now();
	struct oa_payload w;
	oa_payload_init(&w, rec);
	oa_payload_text(&w, OA_ITEM_NAME, name, name_len);
	if (path)
		oa_payload_attr_str(&w, OA_KEY_PROCESS_EXECUTABLE_PATH, path, path_len);
	if (err)
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	if (has_exit_code)
		oa_payload_attr_int(&w, OA_KEY_PROCESS_EXIT_CODE, exit_code);
	if (end_reason == OA_END_EXEC)
		oa_payload_attr_static(&w, OA_KEY_OTLPAUTO_END_REASON, "exec");
	else if (end_reason == OA_END_PROCESS_EXIT)
		oa_payload_attr_static(&w, OA_KEY_OTLPAUTO_END_REASON, "process_exit");
	oa_payload_finish(&w);
	if (flush_next)
		oa_record_commit_before_flush(t, rec);
	else
		oa_record_commit(t, rec);
}

static bool has_name(const char *entry, const char *name_eq, size_t len)
{
	return strncmp(entry, name_eq, len) == 0;
}

/* Entries the hooks set for a new program, replacing the caller's. */
#define HANDOFF_ENV "OTLPAUTO_HANDOFF"
static const char *const own_entries[] = {"TRACEPARENT=", OA_RELAY_ENV "=", OA_RELAY_HOST_ENV "=",
					  HANDOFF_ENV "=", OA_SETTINGS_WARNED_ENV "="};

static bool is_own_entry(const char *entry)
{
	for (size_t i = 0; i < sizeof own_entries / sizeof own_entries[0]; i++)
		if (has_name(entry, own_entries[i], strlen(own_entries[i])))
			return true;
	return false;
}

/* Settings that carry credentials: request headers, and endpoints with a
 * user:password. Never put back into an environment that lacks them. */
static bool carries_secrets(const char *entry)
{
	const char *eq = strchr(entry, '=');
	if (!eq || strncmp(entry, "OTEL_EXPORTER_OTLP_", 19) != 0)
		return false;
	size_t name_len = (size_t)(eq - entry);
	if (name_len >= 8 && memcmp(eq - 8, "_HEADERS", 8) == 0)
		return true;
	if (name_len < 9 || memcmp(eq - 9, "_ENDPOINT", 9) != 0)
		return false;
	const char *authority = strstr(eq, "://");
	authority = authority ? authority + 3 : eq + 1;
	size_t end = strcspn(authority, "/?#");
	return memchr(authority, '@', end) != NULL;
}

/* Whether children are traced: not when the program took this library out of
 * its own LD_PRELOAD and kept our other settings (`env -u LD_PRELOAD`: it
 * did not want it passed on); a program that cleared its whole environment
 * (`env -i`) is followed. */
static bool following_children(void)
{
	const char *preload = getenv("LD_PRELOAD");
	const char *self = oa_self_path();
	if (!self[0] || (preload && strstr(preload, self)))
		return self[0] != '\0';
	size_t n_saved;
	const char *const *saved = oa_saved_settings(&n_saved);
	for (size_t i = 0; i < n_saved; i++) {
		const char *eq = strchr(saved[i], '=');
		char name[128];
		size_t len = eq ? (size_t)(eq - saved[i]) : 0;
		if (len == 0 || len >= sizeof name || is_own_entry(saved[i]))
			continue;
		memcpy(name, saved[i], len);
		name[len] = '\0';
		if (getenv(name))
			return false;
	}
	return true;
}

/* The caller's LD_PRELOAD value, or NULL. */
static const char *preload_of(char *const envp[])
{
	const char *preload = NULL;
	for (char *const *e = envp; e && *e; e++)
		if (has_name(*e, "LD_PRELOAD=", 11))
			preload = *e + 11;
	return preload;
}

static size_t env_entries(char *const envp[])
{
	size_t n = 0;
	for (char *const *e = envp; e && *e; e++)
		n++;
	return n;
}

/* Pointers child_env needs room for: the caller's n entries, our settings,
 * LD_PRELOAD, TRACEPARENT, the settings warned about, n_extra and the
 * terminating NULL. */
static size_t child_env_slots(size_t n, size_t n_extra)
{
	size_t n_saved;
	oa_saved_settings(&n_saved);
	return n + n_saved + n_extra + 4;
}

/* Bytes the new LD_PRELOAD entry takes. */
static size_t child_preload_bytes(char *const envp[])
{
	const char *preload = preload_of(envp), *self = oa_self_path();
	return 11 + strlen(self) + 1 + (preload ? strlen(preload) : 0) + 1;
}

/* The environment for a new program, into caller-provided room: env (for n
 * caller entries: child_env_slots) and preload_buf (child_preload_bytes).
 * The caller's entries (at most n: envp may be environ, which another
 * thread's setenv can grow meanwhile), plus our settings where it dropped
 * them but for those that carry credentials (a program that hands its child
 * a scrubbed environment decided so; its spans reach the collector through
 * the relay, which has them), LD_PRELOAD naming this library, TRACEPARENT,
 * and `extra` (NULL-terminated: the relay, the hand-over; empty strings
 * skipped). */
static void fill_child_env(char **env, size_t n, char *preload_buf, char *const envp[],
			   const struct oa_span_ctx *ctx, char *traceparent_buf,
			   const char *const extra[])
{
	size_t n_saved;
	const char *const *saved = oa_saved_settings(&n_saved);
	size_t out = 0;
	const char *preload = preload_of(envp);
	for (char *const *e = envp; e && *e && (size_t)(e - envp) < n; e++)
		if (!is_own_entry(*e) && !has_name(*e, "LD_PRELOAD=", 11))
			env[out++] = *e;
	for (size_t i = 0; i < n_saved; i++) {
		if (is_own_entry(saved[i]) || carries_secrets(saved[i]))
			continue;
		const char *eq = strchr(saved[i], '=');
		size_t len = eq ? (size_t)(eq - saved[i]) + 1 : strlen(saved[i]);
		bool present = false;
		for (size_t j = 0; j < out && !present; j++)
			present = has_name(env[j], saved[i], len);
		if (!present)
			env[out++] = (char *)saved[i];
	}
	const char *self = oa_self_path();
	if (preload_buf && self[0]) {
		struct oa_text t = oa_text_into(preload_buf, child_preload_bytes(envp));
		oa_text_str(&t, "LD_PRELOAD=");
		if (preload && !strstr(preload, self)) {
			oa_text_str(&t, self);
			oa_text_mem(&t, ":", 1);
		}
		oa_text_str(&t, preload ? preload : self);
		env[out++] = preload_buf;
	}
	struct oa_span_context sc;
	memcpy(sc.trace_id, ctx->trace_id, 16);
	oa_span_id_to_bytes(ctx->span_id, sc.span_id);
	sc.flags = ctx->flags;
	memcpy(traceparent_buf, "TRACEPARENT=", 12);
	oa_traceparent_format(&sc, traceparent_buf + 12);
	env[out++] = traceparent_buf;
	if (oa_settings_warned_entry()[0])
		env[out++] = (char *)oa_settings_warned_entry();
	for (const char *const *x = extra; *x; x++)
		if ((*x)[0])
			env[out++] = (char *)*x;
	env[out] = NULL;
}

/* fill_child_env into the heap; NULL when memory is short. */
static char **child_env(char *const envp[], const struct oa_span_ctx *ctx, char *traceparent_buf,
			char **preload_buf, const char *const extra[])
{
	size_t n = env_entries(envp), n_extra = 0;
	while (extra[n_extra])
		n_extra++;
	char **env = malloc(child_env_slots(n, n_extra) * sizeof *env);
	*preload_buf = malloc(child_preload_bytes(envp));
	if (!env) {
		free(*preload_buf);
		*preload_buf = NULL;
		return NULL;
	}
	fill_child_env(env, n, *preload_buf, envp, ctx, traceparent_buf, extra);
	return env;
}

#define RELAY_ENTRY_SIZE (sizeof OA_RELAY_ENV + 192)

/* "OTLPAUTO_RELAY=..." for a child (hosting a relay now if this process can),
 * or "" when there is no relay to name. */
static void relay_entry(char *buf, bool own_ok)
{
	size_t prefix = sizeof OA_RELAY_ENV;
	memcpy(buf, OA_RELAY_ENV "=", prefix);
	if (!oa_relay_for_child(buf + prefix, RELAY_ENTRY_SIZE - prefix, own_ok))
		buf[0] = '\0';
}

/* The environment for a program this process starts and lives on beside
 * (spawn, system, popen): NULL to pass envp as it is. relay holds
 * RELAY_ENTRY_SIZE bytes. */
static char **beside_env(char *const envp[], const struct oa_span_ctx *ctx, char *traceparent,
			 char **preload, char *relay)
{
	if (!following_children())
		return NULL;
	relay_entry(relay, oa_can_host_relay());
	const char *extra[] = {relay, NULL};
	return child_env(envp, ctx, traceparent, preload, extra);
}

/* A span's name: what the call did, then the program's name. */
static void operation_name(char *buf, size_t size, const char *what, const char *program)
{
	struct oa_text t = oa_text_into(buf, size);
	oa_text_str(&t, what);
	oa_text_str(&t, program);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

enum exec_kind { EXEC_PATH, EXEC_SEARCH, EXEC_FD };

static int real_exec(enum exec_kind kind, const char *file, int fd, char *const argv[],
		     char *const envp[])
{
	switch (kind) {
	case EXEC_SEARCH:
		return oa_real_execvpe()(file, argv, envp);
	case EXEC_FD:
		return oa_real_fexecve()(fd, argv, envp);
	default:
		return oa_real_execve()(file, argv, envp);
	}
}

/* Beyond this many environment entries, a vfork child execs with the
 * caller's environment: it builds the new one on its stack. */
#define VFORK_ENV_MAX 1024

/* exec in a vfork child (see vfork below): the child runs in its parent's
 * memory, on the stack of the vforking thread, which is suspended until
 * this exec succeeds or the child exits. The exec span goes into that
 * thread's ring (the only producer, suspended meanwhile) and its parent
 * sends it, as for posix_spawn; the thread's frames stay open (they are the
 * parent's); nothing is flushed, started or allocated (an allocation would
 * stay in the parent's heap): the environment is built on this stack. */
static int exec_in_vfork_child(enum exec_kind kind, const char *file, int fd, char *const argv[],
			       char *const envp[])
{
	struct oa_thread *t = oa_tls.state;
	/* A guard beyond the vfork's own: the parent was inside a hook (a
	 * signal handler's vfork), or this is a vfork child's vfork. */
	if (!process_hooks_on() || (uintptr_t)t <= 1 || oa_tls.guard != 1 ||
	    __atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE ||
	    env_entries(envp) > VFORK_ENV_MAX)
		return real_exec(kind, file, fd, argv, envp);
	int saved_errno = errno;
	uint64_t start = oa_now();
	struct oa_span_ctx parent, ctx;
	oa_current_parent(t, &parent);
	oa_span_ctx_start(t, &parent, &ctx);
	char name[256];
	operation_name(name, sizeof name, "exec ", file ? base_name(file) : "fd");
	write_span(t, &parent, &ctx, name, file, start, 0, 0, false, OA_END_NORMAL, false);
	if (!following_children()) {
		errno = saved_errno;
		return real_exec(kind, file, fd, argv, envp);
	}
	char traceparent[12 + OA_TRACEPARENT_LEN + 1];
	char relay[RELAY_ENTRY_SIZE];
	relay_entry(relay, false);
	const char *extra[] = {relay, NULL};
	size_t n = env_entries(envp);
	char *env[child_env_slots(n, 1)];
	char preload[child_preload_bytes(envp)];
	fill_child_env(env, n, preload, envp, &ctx, traceparent, extra);
	errno = saved_errno;
	return real_exec(kind, file, fd, argv, env);
}

/* The file an exec variant will run, for the checks below; NULL if unknown. */
static const char *exec_path(enum exec_kind kind, const char *file, char *buf, size_t size)
{
	if (kind == EXEC_FD)
		return NULL;
	if (kind == EXEC_PATH)
		return file;
	return oa_exec_search(file, getenv("PATH"), buf, size) ? buf : NULL;
}

/* A memory file for the new program to read our pending spans from, left
 * open across the exec (the new program closes it); -1 when there is none. */
static int handoff_file(void)
{
	return (int)syscall(SYS_memfd_create, "otlpauto-handoff", 0u);
}

static void end_open_popens(struct oa_thread *t, enum oa_end_reason reason);
static void resume_popens(void);
/* Whether the thread has a frame of its own open that passes the filters
 * (not one a forked child inherited): the exec ends and sends it, under the
 * process span. */
static bool has_own_frame(struct oa_thread *t)
{
	uint32_t stored = t->depth < OA_MAX_FRAMES ? t->depth : OA_MAX_FRAMES;
	for (uint32_t i = 0; i < stored; i++)
		if (!t->frames[i].foreign && t->frames[i].filter != OA_FILTER_EXCLUDED)
			return true;
	return false;
}

/* Every exec variant ends here. What this process committed goes out first
 * (to the relay, or into a hand-over file the new program sends from); then
 * the exec span, the frames open now and the process span are sent
 * tentatively: held by the relay, or only in the hand-over file, until the
 * exec succeeds. A failed exec cancels them: the frames stay open, the
 * process span goes on, and the exec span is recorded as failed. Without a
 * relay, to a program that will not run the shim, everything is sent before
 * the exec as it must be. */
static int exec_common(enum exec_kind kind, const char *file, int fd, char *const argv[],
		       char *const envp[])
{
	if (__builtin_expect(oa_in_vfork_child(), 0))
		return exec_in_vfork_child(kind, file, fd, argv, envp);
	if (!oa_hook_enter())
		return real_exec(kind, file, fd, argv, envp);
	struct oa_thread *t = process_hooks_on() ? oa_thread_get() : NULL;
	if (!t) {
		oa_hook_leave();
		return real_exec(kind, file, fd, argv, envp);
	}
	int saved_errno = errno;
	uint64_t start = oa_now();
	uint64_t deadline = oa_mono_ns() + (uint64_t)oa_rt.cfg.export_timeout_ms * 1000000u;
	struct oa_span_ctx parent, ctx;
	bool own_span = oa_process_span_needed_at_exec(&parent) || has_own_frame(t);
	if (own_span)
		oa_current_parent(t, &parent);
	oa_span_ctx_start(t, &parent, &ctx);
	/* Spans that go nowhere need no hand-over file, nor the look at the
	 * program that decides whether the next image takes one: an exec that
	 * then fails resumes the frames as it does for any program. */
	enum oa_exec_target target = OA_EXEC_LOADS_PRELOAD;
	if (oa_rt.cfg.exporter != OA_EXPORTER_NONE) {
		char path_buf[4096];
		const char *path = exec_path(kind, file, path_buf, sizeof path_buf);
		target = oa_exec_target_check(path, kind == EXEC_FD ? fd : -1);
	}
	bool traced = following_children();
	bool follows = traced && target == OA_EXEC_LOADS_PRELOAD;
	int handoff = follows && oa_rt.cfg.exporter != OA_EXPORTER_NONE && !oa_relay_connected()
			  ? handoff_file()
			  : -1;
	/* A relay this process hosts: what its clients sent so far goes out
	 * with ours; the relay itself goes on in the next image, or ends here
	 * if that will not run the shim (their later frames are refused: they
	 * send them themselves; should the exec fail, this process hosts no
	 * relay from now on). */
	if (follows || target == OA_EXEC_UNRUNNABLE)
		oa_relay_host_drain(deadline);
	else
		oa_relay_host_end(deadline);
	char relay_host[sizeof OA_RELAY_HOST_ENV + 256] = "";
	bool host_kept =
	    follows && oa_relay_host_keep_across_exec(relay_host, sizeof relay_host, deadline);
	oa_exporter_exec_begin(handoff, deadline);
	/* A program that cannot be opened, or is not one, cannot be run either:
	 * nothing is ended before the exec fails (should it succeed after all,
	 * through a binfmt_misc handler, the exec and process spans are lost). */
	bool will_fail = target == OA_EXEC_UNRUNNABLE;

	uint32_t stored = t->depth < OA_MAX_FRAMES ? t->depth : OA_MAX_FRAMES;
	uint8_t foreign[OA_MAX_FRAMES];
	for (uint32_t i = 0; i < stored; i++)
		foreign[i] = t->frames[i].foreign;
	char name[256];
	operation_name(name, sizeof name, "exec ", file ? base_name(file) : "fd");
	bool held = true;
	if (!will_fail) {
		write_span(t, &parent, &ctx, name, file, start, 0, 0, false, OA_END_NORMAL, true);
		oa_families_thread_exit(t, OA_END_EXEC);
		end_open_popens(t, OA_END_EXEC);
		if (own_span)
			oa_process_span_end(t, OA_END_EXEC);
		held = oa_exporter_exec_tentative(deadline);
	}
	oa_relay_report(false, false, deadline);

	char traceparent[12 + OA_TRACEPARENT_LEN + 1];
	char relay[RELAY_ENTRY_SIZE] = "";
	if (!host_kept) /* the next image hosts it: it does not connect to it */
		relay_entry(relay, false);
	int kept = oa_relay_keep_across_exec(follows);
	if (relay[0] && kept >= 0 && follows) {
		size_t len = strlen(relay);
		struct oa_text kept_fd = oa_text_into(relay + len, sizeof relay - len);
		oa_text_mem(&kept_fd, "#", 1);
		oa_text_int(&kept_fd, kept);
	}
	char handoff_entry[sizeof HANDOFF_ENV + 16] = "";
	if (handoff >= 0) {
		struct oa_text entry = oa_text_into(handoff_entry, sizeof handoff_entry);
		oa_text_str(&entry, HANDOFF_ENV "=");
		oa_text_int(&entry, handoff);
	}
	const char *extra[] = {relay, relay_host, handoff_entry, NULL};
	char *preload = NULL;
	char **env = traced ? child_env(envp, &ctx, traceparent, &preload, extra) : NULL;
	errno = saved_errno;
	int r = real_exec(kind, file, fd, argv, env ? env : envp);
	saved_errno = errno;

	oa_relay_keep_across_exec(false);
	if (host_kept)
		oa_relay_host_exec_failed();
	oa_exporter_exec_failed();
	if (handoff >= 0)
		syscall(SYS_close, handoff);
	if (held) {
		for (uint32_t i = 0; i < stored; i++)
			t->frames[i].foreign = foreign[i];
		resume_popens();
		oa_process_span_resume();
		/* A forked child that goes on sends its process span at exit: the
		 * failed exec span is its child, not a sibling. */
		if (!own_span)
			oa_current_parent(t, &parent);
		struct oa_span_ctx failed = ctx;
		failed.span_id = oa_new_span_id(&t->rng);
		write_span(t, &parent, &failed, name, file, start, saved_errno, 0, false,
			   OA_END_NORMAL, false);
	}
	free(env);
	free(preload);
	oa_hook_leave();
	errno = saved_errno;
	return r;
}

OA_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return exec_common(EXEC_PATH, path, -1, argv, envp);
}

OA_EXPORT int execv(const char *path, char *const argv[])
{
	return exec_common(EXEC_PATH, path, -1, argv, environ);
}

OA_EXPORT int execvp(const char *file, char *const argv[])
{
	return exec_common(EXEC_SEARCH, file, -1, argv, environ);
}

OA_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return exec_common(EXEC_SEARCH, file, -1, argv, envp);
}

OA_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return exec_common(EXEC_FD, NULL, fd, argv, envp);
}

/* execl, execlp and execle: the variadic arguments up to the terminating
 * NULL (and execle's environment after it) are gathered into a stack array
 * for exec_common. A macro, written once: the array lives in the hook's
 * own frame. */
#define EXEC_LIST_HOOK(name, how, with_envp)                                                       \
	OA_EXPORT int name(const char *file, const char *arg, ...)                                 \
	{                                                                                          \
		va_list ap, probe;                                                                 \
		va_start(ap, arg);                                                                 \
		size_t count = 1;                                                                  \
		va_copy(probe, ap);                                                                \
		while (va_arg(probe, char *))                                                      \
			count++;                                                                   \
		va_end(probe);                                                                     \
		char **argv = alloca((count + 1) * sizeof *argv);                                  \
		argv[0] = (char *)arg;                                                             \
		for (size_t i = 1; i <= count; i++)                                                \
			argv[i] = va_arg(ap, char *);                                              \
		char **envp = with_envp ? va_arg(ap, char **) : environ;                           \
		va_end(ap);                                                                        \
		return exec_common(how, file, -1, argv, envp);                                     \
	}

EXEC_LIST_HOOK(execl, EXEC_PATH, false)
EXEC_LIST_HOOK(execlp, EXEC_SEARCH, false)
EXEC_LIST_HOOK(execle, EXEC_PATH, true)

static int spawn_common(bool search, pid_t *pid, const char *file,
			const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
			char *const argv[], char *const envp[])
{
	struct oa_thread *t = NULL;
	if (oa_hook_enter()) {
		t = process_hooks_on() ? oa_thread_get() : NULL;
		if (!t)
			oa_hook_leave();
	}
	if (!t) {
		return search ? oa_real_posix_spawnp()(pid, file, actions, attr, argv, envp)
			      : oa_real_posix_spawn()(pid, file, actions, attr, argv, envp);
	}
	int saved_errno = errno;
	uint64_t start = oa_now();
	char traceparent[12 + OA_TRACEPARENT_LEN + 1];
	char *preload = NULL;
	struct oa_span_ctx parent, ctx;
	oa_current_parent(t, &parent);
	oa_span_ctx_start(t, &parent, &ctx);
	char relay[RELAY_ENTRY_SIZE];
	char **env = beside_env(envp, &ctx, traceparent, &preload, relay);
	errno = saved_errno;
	int r = search ? oa_real_posix_spawnp()(pid, file, actions, attr, argv, env ? env : envp)
		       : oa_real_posix_spawn()(pid, file, actions, attr, argv, env ? env : envp);
	saved_errno = errno;
	char name[256];
	operation_name(name, sizeof name, "spawn ", base_name(file));
	write_span(t, &parent, &ctx, name, file, start, r, 0, false, OA_END_NORMAL, false);
	free(env);
	free(preload);
	oa_hook_leave();
	errno = saved_errno;
	return r;
}

OA_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return spawn_common(false, pid, path, actions, attr, argv, envp);
}

OA_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	return spawn_common(true, pid, file, actions, attr, argv, envp);
}

/* system() and popen() are ours: glibc's spawn /bin/sh with the process
 * environment, where a TRACEPARENT could only be put by editing that
 * environment under other threads' getenv. Both follow glibc 2.36
 * (sysdeps/posix/system.c, libio/iopopen.c) step by step, over the real
 * posix_spawn with child_env(). */
#define SHELL_PATH "/bin/sh"

/* While any thread waits in system(), SIGINT and SIGQUIT are ignored: the
 * first waiter saves their dispositions, the last restores them. */
static pthread_mutex_t system_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned system_waiters;
static struct sigaction system_saved_intr, system_saved_quit;

/* The streams popen() made, until pclose: the descriptors a later popen's
 * shell must not inherit (POSIX), and each command's span. */
struct popen_stream {
	struct popen_stream *next;
	FILE *stream;
	int fd;
	pid_t pid;
	pid_t owner; /* a forked child inherits the streams, not the shells */
	bool span_open;
	bool ended_by_exec; /* sent tentatively with an exec that may fail */
	uint64_t start;
	struct oa_span_ctx parent, ctx;
};
static pthread_mutex_t popen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct popen_stream *popen_streams;
static size_t popen_count; /* atomic: fclose's test without the lock */

/* A fork never leaves a child these locks held by a thread it lacks. */
static void process_locks_prepare(void)
{
	pthread_mutex_lock(&system_lock);
	pthread_mutex_lock(&popen_lock);
}

static void process_locks_release(void)
{
	pthread_mutex_unlock(&popen_lock);
	pthread_mutex_unlock(&system_lock);
}

static void register_atfork(void)
{
	pthread_atfork(process_locks_prepare, process_locks_release, process_locks_release);
}

static void process_locks_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_atfork);
}

/* Sets *reset to the signals the shell gets back at their default action. */
static void system_ignore_interrupts(sigset_t *reset)
{
	struct sigaction ignore = {.sa_handler = SIG_IGN};
	sigemptyset(&ignore.sa_mask);
	pthread_mutex_lock(&system_lock);
	if (system_waiters++ == 0) {
		oa_real_sigaction()(SIGINT, &ignore, &system_saved_intr);
		oa_real_sigaction()(SIGQUIT, &ignore, &system_saved_quit);
	}
	sigemptyset(reset);
	if (system_saved_intr.sa_handler != SIG_IGN)
		sigaddset(reset, SIGINT);
	if (system_saved_quit.sa_handler != SIG_IGN)
		sigaddset(reset, SIGQUIT);
	pthread_mutex_unlock(&system_lock);
}

static void system_restore_interrupts(void)
{
	pthread_mutex_lock(&system_lock);
	if (--system_waiters == 0) {
		oa_real_sigaction()(SIGINT, &system_saved_intr, NULL);
		oa_real_sigaction()(SIGQUIT, &system_saved_quit, NULL);
	}
	pthread_mutex_unlock(&system_lock);
}

struct system_call {
	struct oa_thread *t;
	struct oa_span_ctx parent, ctx;
	uint64_t start;
	pid_t pid;
	sigset_t caller_mask;
};

/* The thread was cancelled in waitpid: as glibc, the shell is killed and
 * reaped and the dispositions restored; the span is sent (the shell was
 * told it is its parent) and the hook left. */
static void system_cancelled(void *arg)
{
	struct system_call *call = arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	kill(call->pid, SIGKILL);
	while (waitpid(call->pid, NULL, 0) == -1 && errno == EINTR)
		;
	system_restore_interrupts();
	pthread_sigmask(SIG_SETMASK, &call->caller_mask, NULL);
	write_span(call->t, &call->parent, &call->ctx, "system", SHELL_PATH, call->start, ECANCELED,
		   0, false, OA_END_NORMAL, false);
	oa_hook_leave();
}

/* waitpid, a cancellation point as glibc's system() is; the status, or -1
 * with errno. */
static int system_wait(struct system_call *call)
{
	int status;
	pid_t waited;
	pthread_cleanup_push(system_cancelled, call);
	do
		waited = waitpid(call->pid, &status, 0);
	while (waited == -1 && errno == EINTR);
	pthread_cleanup_pop(0);
	return waited == call->pid ? status : -1;
}

/* The shell runs `command` with SIGCHLD blocked in the caller, SIGINT and
 * SIGQUIT ignored in the caller and at their default in the shell (unless
 * the caller ignored them), and the caller's signal mask. Returns the wait
 * status (a shell that could not start is exit status 127), *err the error
 * for errno. */
static int traced_system(struct oa_thread *t, const char *command, int *err_out)
{
	struct system_call call = {.t = t, .start = oa_now()};
	oa_current_parent(t, &call.parent);
	oa_span_ctx_start(t, &call.parent, &call.ctx);
	char traceparent[12 + OA_TRACEPARENT_LEN + 1];
	char *preload = NULL;
	char relay[RELAY_ENTRY_SIZE];
	char **env = beside_env(environ, &call.ctx, traceparent, &preload, relay);
	process_locks_init();
	sigset_t reset, sigchld;
	system_ignore_interrupts(&reset);
	sigemptyset(&sigchld);
	sigaddset(&sigchld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &sigchld, &call.caller_mask);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &call.caller_mask);
	posix_spawnattr_setsigdefault(&attr, &reset);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	char *argv[] = {"sh", "-c", (char *)command, NULL};
	int err =
	    oa_real_posix_spawn()(&call.pid, SHELL_PATH, NULL, &attr, argv, env ? env : environ);
	posix_spawnattr_destroy(&attr);
	free(env);
	free(preload);
	int status = W_EXITCODE(127, 0);
	if (err == 0) {
		status = system_wait(&call);
		if (status == -1)
			err = errno;
	}
	system_restore_interrupts();
	pthread_sigmask(SIG_SETMASK, &call.caller_mask, NULL);
	bool exited = err == 0 && WIFEXITED(status);
	write_span(t, &call.parent, &call.ctx, "system", SHELL_PATH, call.start, err,
		   exited ? WEXITSTATUS(status) : 0, exited, OA_END_NORMAL, false);
	*err_out = err;
	return status;
}

OA_EXPORT int system(const char *command)
{
	/* system(NULL) only asks whether a shell exists: glibc's answers. */
	struct oa_thread *t = NULL;
	if (command && oa_hook_enter()) {
		t = process_hooks_on() ? oa_thread_get() : NULL;
		if (!t)
			oa_hook_leave();
	}
	if (!t)
		return oa_real_system()(command);
	int saved_errno = errno, err;
	int status = traced_system(t, command, &err);
	oa_hook_leave();
	errno = err ? err : saved_errno;
	return status;
}

/* The shell of a new stream, with our end of the pipe open in `stream`;
 * inserts s among the open streams. Returns 0 or the error. */
static int spawn_popen_shell(struct popen_stream *s, const char *command, FILE *stream, int fds[2],
			     int parent_end, int child_fd, bool cloexec)
{
	int child_end = 1 - parent_end;
	char traceparent[12 + OA_TRACEPARENT_LEN + 1];
	char *preload = NULL;
	char relay[RELAY_ENTRY_SIZE];
	char **env = beside_env(environ, &s->ctx, traceparent, &preload, relay);
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	int err = posix_spawn_file_actions_adddup2(&actions, fds[child_end], child_fd);
	process_locks_init();
	pthread_mutex_lock(&popen_lock);
	for (struct popen_stream *open = popen_streams; open && !err; open = open->next)
		if (open->fd != child_fd)
			err = posix_spawn_file_actions_addclose(&actions, open->fd);
	char *argv[] = {"sh", "-c", (char *)command, NULL};
	if (!err)
		err = oa_real_posix_spawn()(&s->pid, SHELL_PATH, &actions, NULL, argv,
					    env ? env : environ);
	if (!err) {
		close(fds[child_end]);
		if (!cloexec)
			fcntl(fds[parent_end], F_SETFD, 0);
		s->stream = stream;
		s->fd = fds[parent_end];
		s->owner = getpid();
		s->span_open = true;
		s->next = popen_streams;
		popen_streams = s;
		__atomic_store_n(&popen_count, __atomic_load_n(&popen_count, __ATOMIC_RELAXED) + 1,
				 __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&popen_lock);
	posix_spawn_file_actions_destroy(&actions);
	free(env);
	free(preload);
	return err;
}

/* Opens s->stream as glibc does: a close-on-exec pipe, the child's end on
 * the shell's stdin or stdout, ours close-on-exec only with "e". Returns 0
 * or the error, with errno as popen() reports it. */
static int open_popen_stream(struct popen_stream *s, const char *command, bool reading,
			     bool cloexec)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return errno;
	int parent_end = reading ? 0 : 1, child_end = 1 - parent_end;
	int child_fd = reading ? STDOUT_FILENO : STDIN_FILENO;
	int err = 0;
	FILE *stream = NULL;
	if (fds[child_end] == child_fd) {
		/* dup2 onto itself would leave it close-on-exec: moved */
		int moved = fcntl(child_fd, F_DUPFD_CLOEXEC, 0);
		if (moved >= 0) {
			close(fds[child_end]);
			fds[child_end] = moved;
		} else {
			err = errno;
		}
	}
	if (!err) {
		stream = fdopen(fds[parent_end], reading ? "r" : "w");
		if (!stream)
			err = errno;
	}
	if (!err)
		err = spawn_popen_shell(s, command, stream, fds, parent_end, child_fd, cloexec);
	if (!err)
		return 0;
	if (stream)
		oa_real_fclose()(stream);
	else
		close(fds[parent_end]);
	close(fds[child_end]);
	errno = ENOMEM;
	return err;
}

static FILE *traced_popen(struct oa_thread *t, const char *command, const char *mode)
{
	bool reading = false, writing = false, cloexec = false;
	for (const char *m = mode; *m; m++) {
		if (*m == 'r')
			reading = true;
		else if (*m == 'w')
			writing = true;
		else if (*m == 'e')
			cloexec = true;
		else
			reading = writing = true; /* invalid */
	}
	if (reading == writing) {
		errno = EINVAL;
		return NULL;
	}
	struct popen_stream *s = malloc(sizeof *s);
	if (!s)
		return NULL;
	s->start = oa_now();
	oa_current_parent(t, &s->parent);
	oa_span_ctx_start(t, &s->parent, &s->ctx);
	int err = open_popen_stream(s, command, reading, cloexec);
	if (!err)
		return s->stream;
	int popen_errno = errno;
	write_span(t, &s->parent, &s->ctx, "popen", SHELL_PATH, s->start, err, 0, false,
		   OA_END_NORMAL, false);
	free(s);
	errno = popen_errno;
	return NULL;
}

/* popen's span runs from popen to pclose; the command's spans are its
 * children. */
OA_EXPORT FILE *popen(const char *command, const char *mode)
{
	struct oa_thread *t = NULL;
	if (oa_hook_enter()) {
		t = process_hooks_on() ? oa_thread_get() : NULL;
		if (!t)
			oa_hook_leave();
	}
	if (!t)
		return oa_real_popen()(command, mode);
	int saved_errno = errno;
	FILE *stream = traced_popen(t, command, mode);
	if (stream)
		errno = saved_errno;
	oa_hook_leave();
	return stream;
}

static struct popen_stream *take_popen_stream(FILE *stream)
{
	if (!__atomic_load_n(&popen_count, __ATOMIC_RELAXED))
		return NULL;
	pthread_mutex_lock(&popen_lock);
	struct popen_stream **link = &popen_streams;
	while (*link && (*link)->stream != stream)
		link = &(*link)->next;
	struct popen_stream *s = *link;
	if (s) {
		*link = s->next;
		__atomic_store_n(&popen_count, __atomic_load_n(&popen_count, __ATOMIC_RELAXED) - 1,
				 __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&popen_lock);
	return s;
}

/* glibc's pclose (also its fclose of a popen stream): flush and close, then
 * wait for the shell, unless the close failed; the wait status, or -1 when
 * the wait failed or the flush did and the status is 0. */
static int close_popen_stream(struct popen_stream *s)
{
	bool ours = s->owner == getpid();
	int close_failed = oa_real_fclose()(s->stream) != 0;
	int err = 0, wstatus = 0, status = -1;
	if (close_failed && errno == EBADF) {
		err = EBADF;
	} else if (!ours) {
		err = errno = ECHILD; /* the parent's shell: not ours to wait for */
	} else {
		int cancel_state;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
		pid_t waited;
		do
			waited = waitpid(s->pid, &wstatus, 0);
		while (waited == -1 && errno == EINTR);
		pthread_setcancelstate(cancel_state, NULL);
		if (waited == -1)
			err = errno;
		else
			status = wstatus != 0 ? wstatus : close_failed ? -1 : 0;
	}
	int saved_errno = errno;
	if (s->span_open && ours && oa_hook_enter()) {
		struct oa_thread *t = process_hooks_on() ? oa_thread_get() : NULL;
		bool exited = !err && WIFEXITED(wstatus);
		if (t)
			write_span(t, &s->parent, &s->ctx, "popen", SHELL_PATH, s->start, err,
				   exited ? WEXITSTATUS(wstatus) : 0, exited, OA_END_NORMAL, false);
		oa_hook_leave();
	}
	free(s);
	errno = saved_errno;
	return status;
}

OA_EXPORT int pclose(FILE *stream)
{
	struct popen_stream *s = take_popen_stream(stream);
	return s ? close_popen_stream(s) : oa_real_pclose()(stream);
}

/* In glibc, fclose of a popen stream is its pclose. */
OA_EXPORT int fclose(FILE *stream)
{
	struct popen_stream *s = take_popen_stream(stream);
	return s ? close_popen_stream(s) : oa_real_fclose()(stream);
}

/* Takes the span of a stream of this process still open (marked sent);
 * false when there is none, or when the lock is not had within 10 ms: this
 * thread may hold it (a handler interrupted popen). */
static bool take_open_popen_span(struct popen_stream *out, bool exec)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_nsec += 10 * 1000 * 1000;
	if (deadline.tv_nsec >= 1000 * 1000 * 1000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000 * 1000 * 1000;
	}
	if (pthread_mutex_timedlock(&popen_lock, &deadline) != 0)
		return false;
	pid_t self = getpid();
	struct popen_stream *s = popen_streams;
	while (s && !(s->span_open && s->owner == self))
		s = s->next;
	if (s) {
		*out = *s;
		s->span_open = false;
		s->ended_by_exec = exec;
	}
	pthread_mutex_unlock(&popen_lock);
	return s != NULL;
}

/* Streams still open at exec or exit: their commands' spans name them as
 * parent, so they are sent now (pclose sends no second one). Written
 * outside the lock: a blocking ring must not stall other threads' fclose. */
static void end_open_popens(struct oa_thread *t, enum oa_end_reason reason)
{
	struct popen_stream s;
	while (__atomic_load_n(&popen_count, __ATOMIC_RELAXED) &&
	       take_open_popen_span(&s, reason == OA_END_EXEC))
		write_span(t, &s.parent, &s.ctx, "popen", SHELL_PATH, s.start, 0, 0, false, reason,
			   reason == OA_END_EXEC);
}

/* After a failed exec: the streams it ended are open again. */
static void resume_popens(void)
{
	if (!__atomic_load_n(&popen_count, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&popen_lock);
	for (struct popen_stream *s = popen_streams; s; s = s->next)
		if (s->ended_by_exec) {
			s->span_open = true;
			s->ended_by_exec = false;
		}
	pthread_mutex_unlock(&popen_lock);
}

/* Sends the spans of popen streams still open; not from a signal handler
 * or _exit: they are found under a lock another thread may hold. */
static void end_popens_at_exit(bool async)
{
	if (async)
		return;
	struct oa_thread *t =
	    __atomic_load_n(&popen_count, __ATOMIC_RELAXED) ? oa_thread_get() : NULL;
	if (t)
		end_open_popens(t, OA_END_PROCESS_EXIT);
}

OA_REAL(pid_t, _Fork, (void), -1)
OA_REAL(int, clone, (int (*a0)(void *), void *a1, int a2, void *a3, ...), -1)

/* _Fork runs no atfork handlers (it may be called from a signal handler):
 * the same work is done here, without their waits and locks. */
OA_EXPORT pid_t _Fork(void)
{
	pid_t (*real)(void) = oa_real__Fork();
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	oa_fork_fix_parent();
	pid_t pid = real();
	if (pid == 0)
		oa_fork_child();
	return pid;
}

struct clone_start {
	int (*fn)(void *);
	void *arg;
};

/* In the child, on the copy of the parent's memory. */
static int forked_clone_start(void *arg)
{
	struct clone_start *start = arg;
	oa_fork_child();
	return start->fn(start->arg);
}

static void vfork_marks_set(void);
static void vfork_marks_clear(void);

/* clone runs no atfork handlers either. Without CLONE_VM the child is a
 * fork: reset before fn runs. With CLONE_VM and CLONE_VFORK (a spawn), the
 * child runs on its own stack but with the suspended caller's TLS and
 * memory: as a vfork child. CLONE_VM alone (a thread) is not ours to
 * touch. */
OA_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	pid_t *parent_tid = va_arg(ap, pid_t *);
	void *tls = va_arg(ap, void *);
	pid_t *child_tid = va_arg(ap, pid_t *);
	va_end(ap);
	if (!(flags & CLONE_VM)) {
		struct clone_start start = {fn, arg};
		oa_fork_fix_parent();
		return oa_real_clone()(forked_clone_start, stack, flags, &start, parent_tid, tls,
				       child_tid);
	}
	if (!(flags & CLONE_VFORK) || (flags & CLONE_SETTLS))
		return oa_real_clone()(fn, stack, flags, arg, parent_tid, tls, child_tid);
	vfork_marks_set();
	int r = oa_real_clone()(fn, stack, flags, arg, parent_tid, tls, child_tid);
	int saved_errno = errno;
	vfork_marks_clear();
	errno = saved_errno;
	return r;
}

/* vfork's child (and a CLONE_VM | CLONE_VFORK child's) runs on its parent
 * thread's TLS: the marks that make its hooks pass through (the guard) and
 * its exec and exit take the vfork paths are set before the system call;
 * the parent clears them when it resumes. */
static void vfork_marks_set(void)
{
	/* The thread's state now, so that the child's exec has a ring for its
	 * span without mapping one. */
	if (process_hooks_on() && oa_hook_enter()) {
		oa_thread_get();
		oa_hook_leave();
	}
	oa_tls.vfork_child++;
	oa_tls.guard++;
}

static void vfork_marks_clear(void)
{
	oa_tls.guard--;
	oa_tls.vfork_child--;
}

/* Sanitizers keep shadow state for each stack frame: a child running on its
 * parent's stack, past their own vfork interceptor, trips them. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* vfork stays vfork: no copy of the address space (so no ENOMEM under
 * strict overcommit, no page-table copy), the parent suspended until the
 * child execs or exits, memory shared meanwhile. */
__attribute__((used, visibility("hidden"))) void oa_vfork_prepare(void);
void oa_vfork_prepare(void)
{
	vfork_marks_set();
}

/* The parent resumes (or vfork failed): ret is the system call's. */
__attribute__((used, visibility("hidden"))) pid_t oa_vfork_parent(long ret);
pid_t oa_vfork_parent(long ret)
{
	vfork_marks_clear();
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return (pid_t)ret;
}

/* Like glibc's: the child returns first and calls on, overwriting whatever
 * lies below the stack pointer, so nothing the parent needs after the
 * system call is kept there: the return address waits in %rdi (the kernel
 * keeps each process's registers), and the parent's C part is entered by a
 * tail jump, from the stack pointer the caller had. */
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	"vfork:\n"
	"	.cfi_startproc\n"
#ifdef __CET__
	"	endbr64\n"
#endif
	"	subq $8, %rsp\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	call oa_vfork_prepare\n"
	"	addq $8, %rsp\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	popq %rdi\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	.cfi_register %rip, %rdi\n"
	"	movl $58, %eax\n" /* __NR_vfork */
	"	syscall\n"
	"	pushq %rdi\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	.cfi_rel_offset %rip, 0\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	movq %rax, %rdi\n"
	"	jmp oa_vfork_parent\n"
	"1:	ret\n"
	"	.cfi_endproc\n"
	"	.size vfork, .-vfork\n");
#else
OA_REAL(pid_t, fork, (void), -1)

/* Elsewhere (and in sanitized builds) a vfork child would write into its
 * parent's rings: it runs as a fork (the child runs, then execs or exits). */
OA_EXPORT pid_t vfork(void)
{
	return oa_real_fork()();
}
#endif

/* The exit code of the process span: main's return value (glibc calls
 * exit() for it from inside libc, where no hook sees it), or what the program
 * passes to exit, _exit or _Exit. */
static int (*program_main)(int, char **, char **);

static int main_returning_its_status(int argc, char **argv, char **envp)
{
	int status = program_main(argc, argv, envp);
	oa_process_span_exit_code(status & 0xff);
	return status;
}

int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv, void (*init)(void),
		      void (*fini)(void), void (*rtld_fini)(void), void *stack_end);
OA_EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
				void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
				void *stack_end)
{
	int (*real)(int (*)(int, char **, char **), int, char **, void (*)(void), void (*)(void),
		    void (*)(void), void *) = oa_real___libc_start_main();
	program_main = main;
	oa_self_set_args(argc, argv);
	return real(main_returning_its_status, argc, argv, init, fini, rtld_fini, stack_end);
}

OA_EXPORT void exit(int status)
{
	oa_process_span_exit_code(status & 0xff);
	oa_real_exit()(status);
	__builtin_unreachable();
}

/* Resolves the real _exit and _Exit now: the hooks may be called from a
 * signal handler, where dlsym must not be. */
static void exit_hooks_init(void)
{
	oa_real__exit();
	oa_real__Exit();
}

/* What a forked child calls next: found once in the parent, not in every
 * child (a dlsym and six page faults in the loader per command of a traced
 * shell loop). */
static void resolve_for_children(void)
{
	oa_real_execve();
	oa_real_exit();
}

OA_FAMILY(process) = {
    .name = "process",
    .init = exit_hooks_init,
    .atfork_prepare = resolve_for_children,
    .process_exit = end_popens_at_exit,
};

/* _exit is async-signal-safe: programs call it from signal handlers, where
 * only the async-signal-safe exit path may run (their handlers run inside
 * ours, which says so: hooks/signals.c). Elsewhere (a shell, a forked
 * child) it is an exit like any other. */
static void exit_now(int status)
{
	oa_process_span_exit_code(status & 0xff);
	if (oa_tls.in_signal)
		oa_process_exit_async();
	else
		oa_process_exit();
}

OA_EXPORT void _exit(int status)
{
	exit_now(status);
	oa_real__exit()(status);
	__builtin_unreachable();
}

OA_EXPORT void _Exit(int status)
{
	exit_now(status);
	oa_real__Exit()(status);
	__builtin_unreachable();
}
