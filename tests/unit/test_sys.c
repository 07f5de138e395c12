/* sys: the core's real functions are found past the caller, and one that
 * does not exist fails with ENOSYS (remembered) instead of calling NULL. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "check.h"
#include "sys.h"

static OA_SYS_FUNCTION(int, oa_test_no_such_function, (int value), (value), ENOSYS)

    static void *started(void *arg)
{
	*(int *)arg = 1;
	return NULL;
}

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static int holding;

/* Holds the lock for as long as *arg milliseconds. */
static void *hold(void *arg)
{
	pthread_mutex_lock(&held);
	__atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
	long ms = *(long *)arg;
	struct timespec pause = {ms / 1000, ms % 1000 * 1000000L};
	nanosleep(&pause, NULL);
	__atomic_store_n(&holding, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&held);
	return NULL;
}

static void start_holding(pthread_t *thread, long *ms)
{
	CHECK_EQ_INT(pthread_create(thread, NULL, hold, ms), 0);
	while (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE))
		sched_yield();
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A fork takes a free lock at once, one released within the bound when it
 * is released, and gives up on one held past the bound. */
static void test_fork_lock(void)
{
	CHECK(oa_sys_fork_lock(&held));
	pthread_mutex_unlock(&held);

	long hold_ms = 5;
	pthread_t thread;
	start_holding(&thread, &hold_ms);
	double t0 = mono_ms();
	CHECK(oa_sys_fork_lock(&held));
	CHECK(mono_ms() - t0 < OA_FORK_WAIT_NS / 1e6);
	pthread_mutex_unlock(&held);
	pthread_join(thread, NULL);

	long past_ms = OA_FORK_WAIT_NS / 1000000L + 200;
	start_holding(&thread, &past_ms);
	t0 = mono_ms();
	CHECK(!oa_sys_fork_lock(&held));
	CHECK(mono_ms() - t0 >= OA_FORK_WAIT_NS / 1e6);
	pthread_join(thread, NULL);
}

int main(void)
{
	test_fork_lock();
	CHECK_EQ_INT(oa_sys_oa_test_no_such_function(7), ENOSYS);
	CHECK_EQ_INT(oa_sys_oa_test_no_such_function(7), ENOSYS); /* from the cache */

	void *slot = NULL;
	CHECK(oa_sys_resolve(&slot, "oa_test_no_such_function") == NULL);
	CHECK(slot != NULL); /* the miss is remembered */
	CHECK(oa_sys_resolve(&slot, "oa_test_no_such_function") == NULL);

	int ran = 0;
	pthread_t thread;
	CHECK_EQ_INT(oa_sys_pthread_create(&thread, NULL, started, &ran), 0);
	CHECK_EQ_INT(pthread_join(thread, NULL), 0);
	CHECK_EQ_INT(ran, 1);
	CHECK_DONE();
}
