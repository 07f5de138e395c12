/* File hooks, on when OTLPAUTO_HOOKS names "files": open, openat and creat
 * register regular files in the fd table with their path; open, read,
 * write, fsync, fdatasync and close of those files become INTERNAL spans
 * ("file open", "file read", ...) with file.path when they take at least
 * OTLPAUTO_FILE_THRESHOLD. Reads and writes reach here through the I/O
 * hooks in sockets.c; the positioned ones (pread, pwrite, preadv, pwritev
 * and their 64 and v2 variants), which only files take, are hooked here.
 * With the family off, opens only clear what the fd table remembered of the
 * number they return. */

/* The hooks must have the libc names (open, not the open64 that
 * _FILE_OFFSET_BITS=64 redirects it to); both names are defined below. */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clock.h"
#include "net.h"
#include "real.h"

#define OA_FILE_PATH_MAX 1024

/* A tracked file's state (files.c). */
struct oa_file_state {
	uint16_t path_len;
	char path[OA_FILE_PATH_MAX];
};

OA_STATE_OF(struct oa_file_state, oa_file_state)

OA_REAL(int, open, (const char *a0, int a1, ...), -1)
OA_REAL(int, open64, (const char *a0, int a1, ...), -1)
OA_REAL(int, openat, (int a0, const char *a1, int a2, ...), -1)
OA_REAL(int, openat64, (int a0, const char *a1, int a2, ...), -1)
OA_REAL(int, __open_2, (const char *a0, int a1), -1)
OA_REAL(int, __open64_2, (const char *a0, int a1), -1)
OA_REAL(int, __openat_2, (int a0, const char *a1, int a2), -1)
OA_REAL(int, __openat64_2, (int a0, const char *a1, int a2), -1)
OA_REAL(int, creat, (const char *a0, mode_t a1), -1)
OA_REAL(int, creat64, (const char *a0, mode_t a1), -1)
OA_REAL(int, fsync, (int a0), -1)
OA_REAL(int, fdatasync, (int a0), -1)
OA_REAL(ssize_t, pread, (int a0, void *a1, size_t a2, off_t a3), -1)
OA_REAL(ssize_t, pread64, (int a0, void *a1, size_t a2, off64_t a3), -1)
OA_REAL(ssize_t, __pread_chk, (int a0, void *a1, size_t a2, off_t a3, size_t a4), -1)
OA_REAL(ssize_t, __pread64_chk, (int a0, void *a1, size_t a2, off64_t a3, size_t a4), -1)
OA_REAL(ssize_t, pwrite, (int a0, const void *a1, size_t a2, off_t a3), -1)
OA_REAL(ssize_t, pwrite64, (int a0, const void *a1, size_t a2, off64_t a3), -1)
OA_REAL(ssize_t, preadv, (int a0, const struct iovec *a1, int a2, off_t a3), -1)
OA_REAL(ssize_t, preadv64, (int a0, const struct iovec *a1, int a2, off64_t a3), -1)
OA_REAL(ssize_t, preadv2, (int a0, const struct iovec *a1, int a2, off_t a3, int a4), -1)
OA_REAL(ssize_t, preadv64v2, (int a0, const struct iovec *a1, int a2, off64_t a3, int a4), -1)
OA_REAL(ssize_t, pwritev, (int a0, const struct iovec *a1, int a2, off_t a3), -1)
OA_REAL(ssize_t, pwritev64, (int a0, const struct iovec *a1, int a2, off64_t a3), -1)
OA_REAL(ssize_t, pwritev2, (int a0, const struct iovec *a1, int a2, off_t a3, int a4), -1)
OA_REAL(ssize_t, pwritev64v2, (int a0, const struct iovec *a1, int a2, off64_t a3, int a4), -1)

/* glibc's fortified opens (_FORTIFY_SOURCE); no public prototypes. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
/* glibc's fortified preads. */
ssize_t __pread_chk(int fd, void *buf, size_t len, off_t offset, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t len, off64_t offset, size_t buflen);

#define FILE_PAYLOAD (OA_FILE_PATH_MAX + 64)

static bool slow_enough(uint64_t start, uint64_t end)
{
	return oa_clock_ticks_to_ns(end - start) >= oa_rt.cfg.file_threshold_ns;
}

