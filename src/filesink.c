/* The otlp/file sink. Its descriptor is ours like the transport's sockets
 * (fdguard.h): above the low numbers, protected from the program's close and
 * close_range, and given up to a dup2/dup3 onto it, after which the file is
 * opened again. Where it may lead (DESIGN.md, "The file sink"): the default
 * name is never followed through a symbolic link and only appended to a
 * regular file of ours with one link; a chosen path may go through links,
 * except, as the kernel's protected_symlinks rule has it, one in a sticky
 * world-writable directory that belongs neither to us nor to the directory's
 * owner, and there it must end in such a file too. */
#include "filesink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdguard.h"
#include "log.h"
#include "runtime.h"

/* Links followed by hand at most (the kernel's own limit). */
#define MAX_LINKS 40
/* open_sink: the file is not to be written (why says so). */
#define REFUSED (-2)

static struct {
	int fd;
	/* Absolute when it can be: a reopen after the program took our number
	 * finds the same file wherever the program went meanwhile. */
	char path[PATH_MAX];
	bool line_open; /* a failed write left part of a line in the file */
	bool warned_open, warned_write;
} sink = {.fd = -1};

static bool name_sink(void)
{
	char name[64];
	const char *p = oa_rt.cfg.file_path;
	if (!p) {
		snprintf(name, sizeof name, "otlpauto-%d.jsonl", (int)getpid());
		p = name;
	}
	char cwd[PATH_MAX];
	if (p[0] != '/' && getcwd(cwd, sizeof cwd) &&
	    (size_t)snprintf(sink.path, sizeof sink.path, "%s/%s", cwd, p) < sizeof sink.path)
		return true;
	return (size_t)snprintf(sink.path, sizeof sink.path, "%s", p) < sizeof sink.path;
}

static bool sticky_world_writable(const struct stat *dir)
{
	return S_ISDIR(dir->st_mode) && (dir->st_mode & S_ISVTX) && (dir->st_mode & S_IWOTH);
}

/* Ours, or the sticky directory's owner's: what the kernel trusts there. */
static bool trusted_owner(uid_t owner, const struct stat *dir)
{
	return owner == geteuid() || owner == dir->st_uid;
}

/* Where a chosen path leads: the name its links end at, and that name's
 * directory. */
struct destination {
	char path[PATH_MAX];
	struct stat dir;
	bool distrusted; /* the directory is sticky and world-writable */
	bool in_proc;	 /* a /proc link (/dev/stdout): it leads to an open file */
};

/* Follows the links of path by hand, refusing one that the kernel's
 * protected_symlinks rule would. A link made or swapped afterwards cannot
 * mislead: the one name checked last is opened with O_NOFOLLOW, and a link
 * let through in a sticky directory cannot be replaced by anyone else. */
