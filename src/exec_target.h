/* What a program about to be exec'd will be: one that loads LD_PRELOAD (a
 * dynamically linked ELF, or a script whose interpreter is one), or one that
 * will not run the shim (statically linked, set-uid/set-gid so the loader
 * ignores LD_PRELOAD), or one the exec will refuse. The exec hook hands the exec
 * span to the new program only when it will run the shim. */
#ifndef OTLPAUTO_EXEC_TARGET_H
#define OTLPAUTO_EXEC_TARGET_H

#include <stdbool.h>
#include <stddef.h>

/* The file execvp would run for `file` with this PATH (NULL: the default
 * search path), in out; false when none is found. */
bool oa_exec_search(const char *file, const char *path_env, char *out, size_t size);

enum oa_exec_target {
	OA_EXEC_LOADS_PRELOAD, /* a dynamically linked program (or a script run by one) */
	OA_EXEC_NO_PRELOAD,    /* static, set-id, not ELF64: runs without the shim */
	OA_EXEC_UNRUNNABLE,    /* not found, not readable, not a program: the exec fails */
};

/* What the program in this file (path, or fd >= 0 for fexecve) is. */
enum oa_exec_target oa_exec_target_check(const char *path, int fd);

#endif