static void file_span(struct oa_thread *t, const char *name, const char *path, size_t path_len,
		      uint64_t start, uint64_t end, int err)
{
	struct oa_span_ctx parent, ctx;
	oa_current_parent(t, &parent);
	oa_span_ctx_start(t, &parent, &ctx);
	struct oa_payload w;
	if (!oa_net_span_begin(t, &w, &parent, &ctx, OA_KIND_INTERNAL, OA_SCOPE_FILES, start,
			       FILE_PAYLOAD))
		return;
	oa_payload_text(&w, OA_ITEM_NAME, name, strlen(name));
	oa_payload_attr_str(&w, OA_KEY_FILE_PATH, path, path_len);
	if (err)
		oa_payload_attr_errno(&w, OA_KEY_ERROR_TYPE, err);
	oa_net_span_end(t, &w, end, err != 0);
}

void oa_file_io_span(struct oa_thread *t, int fd, const char *name, uint64_t start, ssize_t result,
		     int err)
{
	uint64_t end = oa_now();
	if (!slow_enough(start, end))
		return;
	struct oa_fd *f = oa_fd_slot(fd);
	if (f)
		file_span(t, name, oa_file_state(f)->path, oa_file_state(f)->path_len, start, end,
			  result < 0 ? err : 0);
}

int oa_file_close(struct oa_thread *t, int fd, struct oa_fd *f, int (*real_close)(int))
{
	/* the number may be reused as soon as it is closed: path copied first */
	char path[OA_FILE_PATH_MAX];
	size_t path_len = oa_file_state(f)->path_len;
	memcpy(path, oa_file_state(f)->path, path_len);
	oa_fd_forget(fd);
	uint64_t start = oa_now();
	int r = real_close(fd);
	int err = errno;
	uint64_t end = oa_now();
	if (slow_enough(start, end))
		file_span(t, "file close", path, path_len, start, end, r ? err : 0);
	errno = err;
	return r;
}

enum open_op {
	OPEN,
	OPEN64,
	OPENAT,
	OPENAT64,
	OPEN_2,
	OPEN64_2,
	OPENAT_2,
	OPENAT64_2,
	CREAT,
	CREAT64
};

static int open_real(enum open_op op, int dirfd, const char *path, int flags, mode_t mode)
{
	switch (op) {
	case OPEN:
		return oa_real_open()(path, flags, mode);
	case OPEN64:
		return oa_real_open64()(path, flags, mode);
	case OPENAT:
		return oa_real_openat()(dirfd, path, flags, mode);
	case OPENAT64:
		return oa_real_openat64()(dirfd, path, flags, mode);
	case OPEN_2:
		return oa_real___open_2()(path, flags);
	case OPEN64_2:
		return oa_real___open64_2()(path, flags);
	case OPENAT_2:
		return oa_real___openat_2()(dirfd, path, flags);
	case OPENAT64_2:
		return oa_real___openat64_2()(dirfd, path, flags);
	case CREAT:
		return oa_real_creat()(path, mode);
	default:
		return oa_real_creat64()(path, mode);
	}
}

static void register_file(int fd, const char *path)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	struct oa_fd *f = oa_fd_claim(fd);
	if (!f)
		return;
	size_t len = strnlen(path, OA_FILE_PATH_MAX);
	memcpy(oa_file_state(f)->path, path, len);
	oa_file_state(f)->path_len = (uint16_t)len;
	oa_fd_claim_end(fd, OA_FD_FILE);
}

static int open_common(enum open_op op, int dirfd, const char *path, int flags, mode_t mode)
{
	if (!oa_hook_enter()) {
		int fd = open_real(op, dirfd, path, flags, mode);
		if (fd >= 0 && oa_fd_kind(fd))
			oa_fd_forget(fd);
		return fd;
	}
	struct oa_thread *t = oa_family_on(OA_HOOK_FILES) && path ? oa_thread_get() : NULL;
	uint64_t start = oa_now();
	int fd = open_real(op, dirfd, path, flags, mode);
	int err = errno;
	uint64_t end = oa_now();
	if (fd >= 0 && oa_fd_kind(fd))
		oa_fd_forget(fd);
	if (t) {
		if (fd >= 0 && !(flags & O_PATH))
			register_file(fd, path);
		if (slow_enough(start, end))
			file_span(t, "file open", path, strnlen(path, OA_FILE_PATH_MAX), start, end,
				  fd < 0 ? err : 0);
	}
	oa_hook_leave();
	errno = err;
	return fd;
}

