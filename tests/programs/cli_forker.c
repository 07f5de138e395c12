/* For the otlpauto command's tests: three processes of one trace. The parent
 * works and forks; the child works and execs this program again with "exec",
 * which works too. Each prints "<role> <pid>" first; the parent exits with 3. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Long enough for the callers to pass the default 100us function span
 * threshold; not a span itself, nor is say(), so the tree is known exactly. */
static __attribute__((no_instrument_function)) void pause_2ms(void)
{
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL);
}

static __attribute__((noinline)) void parent_work(void)
{
	pause_2ms();
}

static __attribute__((noinline)) void child_work(void)
{
	pause_2ms();
}

static __attribute__((noinline)) void exec_work(void)
{
	pause_2ms();
}

static __attribute__((no_instrument_function)) void say(const char *role)
{
	printf("%s %d\n", role, (int)getpid());
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec") == 0) {
		say("exec");
		exec_work();
		return 0;
	}
	say("parent");
	parent_work();
	pid_t child = fork();
	if (child == 0) {
		say("child");
		child_work();
		execl(argv[0], argv[0], "exec", (char *)NULL);
		_exit(127);
	}
	waitpid(child, NULL, 0);
	return 3;
}
