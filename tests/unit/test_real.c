/* real: a hook's real function is the next definition; when the C library
 * has none, the hook gets a stand-in that fails with ENOSYS the way the
 * function reports errors, remembered, instead of a call through NULL. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "real.h"

OA_REAL(int, oa_test_no_such_call, (int value), -1)
OA_REAL(char *, oa_test_no_such_lookup, (const char *name), NULL)
OA_REAL(int, oa_test_no_such_spawn, (int value), ENOSYS)
OA_REAL(size_t, strlen, (const char *s), 0)

int main(void)
{
	errno = 0;
	CHECK_EQ_INT(oa_real_oa_test_no_such_call()(7), -1);
	CHECK_EQ_INT(errno, ENOSYS);
	CHECK(oa_real_oa_test_no_such_call() == oa_real_oa_test_no_such_call()); /* remembered */
	errno = 0;
	CHECK(oa_real_oa_test_no_such_lookup()("x") == NULL);
	CHECK_EQ_INT(errno, ENOSYS);
	CHECK_EQ_INT(oa_real_oa_test_no_such_spawn()(1), ENOSYS); /* an error number result */
	/* one that exists is the C library's */
	CHECK_EQ_INT((int)oa_real_strlen()("four"), 4);
	CHECK_DONE();
}
