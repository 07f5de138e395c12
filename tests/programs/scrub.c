/* Execs a program with an environment it changed:
 *   scrub minimal CMD ARGS...   execve with only PATH (a scrubbed environment)
 *   scrub unset CMD ARGS...     unsetenv LD_PRELOAD first, then execv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	if (strcmp(argv[1], "minimal") == 0) {
		char *env[] = {"PATH=/usr/bin:/bin", NULL};
		execve(argv[2], argv + 2, env);
	} else if (strcmp(argv[1], "unset") == 0) {
		unsetenv("LD_PRELOAD");
		execv(argv[2], argv + 2);
	}
	perror("scrub");
	return 127;
}
