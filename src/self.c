#include "self.h"
#include "sys.h"

#include <limits.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct {
	char exe[PATH_MAX];
	int exe_read; /* 0 not yet, 1 read (atomic) */
	const char *arg_start, *arg_end, *env_end;
} self OA_LARGE_BSS;

const char *oa_self_exe_path(void)
{
	if (!__atomic_load_n(&self.exe_read, __ATOMIC_ACQUIRE)) {
		/* Racing readers write the same bytes. */
		long n = syscall(SYS_readlink, "/proc/self/exe", self.exe, sizeof self.exe - 1);
		self.exe[n > 0 ? n : 0] = '\0';
		__atomic_store_n(&self.exe_read, 1, __ATOMIC_RELEASE);
	}
	return self.exe;
}

void oa_self_set_args(int argc, char **argv)
{
	if (argc <= 0 || !argv || !argv[0])
		return;
	const char *last = argv[argc - 1];
	self.arg_start = argv[0];
	self.arg_end = last + strlen(last) + 1;
	/* The kernel puts the environment's strings right after the
	 * arguments: the chain stops at the first one moved elsewhere. */
	const char *env_end = self.arg_end;
	for (char **env = argv + argc + 1; *env == env_end; env++)
		env_end += strlen(*env) + 1;
	self.env_end = env_end;
}

/* Linux's get_mm_cmdline: the argument area, unless its last byte is no
 * longer a NUL: a program wrote a title over it (setproctitle), and the
 * command line is that title, up to its NUL, within a page. */
const char *oa_self_cmdline(size_t *len)
{
	if (!self.arg_start || self.arg_end <= self.arg_start)
		return NULL;
	size_t area = (size_t)(self.arg_end - self.arg_start);
	if (self.arg_end[-1] == '\0') {
		*len = area;
		return self.arg_start;
	}
	size_t limit = (size_t)(self.env_end - self.arg_start);
	if (limit > 4096)
		limit = 4096;
	size_t n = strnlen(self.arg_start, limit);
	*len = n < limit ? n + 1 : n;
	return self.arg_start;
}
