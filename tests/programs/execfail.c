/* An exec that fails, then more work: the frames open at the exec must stay
 * open and be sent once, when they really end.
 *   execfail e2big    /bin/true with 4 MiB of arguments (E2BIG: the program
 *                     exists and would load the shim)
 *   execfail PATH     PATH (missing: ENOENT; not a program: ENOEXEC)
 * Exits 4. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void leaf(void)
{
	usleep(1000);
}

static void try_exec(const char *what)
{
	if (strcmp(what, "e2big") == 0) {
		enum { ARGS = 64, ARG_BYTES = 64 * 1024 };
		char **argv = calloc(ARGS + 2, sizeof *argv);
		argv[0] = "/bin/true";
		for (int i = 1; i <= ARGS; i++) {
			argv[i] = malloc(ARG_BYTES);
			memset(argv[i], 'x', ARG_BYTES - 1);
			argv[i][ARG_BYTES - 1] = '\0';
		}
		execv("/bin/true", argv);
		return;
	}
	char *argv[] = {(char *)what, NULL};
	execv(what, argv);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	try_exec(argv[1]);
	leaf();
	return 4;
}