static bool follow_links(const char *path, struct destination *d, char *why, size_t why_size)
{
	snprintf(d->path, sizeof d->path, "%s", path);
	for (int links = 0;; links++) {
		char dir[PATH_MAX], target[PATH_MAX];
		const char *slash = strrchr(d->path, '/');
		if (!slash)
			snprintf(dir, sizeof dir, ".");
		else
			snprintf(dir, sizeof dir, "%.*s",
				 (int)(slash == d->path ? 1 : slash - d->path), d->path);
		struct statfs fs;
		d->in_proc = statfs(dir, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
		d->distrusted = stat(dir, &d->dir) == 0 && sticky_world_writable(&d->dir);
		struct stat st;
		if (d->in_proc || lstat(d->path, &st) != 0 || !S_ISLNK(st.st_mode))
			return true; /* what open says of it is the answer */
		if (d->distrusted && !trusted_owner(st.st_uid, &d->dir)) {
			snprintf(
			    why, why_size,
			    "%s is a symbolic link of uid %u in a sticky world-writable directory",
			    d->path, (unsigned)st.st_uid);
			return false;
		}
		ssize_t n = readlink(d->path, target, sizeof target - 1);
		if (n <= 0 || links == MAX_LINKS) {
			snprintf(why, why_size, "%s cannot be followed: %s", d->path,
				 n <= 0 ? strerror(errno) : strerror(ELOOP));
			return false;
		}
		target[n] = '\0';
		int len = target[0] == '/'
			      ? snprintf(d->path, sizeof d->path, "%s", target)
			      : snprintf(d->path, sizeof d->path, "%s/%s", dir, target);
		if ((size_t)len >= sizeof d->path) {
			snprintf(why, why_size, "a symbolic link leads to too long a path");
			return false;
		}
	}
}

/* O_NONBLOCK kept a planted FIFO from stalling the open; writes block. */
static int writes_block(int fd)
{
	int flags = (int)syscall(SYS_fcntl, fd, F_GETFL);
	if (flags >= 0)
		syscall(SYS_fcntl, fd, F_SETFL, flags & ~O_NONBLOCK);
	return fd;
}

static int open_default(char *why, size_t why_size)
{
	int fd =
	    oa_fd_open(sink.path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK, 0600);
	struct stat st;
	if (fd < 0) {
		/* ELOOP, or EACCES where the link is in a sticky directory */
		int error = errno;
		if (lstat(sink.path, &st) != 0 || !S_ISLNK(st.st_mode)) {
			errno = error;
			return -1;
		}
		snprintf(why, why_size, "it is a symbolic link");
		return REFUSED;
	}
	if (fstat(fd, &st) != 0)
		snprintf(why, why_size, "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(why, why_size, "it is not a regular file");
	else if (st.st_uid != geteuid())
		snprintf(why, why_size, "it belongs to uid %u", (unsigned)st.st_uid);
	else if (st.st_nlink != 1)
		snprintf(why, why_size, "it has %lu hard links", (unsigned long)st.st_nlink);
	else
		return writes_block(fd);
	oa_fd_release(fd);
	return REFUSED;
}

static int open_chosen(char *why, size_t why_size)
{
	struct destination d;
	if (!follow_links(sink.path, &d, why, why_size))
		return REFUSED;
	int flags = O_WRONLY | O_CREAT | O_APPEND;
	if (d.in_proc)
		return oa_fd_open(sink.path, flags, 0600);
	int fd = oa_fd_open(d.path, flags | O_NOFOLLOW | (d.distrusted ? O_NONBLOCK : 0), 0600);
	if (fd < 0 || !d.distrusted)
		return fd;
	/* In a sticky world-writable directory, a file someone else left
	 * (the kernel's protected_regular rule), or a hard link to one of
	 * ours, is refused. */
	struct stat st;
	if (fstat(fd, &st) != 0)
		snprintf(why, why_size, "%s", strerror(errno));
	else if (!trusted_owner(st.st_uid, &d.dir))
		snprintf(why, why_size, "%s belongs to uid %u in a sticky world-writable directory",
			 d.path, (unsigned)st.st_uid);
	else if (S_ISREG(st.st_mode) && st.st_nlink != 1)
		snprintf(why, why_size,
			 "%s has %lu hard links in a sticky world-writable directory", d.path,
			 (unsigned long)st.st_nlink);
	else
		return writes_block(fd);
	oa_fd_release(fd);
	return REFUSED;
}

static void open_sink(void)
{
	char why[PATH_MAX + 128];
	int fd;
	if (!sink.path[0] && !name_sink()) {
		errno = ENAMETOOLONG;
		fd = -1;
	} else {
		fd = oa_rt.cfg.file_path ? open_chosen(why, sizeof why)
					 : open_default(why, sizeof why);
	}
	if (fd >= 0) {
		sink.fd = fd;
		return;
	}
	if (sink.warned_open)
		return;
	sink.warned_open = true;
	if (fd == REFUSED)
		oa_warn("not writing spans to %s: %s; spans are dropped", sink.path, why);
	else
		oa_warn("cannot open %s: %s; spans are dropped",
			sink.path[0] ? sink.path : oa_rt.cfg.file_path, strerror(errno));
}

/* Bytes written before an error (all of them, or fewer with errno set). */
static size_t write_some(int fd, const char *p, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t w = (ssize_t)syscall(SYS_write, fd, p + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			break;
		}
		done += (size_t)w;
	}
	return done;
}

bool oa_filesink_write(const char *data, size_t len)
{
	if (sink.fd >= 0 && oa_fd_take_hijacked(sink.fd)) {
		/* The number is the program's file now: forgotten, not closed. */
		oa_debug("the program put its own file on the descriptor of %s; reopening",
			 sink.path);
		sink.fd = -1;
	}
	if (sink.fd < 0)
		open_sink();
	if (sink.fd < 0)
		return false;
	/* A line cut short by an earlier failure is ended first, so that this
	 * one stands on its own: a reader skips only the cut one. */
	if (sink.line_open && write_some(sink.fd, "\n", 1) == 1)
		sink.line_open = false;
	size_t written = sink.line_open ? 0 : write_some(sink.fd, data, len);
	if (written == len)
		return true;
	sink.line_open |= written > 0;
	if (!sink.warned_write) {
		sink.warned_write = true;
		oa_warn("cannot write to %s: %s; spans are dropped", sink.path, strerror(errno));
	}
	return false;
}

bool oa_filesink_open(void)
{
	if (sink.fd < 0)
		open_sink();
	return sink.fd >= 0;
}

void oa_filesink_atfork_child(void)
{
	if (oa_rt.cfg.file_path)
		return;
	if (sink.fd >= 0)
		oa_fd_release(sink.fd);
	sink.fd = -1;
	sink.path[0] = '\0';
}
