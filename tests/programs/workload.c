/* An instrumented program with deterministic call trees, for exact span
 * counts. Usage: workload MODE [ARGS]; see main(). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static volatile unsigned long sink;

NOINLINE static void leaf(int i)
{
	sink += (unsigned long)i;
}

NOINLINE static void stage_a(void)
{
	leaf(1);
	leaf(2);
}

NOINLINE static void stage_b(void)
{
	leaf(3);
}

NOINLINE static void *worker_main(void *arg)
{
	(void)arg;
	stage_a();
	stage_b();
	return NULL;
}

/* 3 threads: per thread worker_main, stage_a, stage_b and 3 leaf calls. */
NOINLINE static int run_tree(void)
{
	pthread_t threads[3];
	for (int i = 0; i < 3; i++)
		if (pthread_create(&threads[i], NULL, worker_main, NULL) != 0)
			return 1;
	for (int i = 0; i < 3; i++)
		pthread_join(threads[i], NULL);
	return 0;
}

NOINLINE static void tiny(int i)
{
	sink ^= (unsigned long)i;
}

NOINLINE static int run_hot(long n)
{
	for (long i = 0; i < n; i++)
		tiny((int)i);
	return 0;
}

NOINLINE static void child_work(void)
{
	leaf(7);
}

/* n children one after another: each runs child_work then leaves with exit
 * or _exit. */
NOINLINE static int run_forks(int n, bool use__exit)
{
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			child_work();
			if (use__exit)
				_exit(0);
			exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
			return 1;
	}
	return 0;
}

/* A forked child that execs from inside a function: child_exec is open at
 * the exec (the new image runs "status 0"). */
NOINLINE static void child_exec(const char *self)
{
	execl(self, self, "status", "0", (char *)NULL);
}

NOINLINE static int run_fork_exec(const char *self)
{
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		child_exec(self);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}

NOINLINE static int exec_level(const char *self, int depth)
{
	leaf(depth);
	if (depth == 0)
		return 0;
	char next[16];
	snprintf(next, sizeof next, "%d", depth - 1);
	execl(self, self, "exec", next, (char *)NULL);
	return 1;
}

NOINLINE static unsigned long recurse(int n)
{
	return n <= 0 ? 0 : 1 + recurse(n - 1);
}

static jmp_buf jump;

NOINLINE static void jump_deep(int n)
{
	if (n < 0)
		return;
	if (n == 0)
		longjmp(jump, 1);
	jump_deep(n - 1);
}

/* Leaves three jump_deep frames by longjmp, then calls leaf. */
NOINLINE static int run_longjmp(void)
{
	if (setjmp(jump) == 0)
		jump_deep(2);
	leaf(5);
	return 0;
}

NOINLINE static void exit_deep(int n)
{
	if (n < 0)
		return;
	if (n == 0)
		exit(3);
	exit_deep(n - 1);
}

NOINLINE static void warm_up(void)
{
	leaf(9);
}

/* Prints "ready", then waits to be killed by a signal. */
NOINLINE static int wait_for_signal(void)
{
	warm_up();
	/* write(2), not stdio: a handler that calls exit() flushes stdio. */
	static const char ready[] = "ready\n";
	if (write(1, ready, sizeof ready - 1) < 0)
		return 1;
	for (;;)
		pause();
	__builtin_unreachable();
}

static void on_term(int sig)
{
	(void)sig;
	static const char msg[] = "handled\n";
	ssize_t unused = write(1, msg, sizeof msg - 1);
	(void)unused;
	exit(0);
}

/* The program's own SIGTERM handler must run, unchanged. */
NOINLINE static int own_handler(void)
{
	signal(SIGTERM, on_term);
	return wait_for_signal();
}

/* What the program sees of SIGTERM's disposition. */
NOINLINE static int query_signal(void)
{
	struct sigaction old;
	sigaction(SIGTERM, NULL, &old);
	printf("%s\n", old.sa_handler == SIG_DFL ? "default" : "other");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "tree";
	if (strcmp(mode, "tree") == 0)
		return run_tree();
	if (strcmp(mode, "hot") == 0)
		return run_hot(argc > 2 ? atol(argv[2]) : 1000000);
	if (strcmp(mode, "fork") == 0)
		return run_forks(argc > 2 ? atoi(argv[2]) : 10,
				 argc > 3 && strcmp(argv[3], "_exit") == 0);
	if (strcmp(mode, "fork-exec") == 0)
		return run_fork_exec(argv[0]);
	if (strcmp(mode, "exec") == 0)
		return exec_level(argv[0], argc > 2 ? atoi(argv[2]) : 3);
	if (strcmp(mode, "recurse") == 0)
		return recurse(argc > 2 ? atoi(argv[2]) : 100) ? 0 : 1;
	if (strcmp(mode, "longjmp") == 0)
		return run_longjmp();
	if (strcmp(mode, "exit-deep") == 0) {
		exit_deep(2);
		return 1;
	}
	if (strcmp(mode, "wait-signal") == 0)
		return wait_for_signal();
	if (strcmp(mode, "own-handler") == 0)
		return own_handler();
	if (strcmp(mode, "query-signal") == 0)
		return query_signal();
	if (strcmp(mode, "status") == 0)
		return argc > 2 ? atoi(argv[2]) : 0;
	fprintf(stderr, "workload: unknown mode %s\n", mode);
	return 2;
}
