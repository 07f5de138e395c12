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
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "lifecycle.h"
#include "payload.h"
#include "real.h"
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
OA_REAL(void, _Exit, (int))

static bool process_hooks_on(void)
{
	return (oa_rt.cfg.hooks & OA_HOOK_PROCESS) != 0;
}

/* Writes a finished process span (exec, spawn, system) with context ctx. */
static void write_span(struct oa_thread *t, const struct oa_span_ctx *parent,
		       const struct oa_span_ctx *ctx, const char *name, const char *path,
		       uint64_t start, int err, int exit_code, bool has_exit_code)
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
	rec->rec_flags = (parent->span_id ? OA_REC_F_HAS_PARENT : 0) |
			 (parent->remote ? OA_REC_F_PARENT_REMOTE : 0);
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
	oa_record_commit(t, rec);
}

static bool has_name(const char *entry, const char *name_eq, size_t len)
{
	return strncmp(entry, name_eq, len) == 0;
}

/* The environment for a new program: the caller's, plus our settings where
 * it dropped them, LD_PRELOAD naming this library, and TRACEPARENT. */
static char **child_env(char *const envp[], const struct oa_span_ctx *ctx, char *traceparent_buf,
			char **preload_buf)
{
	size_t n_saved;
	const char *const *saved = oa_saved_settings(&n_saved);
	size_t n = 0;
	for (char *const *e = envp; e && *e; e++)
		n++;
	char **env = malloc((n + n_saved + 3) * sizeof *env);
	if (!env)
		return NULL;
	size_t out = 0;
	const char *preload = NULL;
	for (char *const *e = envp; e && *e; e++) {
		if (has_name(*e, "TRACEPARENT=", 12))
			continue;
		if (has_name(*e, "LD_PRELOAD=", 11)) {
			preload = *e + 11;
			continue;
		}
		env[out++] = *e;
	}
	for (size_t i = 0; i < n_saved; i++) {
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
	env[out] = NULL;
	return env;
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

/* Every exec variant ends here. The exec span and the frames open now are
 * sent before the program is replaced. */
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
	char traceparent[12 + OA_TRACEPARENT_LEN + 1];
	char *preload = NULL;
	struct oa_span_ctx parent, ctx;
	oa_current_parent(t, &parent);
	oa_span_ctx_start(t, &parent, &ctx);
	char name[256];
	snprintf(name, sizeof name, "exec %s", file ? base_name(file) : "fd");
	write_span(t, &parent, &ctx, name, file, start, 0, 0, false);
	oa_frames_end_all(t, OA_END_EXEC);
	oa_exporter_flush(oa_rt.cfg.export_timeout_ms);
	char **env = child_env(envp, &ctx, traceparent, &preload);
	errno = saved_errno;
	int r = real_exec(kind, file, fd, argv, env ? env : envp);
	saved_errno = errno;
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
	char **env = child_env(envp, &ctx, traceparent, &preload);
	errno = saved_errno;
	int r = search ? oa_real_posix_spawnp()(pid, file, actions, attr, argv, env ? env : envp)
		       : oa_real_posix_spawn()(pid, file, actions, attr, argv, env ? env : envp);
	saved_errno = errno;
	char name[256];
	snprintf(name, sizeof name, "spawn %s", base_name(file));
	write_span(t, &parent, &ctx, name, file, start, r, 0, false);
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
			   exited ? WEXITSTATUS(r) : 0, exited);
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

void oa_exit_hooks_init(void)
{
	oa_real__exit();
	oa_real__Exit();
}

/* _exit is async-signal-safe: programs call it from signal handlers. */
OA_EXPORT void _exit(int status)
{
	oa_process_exit_async();
	oa_real__exit()(status);
	__builtin_unreachable();
}

OA_EXPORT void _Exit(int status)
{
	oa_process_exit_async();
	oa_real__Exit()(status);
	__builtin_unreachable();
}
