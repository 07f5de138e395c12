/* The table of libc functions the core calls past our hooks (sys.h). */
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <sched.h>
#include <time.h>

#include "sys.h"

/* A slot's value once dlsym found nothing: never a function's address. */
static char missing_mark;

void *oa_sys_resolve(void **slot, const char *name)
{
	void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (__builtin_expect(fn == NULL, 0)) {
		fn = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, fn ? fn : (void *)&missing_mark, __ATOMIC_RELEASE);
	}
	return fn == (void *)&missing_mark ? NULL : fn;
}

/* Yielding beyond this is spinning against a holder that does not run. */
#define FORK_YIELD_NS 200000L
#define FORK_SLEEP_NS 100000L

static long elapsed_ns(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

bool oa_sys_fork_lock(pthread_mutex_t *lock)
{
	if (pthread_mutex_trylock(lock) == 0)
		return true;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	long waited;
	while ((waited = elapsed_ns(&start)) < OA_FORK_WAIT_NS) {
		if (waited < FORK_YIELD_NS) {
			sched_yield();
		} else {
			struct timespec pause = {0, FORK_SLEEP_NS};
			nanosleep(&pause, NULL);
		}
		if (pthread_mutex_trylock(lock) == 0)
			return true;
	}
	return false;
}

OA_SYS_FUNCTION(int, pthread_create,
		(pthread_t * thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg),
		(thread, attr, start, arg), ENOSYS)

static int no_getaddrinfo(void)
{
	errno = ENOSYS;
	return EAI_SYSTEM;
}

OA_SYS_FUNCTION(int, getaddrinfo,
		(const char *node, const char *service, const struct addrinfo *hints,
		 struct addrinfo **res),
		(node, service, hints, res), no_getaddrinfo())

#ifdef OA_ASAN
#include <sanitizer/asan_interface.h>

void oa_sys_clean_thread_stack(void)
{
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return;
	void *low;
	size_t size;
	if (pthread_attr_getstack(&attr, &low, &size) == 0)
		ASAN_UNPOISON_MEMORY_REGION(
		    low, (size_t)((char *)__builtin_frame_address(0) - (char *)low));
	pthread_attr_destroy(&attr);
}
#endif
