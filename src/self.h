/* What the process knows of itself without asking /proc again: its
 * executable's path, read once per program image (a forked child inherits
 * it: fork does not change the executable), and its command line, read from
 * the argument area as the kernel reads it for /proc/self/cmdline, once the
 * program's start was seen. A traced shell forks and execs a child per
 * command: each child's resource then costs no open or read. */
#ifndef OTLPAUTO_SELF_H
#define OTLPAUTO_SELF_H

#include <stddef.h>

/* The executable's path ("" when it cannot be read). */
const char *oa_self_exe_path(void);
/* At the program's start (__libc_start_main), before main may rewrite its
 * arguments: where the kernel put them, and the environment after them. */
void oa_self_set_args(int argc, char **argv);
/* The command line, NUL-separated as /proc/self/cmdline gives it (a title a
 * program wrote over its arguments included, by the kernel's rule), in
 * place, without a copy: NULL when the program's start was not seen. */
const char *oa_self_cmdline(size_t *len);

#endif
