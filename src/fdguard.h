/* Our own file descriptors (the exporter's sockets and files, libcurl's) are
 * hidden from the application's close/close_range/dup2/dup3. Lock-free
 * bitmaps cover fds below OA_FD_GUARD_LIMIT; higher fds are not protected. */
#ifndef OTLPAUTO_FDGUARD_H
#define OTLPAUTO_FDGUARD_H

#include <stdbool.h>

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

#endif
