/* For the dynlib unit test: a library whose load takes 300 ms (its
 * constructor sleeps), so that a fork can happen while it loads. */
#include <unistd.h>

int slowinit_marker(void);

__attribute__((constructor)) static void slow(void)
{
	usleep(300000);
}

int slowinit_marker(void)
{
	return 42;
}
