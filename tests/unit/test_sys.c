/* sys: the core's real functions are found past the caller, and one that
 * does not exist fails with ENOSYS (remembered) instead of calling NULL. */
#include <errno.h>
#include <pthread.h>

#include "check.h"
#include "sys.h"

static OA_SYS_FUNCTION(int, oa_test_no_such_function, (int value), (value), ENOSYS)

    static void *started(void *arg)
{
	*(int *)arg = 1;
	return NULL;
}

int main(void)
{
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
