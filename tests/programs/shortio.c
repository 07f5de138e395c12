/* A test preload that makes every send on a socket short: at most
 * SHORTIO_MAX bytes (default 7) per write, writev, send, sendto or sendmsg;
 * with SHORTIO_EAGAIN set, every second send on a non-blocking socket fails
 * with EAGAIN instead. Listed after libotlpauto.so in LD_PRELOAD, it is what
 * the shim's own sends reach, so partial sends cut everywhere, inserted
 * header lines included. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static size_t cap(void)
{
	static size_t max;
	if (!max) {
		const char *s = getenv("SHORTIO_MAX");
		max = s && atoi(s) > 0 ? (size_t)atoi(s) : 7;
	}
	return max;
}

static int is_socket(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Static, so that the wrappers below never call back into the shim. */
static ssize_t short_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, const struct msghdr *, int);
	if (!real)
		real = (ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
	if (!is_socket(fd))
		return real(fd, msg, flags);
	static unsigned calls;
	if (getenv("SHORTIO_EAGAIN") && (fcntl(fd, F_GETFL) & O_NONBLOCK) && calls++ % 2) {
		errno = EAGAIN;
		return -1;
	}
	/* the first pieces up to cap() bytes */
	struct iovec iov[64];
	struct msghdr m = *msg;
	size_t left = cap();
	m.msg_iovlen = 0;
	for (size_t i = 0; i < msg->msg_iovlen && left && m.msg_iovlen < 64; i++) {
		size_t len = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len : left;
		if (!len)
			continue;
		iov[m.msg_iovlen].iov_base = msg->msg_iov[i].iov_base;
		iov[m.msg_iovlen++].iov_len = len;
		left -= len;
	}
	m.msg_iov = iov;
	return real(fd, &m, flags);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return short_sendmsg(fd, msg, flags);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	if (!is_socket(fd)) {
		static ssize_t (*real)(int, const struct iovec *, int);
		if (!real)
			real =
			    (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
		return real(fd, iov, iovcnt);
	}
	return short_sendmsg(fd, &m, 0);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	struct iovec one = {(void *)buf, len};
	struct msghdr m = {.msg_iov = &one, .msg_iovlen = 1};
	if (!is_socket(fd)) {
		static ssize_t (*real)(int, const void *, size_t);
		if (!real)
			real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
		return real(fd, buf, len);
	}
	return short_sendmsg(fd, &m, 0);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct iovec one = {(void *)buf, len};
	struct msghdr m = {.msg_iov = &one, .msg_iovlen = 1};
	return short_sendmsg(fd, &m, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
	       socklen_t to_len)
{
	struct iovec one = {(void *)buf, len};
	struct msghdr m = {
	    .msg_name = (void *)to, .msg_namelen = to_len, .msg_iov = &one, .msg_iovlen = 1};
	return short_sendmsg(fd, &m, flags);
}
