/* The otlp/file exporter's output: OTLP JSON lines appended to
 * OTLPAUTO_FILE, or to otlpauto-<pid>.jsonl in the working directory. Used by
 * the exporter thread alone (and the atfork child handler). */
#ifndef OTLPAUTO_FILESINK_H
#define OTLPAUTO_FILESINK_H

#include <stdbool.h>
#include <stddef.h>

/* Appends one line (data ends with '\n'), opening the file first if need be.
 * False when the line was not written: its spans are lost. */
bool oa_filesink_write(const char *data, size_t len);

/* Opens the file now (before a chroot or a change of user); false if not. */
bool oa_filesink_open(void);

/* In a forked child: a default file is named after the parent's pid, so the
 * child drops it and opens its own; a chosen file stays shared. */
void oa_filesink_atfork_child(void);

#endif