static bool takes_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define MODE_ARG(flags, mode)                                                                      \
	do {                                                                                       \
		if (takes_mode(flags)) {                                                           \
			va_list ap;                                                                \
			va_start(ap, flags);                                                       \
			mode = va_arg(ap, mode_t);                                                 \
			va_end(ap);                                                                \
		}                                                                                  \
	} while (0)

OA_EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return open_common(OPEN, AT_FDCWD, path, flags, mode);
}

OA_EXPORT int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return open_common(OPEN64, AT_FDCWD, path, flags, mode);
}

OA_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return open_common(OPENAT, dirfd, path, flags, mode);
}

OA_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return open_common(OPENAT64, dirfd, path, flags, mode);
}

OA_EXPORT int __open_2(const char *path, int flags)
{
	return open_common(OPEN_2, AT_FDCWD, path, flags, 0);
}

OA_EXPORT int __open64_2(const char *path, int flags)
{
	return open_common(OPEN64_2, AT_FDCWD, path, flags, 0);
}

OA_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return open_common(OPENAT_2, dirfd, path, flags, 0);
}

OA_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return open_common(OPENAT64_2, dirfd, path, flags, 0);
}

OA_EXPORT int creat(const char *path, mode_t mode)
{
	return open_common(CREAT, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

OA_EXPORT int creat64(const char *path, mode_t mode)
{
	return open_common(CREAT64, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

static int sync_common(int fd, int (*real_sync)(int), const char *name)
{
	if (!(oa_fd_kind(fd) & OA_FD_FILE) || !oa_hook_enter())
		return real_sync(fd);
	struct oa_thread *t = oa_thread_get();
	uint64_t start = oa_now();
	int r = real_sync(fd);
	int err = errno;
	if (t)
		oa_file_io_span(t, fd, name, start, r, err);
	oa_hook_leave();
	errno = err;
	return r;
}

OA_EXPORT int fsync(int fd)
{
	return sync_common(fd, oa_real_fsync(), "file fsync");
}

OA_EXPORT int fdatasync(int fd)
{
	return sync_common(fd, oa_real_fdatasync(), "file fdatasync");
}

/* ---- positioned reads and writes */

enum positioned_op {
	PREAD,
	PREAD64,
	PREAD_CHK,
	PREAD64_CHK,
	PWRITE,
	PWRITE64,
	PREADV,
	PREADV64,
	PREADV2,
	PREADV64V2,
	PWRITEV,
	PWRITEV64,
	PWRITEV2,
	PWRITEV64V2,
};

struct positioned_call {
	enum positioned_op op;
	int fd;
	void *buf; /* const for the writes */
	size_t len, buflen;
	const struct iovec *iov;
	int iovcnt;
	off64_t offset;
	int flags;
};

static ssize_t positioned_real(const struct positioned_call *c)
{
	switch (c->op) {
	case PREAD:
		return oa_real_pread()(c->fd, c->buf, c->len, c->offset);
	case PREAD64:
		return oa_real_pread64()(c->fd, c->buf, c->len, c->offset);
	case PREAD_CHK:
		return oa_real___pread_chk()(c->fd, c->buf, c->len, c->offset, c->buflen);
	case PREAD64_CHK:
		return oa_real___pread64_chk()(c->fd, c->buf, c->len, c->offset, c->buflen);
	case PWRITE:
		return oa_real_pwrite()(c->fd, c->buf, c->len, c->offset);
	case PWRITE64:
		return oa_real_pwrite64()(c->fd, c->buf, c->len, c->offset);
	case PREADV:
		return oa_real_preadv()(c->fd, c->iov, c->iovcnt, c->offset);
	case PREADV64:
		return oa_real_preadv64()(c->fd, c->iov, c->iovcnt, c->offset);
	case PREADV2:
		return oa_real_preadv2()(c->fd, c->iov, c->iovcnt, c->offset, c->flags);
	case PREADV64V2:
		return oa_real_preadv64v2()(c->fd, c->iov, c->iovcnt, c->offset, c->flags);
	case PWRITEV:
		return oa_real_pwritev()(c->fd, c->iov, c->iovcnt, c->offset);
	case PWRITEV64:
		return oa_real_pwritev64()(c->fd, c->iov, c->iovcnt, c->offset);
	case PWRITEV2:
		return oa_real_pwritev2()(c->fd, c->iov, c->iovcnt, c->offset, c->flags);
	default:
		return oa_real_pwritev64v2()(c->fd, c->iov, c->iovcnt, c->offset, c->flags);
	}
}

static bool is_write(enum positioned_op op)
{
	return op == PWRITE || op == PWRITE64 || op >= PWRITEV;
}

/* Only a registered file pays for more than the fd table's kind byte. */
static ssize_t positioned(const struct positioned_call *c)
{
	if (!(oa_fd_kind(c->fd) & OA_FD_FILE) || !oa_hook_enter())
		return positioned_real(c);
	struct oa_thread *t = oa_thread_get();
	uint64_t start = oa_now();
	ssize_t r = positioned_real(c);
	int err = errno;
	if (t)
		oa_file_io_span(t, c->fd, is_write(c->op) ? "file write" : "file read", start, r,
				err);
	oa_hook_leave();
	errno = err;
	return r;
}

OA_EXPORT ssize_t pread(int fd, void *buf, size_t len, off_t offset)
{
	struct positioned_call c = {
	    .op = PREAD, .fd = fd, .buf = buf, .len = len, .offset = offset};
	return positioned(&c);
}

OA_EXPORT ssize_t pread64(int fd, void *buf, size_t len, off64_t offset)
{
	struct positioned_call c = {
	    .op = PREAD64, .fd = fd, .buf = buf, .len = len, .offset = offset};
	return positioned(&c);
}

OA_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t len, off_t offset, size_t buflen)
{
	struct positioned_call c = {
	    .op = PREAD_CHK, .fd = fd, .buf = buf, .len = len, .offset = offset, .buflen = buflen};
	return positioned(&c);
}

OA_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t len, off64_t offset, size_t buflen)
{
	struct positioned_call c = {.op = PREAD64_CHK,
				    .fd = fd,
				    .buf = buf,
				    .len = len,
				    .offset = offset,
				    .buflen = buflen};
	return positioned(&c);
}

OA_EXPORT ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	struct positioned_call c = {
	    .op = PWRITE, .fd = fd, .buf = (void *)buf, .len = len, .offset = offset};
	return positioned(&c);
}

OA_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t offset)
{
	struct positioned_call c = {
	    .op = PWRITE64, .fd = fd, .buf = (void *)buf, .len = len, .offset = offset};
	return positioned(&c);
}

