/* pthread_create hands the creator's current span context to the new
 * thread, so its first spans are children of the span that created it.
 * Threads created by an internal thread (libcurl's, from the exporter) are
 * internal too: invisible to every hook. Thread exit is handled by the
 * thread-state key destructor (src/thread.c). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "real.h"
#include "runtime.h"

#define OA_EXPORT __attribute__((visibility("default")))

OA_REAL(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))

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
