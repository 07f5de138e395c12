/* pthread_create hands the creator's current span context to the new
 * thread, so its first spans are children of the span that created it.
 * Threads created by an internal thread (libcurl's, from the exporter) are
 * internal too: invisible to every hook. Thread exit is handled by the
 * thread-state key destructor (src/thread.c). Renames (pthread_setname_np,
 * prctl PR_SET_NAME) are passed on to the thread's ring, so that the exporter
 * need not open /proc files to name spans. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "real.h"
#include "runtime.h"

#define OA_EXPORT __attribute__((visibility("default")))

OA_REAL(int, pthread_create,
	(pthread_t * a0, const pthread_attr_t *a1, void *(*a2)(void *), void *a3), ENOSYS)
OA_REAL(int, pthread_setname_np, (pthread_t a0, const char *a1), ENOSYS)
OA_REAL(int, prctl,
	(int a0, unsigned long a1, unsigned long a2, unsigned long a3, unsigned long a4), -1)

struct start_args {
	void *(*start)(void *);
	void *arg;
	struct oa_span_ctx ctx;
	bool internal;
};

static void *thread_trampoline(void *p)
{
	struct start_args a = *(struct start_args *)p;
	free(p);
	oa_thread_start(&a.ctx, a.internal);
	return a.start(a.arg);
}

OA_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
			     void *arg)
{
	bool internal = oa_tls.internal;
	if (!internal && !oa_hook_enter())
		return oa_real_pthread_create()(thread, attr, start, arg);
	int saved_errno = errno;
	struct start_args *a = malloc(sizeof *a);
	if (a) {
		a->start = start;
		a->arg = arg;
		a->internal = internal;
		if (!internal)
			oa_thread_inherit_context(&a->ctx);
	}
	if (!internal)
		oa_hook_leave();
	errno = saved_errno;
	if (!a)
		return oa_real_pthread_create()(thread, attr, start, arg);
	int r = oa_real_pthread_create()(thread, attr, thread_trampoline, a);
	if (r)
		free(a);
	return r;
}

OA_EXPORT int pthread_setname_np(pthread_t thread, const char *name)
{
	int r = oa_real_pthread_setname_np()(thread, name);
	if (r == 0)
		oa_thread_renamed(pthread_equal(thread, pthread_self()), name);
	return r;
}

/* libcap's constructor calls prctl before anything else runs: in a
 * sanitized build whose runtime is not preloaded first, the runtime is not
 * initialised then, and an instrumented stack access would fault. */
OA_EXPORT __attribute__((no_sanitize("address"))) int prctl(int option, ...)
{
	va_list ap;
	va_start(ap, option);
	unsigned long arg2 = va_arg(ap, unsigned long), arg3 = va_arg(ap, unsigned long),
		      arg4 = va_arg(ap, unsigned long), arg5 = va_arg(ap, unsigned long);
	va_end(ap);
	int r = oa_real_prctl()(option, arg2, arg3, arg4, arg5);
	if (r == 0 && option == PR_SET_NAME) {
		int saved_errno = errno;
		oa_thread_renamed(true, (const char *)arg2);
		errno = saved_errno;
	}
	return r;
}
