/* Preloaded below the shim by bench/sockets.sh (and alone for untraced
 * runs), so that loops of calls measure the shim's hooks alone:
 *   - read() makes no system call;
 *   - recv() and writev() on the one socket named by nosyscall_fake_socket()
 *     make none either: recv() returns the bytes given there, writev() takes
 *     everything. Other fds get the real calls. */
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

__attribute__((visibility("default"))) void nosyscall_fake_socket(int fd, const char *incoming,
								  size_t len);

static int fake_fd = -1;
static const char *fake_incoming;
static size_t fake_incoming_len;

__attribute__((visibility("default"))) void nosyscall_fake_socket(int fd, const char *incoming,
								  size_t len)
{
	fake_incoming = incoming;
	fake_incoming_len = len;
	fake_fd = fd;
}

ssize_t read(int fd, void *buf, size_t len)
{
	(void)fd;
	(void)buf;
	return (ssize_t)len;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	if (fd != fake_fd)
		return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	size_t n = len < fake_incoming_len ? len : fake_incoming_len;
	memcpy(buf, fake_incoming, n);
	return (ssize_t)n;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (fd != fake_fd)
		return syscall(SYS_writev, fd, iov, iovcnt);
	size_t n = 0;
	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return (ssize_t)n;
}
