/* Process hooks: exec (flush first, then hand the new program our settings
 * and a TRACEPARENT naming an exec span that has already been sent),
 * posix_spawn and system (the same hand-over, without a flush: this process
 * goes on and sends the span later), vfork (run as fork so the child cannot
 * write into its parent's memory), and _exit/_Exit (bounded flush). */
#include <alloca.h>
#include <errno.h>
#include <sched.h>
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

/* The caller's LD_PRELOAD value, or NULL. */
static const char *preload_of(char *const envp[])
{
	const char *preload = NULL;
	for (char *const *e = envp; e && *e; e++)
		if (has_name(*e, "LD_PRELOAD=", 11))
			preload = *e + 11;
	return preload;
}

/* Pointers child_env needs room for (the terminating NULL included). */
static size_t child_env_slots(char *const envp[])
{
	size_t n_saved, n = 0;
	oa_saved_settings(&n_saved);
	for (char *const *e = envp; e && *e; e++)
		n++;
	return n + n_saved + 3;
}

/* Bytes the new LD_PRELOAD entry takes. */
static size_t child_preload_bytes(char *const envp[])
{
	const char *preload = preload_of(envp), *self = oa_self_path();
	return 11 + strlen(self) + 1 + (preload ? strlen(preload) : 0) + 1;
}

/* child_env into caller-provided room: env (child_env_slots pointers) and
 * preload_buf (child_preload_bytes, or NULL: no LD_PRELOAD entry). */
static void fill_child_env(char **env, char *preload_buf, char *const envp[],
			   const struct oa_span_ctx *ctx, char *traceparent_buf)
{
	size_t n_saved;
	const char *const *saved = oa_saved_settings(&n_saved);
	size_t out = 0;
	const char *preload = preload_of(envp);
	for (char *const *e = envp; e && *e; e++)
		if (!has_name(*e, "TRACEPARENT=", 12) && !has_name(*e, "LD_PRELOAD=", 11))
			env[out++] = *e;
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
	if (preload_buf && preload && self[0] && !strstr(preload, self)) {
		snprintf(preload_buf, child_preload_bytes(envp), "LD_PRELOAD=%s:%s", self, preload);
		env[out++] = preload_buf;
	} else if (preload_buf && self[0]) {
		snprintf(preload_buf, child_preload_bytes(envp), "LD_PRELOAD=%s",
			 preload ? preload : self);
		env[out++] = preload_buf;
	}
	struct oa_span_context sc;
	memcpy(sc.trace_id, ctx->trace_id, 16);
	oa_span_id_to_bytes(ctx->span_id, sc.span_id);
	sc.flags = ctx->flags;
	memcpy(traceparent_buf, "TRACEPARENT=", 12);
	oa_traceparent_format(&sc, traceparent_buf + 12);
	env[out++] = traceparent_buf;
	env[out] = NULL;
}

/* The environment for a new program: the caller's, plus our settings where
 * it dropped them, LD_PRELOAD naming this library, and TRACEPARENT. */
static char **child_env(char *const envp[], const struct oa_span_ctx *ctx, char *traceparent_buf,
			char **preload_buf)
{
	char **env = malloc(child_env_slots(envp) * sizeof *env);
	if (!env)
		return NULL;
	*preload_buf = malloc(child_preload_bytes(envp));
	fill_child_env(env, *preload_buf, envp, ctx, traceparent_buf);
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
	    child_env_slots(envp) > VFORK_ENV_MAX)
		return real_exec(kind, file, fd, argv, envp);
	int saved_errno = errno;
	uint64_t start = oa_now();
	struct oa_span_ctx parent, ctx;
	oa_current_parent(t, &parent);
	oa_span_ctx_start(t, &parent, &ctx);
	char name[256];
	snprintf(name, sizeof name, "exec %s", file ? base_name(file) : "fd");
	write_span(t, &parent, &ctx, name, file, start, 0, 0, false);
	char traceparent[12 + OA_TRACEPARENT_LEN + 1];
	char *env[child_env_slots(envp)];
	char preload[child_preload_bytes(envp)];
	fill_child_env(env, preload, envp, &ctx, traceparent);
	errno = saved_errno;
	return real_exec(kind, file, fd, argv, env);
}

/* Every exec variant ends here. The exec span and the frames open now are
 * sent before the program is replaced. */
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

OA_REAL(pid_t, _Fork, (void))
OA_REAL(int, clone, (int (*)(void *), void *, int, void *, ...))

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

#if defined(__x86_64__)
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
OA_REAL(pid_t, fork, (void))

/* Elsewhere a vfork child would write into its parent's rings: it runs as
 * a fork (the child runs, then execs or exits). */
OA_EXPORT pid_t vfork(void)
{
	return oa_real_fork()();
}
#endif

OA_EXPORT void _exit(int status)
{
	oa_process_exit();
	oa_real__exit()(status);
	__builtin_unreachable();
}

OA_EXPORT void _Exit(int status)
{
	oa_process_exit();
	oa_real__Exit()(status);
	__builtin_unreachable();
}
