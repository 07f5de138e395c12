/* A program linked with liburing, for doctor's io_uring check (test_cli):
 * it sets up a ring and tears it down. */
#include <liburing.h>
#include <stdio.h>

int main(void)
{
	struct io_uring ring;
	int err = io_uring_queue_init(4, &ring, 0);
	if (err == 0)
		io_uring_queue_exit(&ring);
	printf("%d\n", err);
	return 0;
}
