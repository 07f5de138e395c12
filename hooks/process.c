/* Process hooks: exec (flush first, then hand the new program our settings
 * and a TRACEPARENT naming an exec span that has already been sent),
 * posix_spawn and system (the same hand-over, without a flush: this process
 * goes on and sends the span later), vfork (run as fork so the child cannot
 * write into its parent's memory), and _exit/_Exit (bounded flush). */
#include <alloca.h>
#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "exec_target.h"
#include "lifecycle.h"
#include "payload.h"
#include "process_span.h"
#include "real.h"
#include "relay.h"
#include "runtime.h"
#include "traceparent.h"

#define OA_EXPORT __attribute__((visibility("default")))

OA_REAL(int, execve, (const char *, char *const[], char *const[]))
OA_REAL(int, execvpe, (const char *, char *const[], char *const[]))
OA_REAL(int, fexecve, (int, char *const[], char *const[]))
OA_REAL(int, posix_spawn,
	(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
	 char *const[], char *const[]))
OA_REAL(int, posix_spawnp,
	(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
	 char *const[], char *const[]))
OA_REAL(int, system, (const char *))
OA_REAL(pid_t, fork, (void))
OA_REAL(void, _exit, (int))
OA_REAL(void, exit, (int))
OA_REAL(int, __libc_start_main,
	(int (*)(int, char **, char **), int, char **, void (*)(void), void (*)(void),
	 void (*)(void), void *))
OA_REAL(void, _Exit, (int))

static bool process_hooks_on(void)
{
	return (oa_rt.cfg.hooks & OA_HOOK_PROCESS) != 0;
}

