/* Our own file descriptors (the exporter's sockets and files, libcurl's) are
 * hidden from the application's close/close_range/dup2/dup3. Lock-free
 * bitmaps cover fds below OA_FD_GUARD_LIMIT; higher fds are not protected.
 * Descriptors we open ourselves also leave the low numbers at once: a
 * program that closes fd 1 and opens its log expects to get 1 again. */
#ifndef OTLPAUTO_FDGUARD_H
#define OTLPAUTO_FDGUARD_H

#include <stdbool.h>
#include <sys/types.h>

#define OA_FD_GUARD_LIMIT (1 << 20)

/* Protecting a number also clears its hijacked mark: it has a new owner. */
void oa_fd_protect(int fd);
void oa_fd_unprotect(int fd);
bool oa_fd_is_protected(int fd);
/* The lowest protected fd >= from, or -1. */
int oa_fd_next_protected(int from);

/* dup2/dup3 onto a protected fd hands the number to the application: the hook
 * marks it hijacked and unprotects it. The owner checks before using the fd
 * again and then forgets the number without closing it. True once per mark. */
void oa_fd_mark_hijacked(int fd);
bool oa_fd_take_hijacked(int fd);

/* The lowest number our descriptors move to: 64 below RLIMIT_NOFILE (F_DUPFD
 * fails at or above it) or below 1024, whichever is lower. */
int oa_fd_high_floor(void);
/* Grows the descriptor table to hold our numbers now, while the process has
 * one thread: growing it later, once threads share it, waits for an RCU
 * grace period. Needs one of fds 0-2 open; otherwise does nothing. */
void oa_fd_reserve_table(void);
/* The kernel gives a new descriptor the lowest free number, and oa_fd_own
 * moves ours up and protects them; until then the number is unguarded. A
 * program that closes a number twice (bash closes each end of a pipe twice)
 * would close ours if its second close fell in that window, and a dup2 onto
 * a number it believes free would replace ours. So the making of ours
 * (make_begin: the system call that creates it, oa_fd_own, make_end) and
 * the program's closes and dup2s of unprotected numbers (replace_begin/end,
 * the check of the number inside) exclude each other, each side waiting a
 * bounded time (a program's close can block: a lingering socket). */
void oa_fd_make_begin(void);
void oa_fd_make_end(void);
void oa_fd_replace_begin(void);
void oa_fd_replace_end(void);
/* In a forked child: whoever was inside is gone. */
void oa_fd_atfork_child(void);
/* Takes a descriptor we just opened: moves it to oa_fd_high_floor() or above
 * (where it stays if no number is free there) and protects it. Returns the
 * number to use, or -1 (everything closed) when the program dup2'd onto the
 * low number before it was moved. Raw system calls: no hook sees them. */
int oa_fd_own(int fd);
/* open(2) through oa_fd_own, between make_begin and make_end; O_CLOEXEC is
 * added. -1 with errno on failure. */
int oa_fd_open(const char *path, int flags, mode_t mode);
/* Reads up to `size` bytes of a small file (/proc) through a descriptor of
 * ours (oa_fd_open, pread, oa_fd_release). Bytes read, or -1. */
ssize_t oa_fd_read_file(const char *path, char *buf, size_t size);
/* Gives up one of ours: closes it, unless the program took the number over
 * with dup2/dup3 (then it is the program's file and stays open). Returns
 * close's result, 0 when handed over. */
int oa_fd_release(int fd);

#endif