#define VECTORED(name, op_name, off_type)                                                          \
	OA_EXPORT ssize_t name(int fd, const struct iovec *iov, int iovcnt, off_type offset)       \
	{                                                                                          \
		struct positioned_call c = {                                                       \
		    .op = op_name, .fd = fd, .iov = iov, .iovcnt = iovcnt, .offset = offset};      \
		return positioned(&c);                                                             \
	}
#define VECTORED2(name, op_name, off_type)                                                         \
	OA_EXPORT ssize_t name(int fd, const struct iovec *iov, int iovcnt, off_type offset,       \
			       int flags)                                                          \
	{                                                                                          \
		struct positioned_call c = {.op = op_name,                                         \
					    .fd = fd,                                              \
					    .iov = iov,                                            \
					    .iovcnt = iovcnt,                                      \
					    .offset = offset,                                      \
					    .flags = flags};                                       \
		return positioned(&c);                                                             \
	}

VECTORED(preadv, PREADV, off_t)
VECTORED(preadv64, PREADV64, off64_t)
VECTORED(pwritev, PWRITEV, off_t)
VECTORED(pwritev64, PWRITEV64, off64_t)
VECTORED2(preadv2, PREADV2, off_t)
VECTORED2(preadv64v2, PREADV64V2, off64_t)
VECTORED2(pwritev2, PWRITEV2, off_t)
VECTORED2(pwritev64v2, PWRITEV64V2, off64_t)