/* Writes a finished process span (exec, spawn, system) with context ctx. */
static void write_span(struct oa_thread *t, const struct oa_span_ctx *parent,
		       const struct oa_span_ctx *ctx, const char *name, const char *path,
		       uint64_t start, int err, int exit_code, bool has_exit_code, bool flush_next)
{
	if (!(ctx->flags & 1))
		return;
	size_t name_len = strlen(name), path_len = path ? strlen(path) : 0;
	struct oa_record *rec =
	    oa_record_begin(t, (uint32_t)(3 + name_len + 5 + path_len + 8 + 11 + 16));
	if (!rec)
		return;
	rec->kind = OA_KIND_INTERNAL;
	rec->status = err ? OA_STATUS_ERROR : OA_STATUS_UNSET;
	rec->scope = OA_SCOPE_PROCESS;
	rec->name_source = OA_NAME_PAYLOAD;
	rec->trace_flags = ctx->flags;
	rec->rec_flags = oa_rec_flags(parent);
	rec->end_reason = OA_END_NORMAL;
	rec->tid = t->tid;
	memcpy(rec->trace_id, ctx->trace_id, 16);
	rec->span_id = ctx->span_id;
	rec->parent_span_id = parent->span_id;
	rec->start = start;
	rec->end = oa_now();
	rec->subject = 0;
	struct oa_payload w;
	oa_payload_init(&w, rec);
	oa_payload_text(&w, OA_ITEM_NAME, name, name_len);
	if (path)
		oa_payload_attr_str(&w, OA_KEY_PROCESS_EXECUTABLE_PATH, path, path_len);
	if (err)
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	if (has_exit_code)
		oa_payload_attr_int(&w, OA_KEY_PROCESS_EXIT_CODE, exit_code);
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
static const char *const own_entries[] = {"TRACEPARENT=", OA_RELAY_ENV "=", HANDOFF_ENV "="};

static bool is_own_entry(const char *entry)
{
	for (size_t i = 0; i < sizeof own_entries / sizeof own_entries[0]; i++)
		if (has_name(entry, own_entries[i], strlen(own_entries[i])))
			return true;
	return false;
}

/* The environment for a new program: the caller's, plus our settings where
 * it dropped them, LD_PRELOAD naming this library, TRACEPARENT, and `extra`
 * (NULL-terminated: the relay, the hand-over; empty strings skipped). */
static char **child_env(char *const envp[], const struct oa_span_ctx *ctx, char *traceparent_buf,
			char **preload_buf, const char *const extra[])
{
	size_t n_saved;
	const char *const *saved = oa_saved_settings(&n_saved);
	size_t n = 0;
	for (char *const *e = envp; e && *e; e++)
		n++;
	size_t n_extra = 0;
	while (extra[n_extra])
		n_extra++;
	char **env = malloc((n + n_saved + n_extra + 3) * sizeof *env);
	if (!env)
		return NULL;
	size_t out = 0;
	const char *preload = NULL;
	for (char *const *e = envp; e && *e; e++) {
		if (is_own_entry(*e))
			continue;
		if (has_name(*e, "LD_PRELOAD=", 11)) {
			preload = *e + 11;
			continue;
		}
		env[out++] = *e;
	}
	for (size_t i = 0; i < n_saved; i++) {
		if (is_own_entry(saved[i]))
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
	*preload_buf = NULL;
	if (preload && self[0] && !strstr(preload, self)) {
		size_t len = 11 + strlen(self) + 1 + strlen(preload) + 1;
		*preload_buf = malloc(len);
		if (*preload_buf)
			snprintf(*preload_buf, len, "LD_PRELOAD=%s:%s", self, preload);
	} else if (self[0]) {
		size_t len = 11 + strlen(preload ? preload : self) + 1;
		*preload_buf = malloc(len);
		if (*preload_buf)
			snprintf(*preload_buf, len, "LD_PRELOAD=%s", preload ? preload : self);
	}
	if (*preload_buf)
		env[out++] = *preload_buf;
	struct oa_span_context sc;
	memcpy(sc.trace_id, ctx->trace_id, 16);
	oa_span_id_to_bytes(ctx->span_id, sc.span_id);
	sc.flags = ctx->flags;
	memcpy(traceparent_buf, "TRACEPARENT=", 12);
	oa_traceparent_format(&sc, traceparent_buf + 12);
	env[out++] = traceparent_buf;
	for (size_t i = 0; i < n_extra; i++)
		if (extra[i][0])
			env[out++] = (char *)extra[i];
	env[out] = NULL;
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
	char path_buf[4096];
	const char *path = exec_path(kind, file, path_buf, sizeof path_buf);
	enum oa_exec_target target = oa_exec_target_check(path, kind == EXEC_FD ? fd : -1);
	bool follows = target == OA_EXEC_LOADS_PRELOAD;
	int handoff = follows && !oa_relay_connected() ? handoff_file() : -1;
	oa_exporter_exec_begin(handoff, deadline);
	/* A program that cannot be opened cannot be run either: nothing is
	 * ended before the exec fails (should it succeed after all, the exec
	 * and process spans are lost). */
	bool will_fail = target == OA_EXEC_UNOPENABLE;

	uint32_t stored = t->depth < OA_MAX_FRAMES ? t->depth : OA_MAX_FRAMES;
	uint8_t foreign[OA_MAX_FRAMES];
	for (uint32_t i = 0; i < stored; i++)
		foreign[i] = t->frames[i].foreign;
	char name[256];
	snprintf(name, sizeof name, "exec %s", file ? base_name(file) : "fd");
	bool held = true;
	if (!will_fail) {
		write_span(t, &parent, &ctx, name, file, start, 0, 0, false, true);
		oa_frames_end_all(t, OA_END_EXEC);
		if (own_span)
			oa_process_span_end(t, OA_END_EXEC);
		held = oa_exporter_exec_tentative(deadline);
	}

	char traceparent[12 + OA_TRACEPARENT_LEN + 1];
	char relay[RELAY_ENTRY_SIZE];
	relay_entry(relay, false);
	int kept = oa_relay_keep_across_exec(follows);
	if (relay[0] && kept >= 0 && follows)
		snprintf(relay + strlen(relay), sizeof relay - strlen(relay), "#%d", kept);
	char handoff_entry[sizeof HANDOFF_ENV + 16] = "";
	if (handoff >= 0)
		snprintf(handoff_entry, sizeof handoff_entry, HANDOFF_ENV "=%d", handoff);
	const char *extra[] = {relay, handoff_entry, NULL};
	char *preload = NULL;
	char **env = child_env(envp, &ctx, traceparent, &preload, extra);
	errno = saved_errno;
	int r = real_exec(kind, file, fd, argv, env ? env : envp);
	saved_errno = errno;

	oa_relay_keep_across_exec(false);
	oa_exporter_exec_failed();
	if (handoff >= 0)
		syscall(SYS_close, handoff);
	if (held) {
		for (uint32_t i = 0; i < stored; i++)
			t->frames[i].foreign = foreign[i];
		oa_process_span_resume();
		/* A forked child that goes on sends its process span at exit: the
		 * failed exec span is its child, not a sibling. */
		if (!own_span)
			oa_current_parent(t, &parent);
		struct oa_span_ctx failed = ctx;
		failed.span_id = oa_new_span_id(&t->rng);
		write_span(t, &parent, &failed, name, file, start, saved_errno, 0, false, false);
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

/* execl and friends: gathers the variadic arguments up to the terminating
 * NULL into a stack array (a macro: the array must live in the caller). */
#define COLLECT_ARGS(first, ap, argv)                                                              \
	do {                                                                                       \
		size_t count = 1;                                                                  \
		va_list probe;                                                                     \
		va_copy(probe, ap);                                                                \
		while (va_arg(probe, char *))                                                      \
			count++;                                                                   \
		va_end(probe);                                                                     \
		argv = alloca((count + 1) * sizeof *argv);                                         \
		argv[0] = (char *)(first);                                                         \
		for (size_t i = 1; i <= count; i++)                                                \
			argv[i] = va_arg(ap, char *);                                              \
	} while (0)

OA_EXPORT int execl(const char *path, const char *arg, ...)
{
	char **argv;
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(arg, ap, argv);
	va_end(ap);
	return exec_common(EXEC_PATH, path, -1, argv, environ);
}

OA_EXPORT int execlp(const char *file, const char *arg, ...)
{
	char **argv;
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(arg, ap, argv);
	va_end(ap);
	return exec_common(EXEC_SEARCH, file, -1, argv, environ);
}

OA_EXPORT int execle(const char *path, const char *arg, ...)
{
	char **argv;
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(arg, ap, argv);
	char **envp = va_arg(ap, char **);
	va_end(ap);
	return exec_common(EXEC_PATH, path, -1, argv, envp);
}

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
	relay_entry(relay, oa_can_host_relay());
	const char *extra[] = {relay, NULL};
	char **env = child_env(envp, &ctx, traceparent, &preload, extra);
	errno = saved_errno;
	int r = search ? oa_real_posix_spawnp()(pid, file, actions, attr, argv, env ? env : envp)
		       : oa_real_posix_spawn()(pid, file, actions, attr, argv, env ? env : envp);
	saved_errno = errno;
	char name[256];
	snprintf(name, sizeof name, "spawn %s", base_name(file));
	write_span(t, &parent, &ctx, name, file, start, r, 0, false, false);
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

/* system() spawns /bin/sh through glibc internals we cannot see, with the
 * process environment: TRACEPARENT is set there for the call's duration. */
OA_EXPORT int system(const char *command)
{
	struct oa_thread *t = NULL;
	if (command && oa_hook_enter()) {
		t = process_hooks_on() ? oa_thread_get() : NULL;
		if (!t)
			oa_hook_leave();
	}
	if (!t)
		return oa_real_system()(command);
	int saved_errno = errno;
	uint64_t start = oa_now();
	struct oa_span_ctx parent, ctx;
	char *previous = NULL;
	{
		oa_current_parent(t, &parent);
		oa_span_ctx_start(t, &parent, &ctx);
		const char *old = getenv("TRACEPARENT");
		previous = old ? strdup(old) : NULL;
		struct oa_span_context sc;
		memcpy(sc.trace_id, ctx.trace_id, 16);
		oa_span_id_to_bytes(ctx.span_id, sc.span_id);
		sc.flags = ctx.flags;
		char value[OA_TRACEPARENT_LEN + 1];
		oa_traceparent_format(&sc, value);
		setenv("TRACEPARENT", value, 1);
	}
	errno = saved_errno;
	int r = oa_real_system()(command);
	saved_errno = errno;
	{
		if (previous)
			setenv("TRACEPARENT", previous, 1);
		else
			unsetenv("TRACEPARENT");
		free(previous);
		bool exited = r != -1 && WIFEXITED(r);
		write_span(t, &parent, &ctx, "system", "/bin/sh", start, r == -1 ? saved_errno : 0,
			   exited ? WEXITSTATUS(r) : 0, exited, false);
	}
	oa_hook_leave();
	errno = saved_errno;
	return r;
}

/* A vfork child shares its parent's memory, rings included: a fork keeps
 * the semantics programs may rely on (the child runs, then execs or exits). */
OA_EXPORT pid_t vfork(void)
{
	return oa_real_fork()();
}

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

int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
		      void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
		      void *stack_end);
OA_EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
				void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
				void *stack_end)
{
	int (*real)(int (*)(int, char **, char **), int, char **, void (*)(void), void (*)(void),
		    void (*)(void), void *) = oa_real___libc_start_main();
	program_main = main;
	return real(main_returning_its_status, argc, argv, init, fini, rtld_fini, stack_end);
}

OA_EXPORT void exit(int status)
{
	oa_process_span_exit_code(status & 0xff);
	oa_real_exit()(status);
	__builtin_unreachable();
}

OA_EXPORT void _exit(int status)
{
	oa_process_span_exit_code(status & 0xff);
	oa_process_exit();
	oa_real__exit()(status);
	__builtin_unreachable();
}

OA_EXPORT void _Exit(int status)
{
	oa_process_span_exit_code(status & 0xff);
	oa_process_exit();
	oa_real__Exit()(status);
	__builtin_unreachable();
}
