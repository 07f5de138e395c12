/* What the process knows of itself: the executable's path, and the command
 * line read from the argument area exactly as the kernel gives it in
 * /proc/self/cmdline, also after a title was written over the arguments. */
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "self.h"

static size_t proc_cmdline(char *buf, size_t size)
{
	int fd = open("/proc/self/cmdline", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, size) : -1;
	close(fd);
	return n > 0 ? (size_t)n : 0;
}

static void check_same_as_kernel(const char *what)
{
	char kernel[8192];
	size_t kernel_len = proc_cmdline(kernel, sizeof kernel);
	size_t len = 0;
	const char *ours = oa_self_cmdline(&len);
	CHECK(ours != NULL);
	if (!ours)
		return;
	CHECK_EQ_INT(len, kernel_len);
	CHECK(len == kernel_len && memcmp(ours, kernel, len) == 0);
	if (len != kernel_len || memcmp(ours, kernel, len) != 0)
		printf("# %s: ours %zu bytes, the kernel's %zu\n", what, len, kernel_len);
}

int main(int argc, char **argv)
{
	char link[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", link, sizeof link - 1);
	link[n > 0 ? n : 0] = '\0';
	CHECK_EQ_STR(oa_self_exe_path(), link);

	size_t len = 0;
	CHECK(oa_self_cmdline(&len) == NULL); /* the start not seen yet */
	oa_self_set_args(argc, argv);
	check_same_as_kernel("arguments");

	/* A title over the arguments and on into the environment (nginx's
	 * setproctitle): the last byte of the argument area is no NUL. */
	size_t area = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]) + 1;
	char title[64];
	size_t title_len = area + 5 < sizeof title ? area + 5 : sizeof title - 1;
	memset(title, 't', title_len);
	title[title_len] = '\0';
	if (argv[argc + 1] && argv[argc + 1] == argv[argc - 1] + strlen(argv[argc - 1]) + 1 &&
	    strlen(argv[argc + 1]) > 8) {
		memcpy(argv[0], title, title_len + 1);
		check_same_as_kernel("title");
	} else {
		printf("# title case not checked: no environment string after the arguments\n");
	}
	CHECK_DONE();
}
