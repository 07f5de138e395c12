/* Preloaded below the shim by bench/sockets.sh: read() that makes no system
 * call, so that a loop of reads measures the shim's hook alone. */
#include <unistd.h>

ssize_t read(int fd, void *buf, size_t len)
{
	(void)fd;
	(void)buf;
	return (ssize_t)len;
}
