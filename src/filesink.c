/* The otlp/file sink. Its descriptor is ours like the transport's sockets
 * (fdguard.h): above the low numbers, protected from the program's close and
 * close_range, and given up to a dup2/dup3 onto it, after which the file is
 * opened again. */
#include "filesink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdguard.h"
#include "log.h"
#include "runtime.h"

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

static void open_sink(void)
{
	if (!sink.path[0] && !name_sink())
		errno = ENAMETOOLONG;
	else
		sink.fd = oa_fd_open(sink.path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (sink.fd >= 0 || sink.warned_open)
		return;
	sink.warned_open = true;
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

void oa_filesink_atfork_child(void)
{
	if (oa_rt.cfg.file_path)
		return;
	if (sink.fd >= 0)
		oa_fd_release(sink.fd);
	sink.fd = -1;
	sink.path[0] = '\0';
}
