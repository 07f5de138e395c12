/* Runs shell commands through system() and popen(), for test_commands.py.
 * Instrumented, so a traced run shows which function ran the command.
 * Usage: commands MODE [ARGS]; see main(). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

extern char **environ;

static volatile unsigned long sink;

NOINLINE static void leaf_work(void)
{
	sink++;
}

/* A traced child: one function span under main. Prints a line, exits code. */
NOINLINE static int run_leaf(int code)
{
	leaf_work();
	printf("leaf %d\n", code);
	return code;
}

NOINLINE static int run_system(const char *command)
{
	int r = system(command);
	fprintf(stderr, "system status %d errno %d\n", r, r == -1 ? errno : 0);
	return 0;
}

/* The command's output to stdout, byte for byte. */
NOINLINE static int run_popen_read(const char *command)
{
	FILE *f = popen(command, "r");
	if (!f)
		return 2;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, n, stdout);
	fflush(stdout);
	int r = pclose(f);
	fprintf(stderr, "pclose status %d errno %d\n", r, r == -1 ? errno : 0);
	return 0;
}

/* stdin to the command, byte for byte. */
NOINLINE static int run_popen_write(const char *command)
{
	FILE *f = popen(command, "w");
	if (!f)
		return 2;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
		fwrite(buf, 1, n, f);
	int r = pclose(f);
	fprintf(stderr, "pclose status %d errno %d\n", r, r == -1 ? errno : 0);
	return 0;
}

/* A popen stream left open at exit: read to its end (the command and its
 * shell have exited), or, `running`, its first line only (they may still
 * run, and send their spans, while this program, the relay host, exits). */
NOINLINE static int run_popen_unclosed(const char *command, bool running)
{
	FILE *f = popen(command, "r");
	char line[256];
	if (!f || !fgets(line, sizeof line, f))
		return 2;
	fputs(line, stdout);
	while (!running && fgets(line, sizeof line, f))
		fputs(line, stdout);
	return 0;
}

/* A popen stream open when the program execs itself as "commands leaf". */
NOINLINE static int run_popen_exec(const char *self, const char *command)
{
	FILE *f = popen(command, "r");
	char line[256];
	if (!f || !fgets(line, sizeof line, f))
		return 2;
	fputs(line, stdout);
	fflush(stdout);
	execl(self, "commands", "leaf", "0", (char *)NULL);
	return 2;
}

/* --- environment race (issue 14) --- */

static bool stop_threads; /* atomic */
static unsigned long traceparent_seen, environ_scans;

static bool stopping(void)
{
	return __atomic_load_n(&stop_threads, __ATOMIC_RELAXED);
}

static void *environ_watcher(void *arg)
{
	(void)arg;
	while (!stopping()) {
		for (char **e = environ; *e; e++)
			if (strncmp(*e, "TRACEPARENT=", 12) == 0)
				traceparent_seen++;
		if (getenv("TRACEPARENT"))
			traceparent_seen++;
		environ_scans++;
	}
	return NULL;
}

static void *environ_writer(void *arg)
{
	(void)arg;
	for (unsigned i = 0; !stopping(); i++)
		setenv("COMMANDS_TEST_VALUE", i % 2 ? "a" : "bb", 1);
	return NULL;
}

/* n system() calls while one thread reads the environment and another
 * rewrites a variable of it: the environment must never show TRACEPARENT. */
NOINLINE static int run_environment_race(int n)
{
	if (getenv("TRACEPARENT")) {
		fprintf(stderr, "TRACEPARENT is set at start\n");
		return 2;
	}
	/* Both values made here: glibc keeps the strings and the writer thread
	 * only swaps pointers (its own first allocation would race with readers,
	 * which is the program's race, not the one under test). */
	setenv("COMMANDS_TEST_VALUE", "bb", 1);
	setenv("COMMANDS_TEST_VALUE", "a", 1);
	pthread_t watcher, writer;
	pthread_create(&watcher, NULL, environ_watcher, NULL);
	pthread_create(&writer, NULL, environ_writer, NULL);
	int failed = 0;
	for (int i = 0; i < n; i++)
		if (system("exit 0") != 0)
			failed++;
	__atomic_store_n(&stop_threads, true, __ATOMIC_RELAXED);
	pthread_join(watcher, NULL);
	pthread_join(writer, NULL);
	printf("environ scans %s, TRACEPARENT seen %lu times, failed system calls %d\n",
	       environ_scans ? "> 0" : "0", traceparent_seen, failed);
	return traceparent_seen || !environ_scans ? 1 : 0;
}

struct popen_loop {
	int n;
	int failed;
};

static void *popen_loop(void *arg)
{
	struct popen_loop *loop = arg;
	for (int i = 0; i < loop->n; i++) {
		FILE *f = popen("exit 0", i % 2 ? "r" : "w");
		if (!f || pclose(f) != 0)
			loop->failed++;
	}
	return NULL;
}

/* Threads popen and pclose at once while this one opens and closes files
 * (fclose looks streams up in the same table). */
NOINLINE static int run_popen_threads(int n_threads, int n)
{
	pthread_t threads[16];
	struct popen_loop loops[16];
	if (n_threads > 16)
		return 2;
	for (int i = 0; i < n_threads; i++) {
		loops[i] = (struct popen_loop){n, 0};
		pthread_create(&threads[i], NULL, popen_loop, &loops[i]);
	}
	int failed = 0;
	for (int i = 0; i < n; i++) {
		FILE *f = fopen("/dev/null", "r");
		if (!f || fclose(f) != 0)
			failed++;
	}
	for (int i = 0; i < n_threads; i++) {
		pthread_join(threads[i], NULL);
		failed += loops[i].failed;
	}
	printf("failed calls %d\n", failed);
	return 0;
}

/* --- cancellation --- */

struct cancel_arg {
	const char *command;
	int status;
};

static void *system_thread(void *arg)
{
	struct cancel_arg *a = arg;
	a->status = system(a->command);
	return NULL;
}

/* A thread cancelled while system() waits: the shell is killed and reaped,
 * SIGINT is no longer ignored. */
NOINLINE static int run_cancel(void)
{
	int fds[2];
	if (pipe(fds) != 0)
		return 2;
	char command[128];
	snprintf(command, sizeof command, "echo $$ >&%d; kill -STOP $$", fds[1]);
	struct cancel_arg a = {command, 0};
	pthread_t thread;
	struct timespec start, end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_create(&thread, NULL, system_thread, &a);
	char buf[32] = {0};
	if (read(fds[0], buf, sizeof buf - 1) <= 0)
		return 2;
	pid_t shell = atoi(buf);
	void *result;
	pthread_cancel(thread);
	pthread_join(thread, &result);
	clock_gettime(CLOCK_MONOTONIC, &end);
	double seconds = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
	struct sigaction sa;
	sigaction(SIGINT, NULL, &sa);
	sigset_t mask;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	printf("cancelled %s, shell %s, SIGINT %s, SIGCHLD %s, %s\n",
	       result == PTHREAD_CANCELED ? "yes" : "no",
	       kill(shell, 0) == -1 && errno == ESRCH ? "gone" : "still there",
	       sa.sa_handler == SIG_IGN ? "ignored" : "not ignored",
	       sigismember(&mask, SIGCHLD) ? "blocked" : "not blocked",
	       seconds < 10 ? "in time" : "too slow");
	return 0;
}

/* --- what system() and popen() return, for the same run untraced --- */

static void print_system(const char *label, const char *command)
{
	fflush(stdout);
	errno = 0;
	int r = system(command);
	int e = errno;
	printf("%s: system %d%s%s\n", label, r, r == -1 ? " errno " : "",
	       r == -1 ? strerror(e) : "");
}

static void print_pclose(const char *label, FILE *f)
{
	errno = 0;
	int r = pclose(f);
	int e = errno;
	printf("%s: pclose %d errno %s\n", label, r, r == -1 ? strerror(e) : "-");
}

static void print_mode(const char *mode)
{
	errno = 0;
	FILE *f = popen("exit 0", mode);
	int e = errno;
	printf("mode \"%s\": %s", mode, f ? "stream" : "NULL");
	if (f) {
		int flags = fcntl(fileno(f), F_GETFD);
		printf(", close-on-exec %s\n", flags & FD_CLOEXEC ? "yes" : "no");
		pclose(f);
	} else {
		printf(", errno %s\n", strerror(e));
	}
}

static void print_signal_state(const char *label)
{
	struct sigaction intr, quit;
	sigaction(SIGINT, NULL, &intr);
	sigaction(SIGQUIT, NULL, &quit);
	sigset_t mask;
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	printf("%s: SIGINT %s, SIGQUIT %s, SIGCHLD %s, SIGUSR1 %s\n", label,
	       intr.sa_handler == SIG_IGN ? "ignored" : "not ignored",
	       quit.sa_handler == SIG_IGN ? "ignored" : "not ignored",
	       sigismember(&mask, SIGCHLD) ? "blocked" : "not blocked",
	       sigismember(&mask, SIGUSR1) ? "blocked" : "not blocked");
}

/* Writes into a stream whose command exits without reading until a write
 * fails (EPIPE, SIGPIPE ignored), then leaves one byte for pclose to flush. */
static void print_failed_flush(const char *label, const char *command)
{
	FILE *f = popen(command, "w");
	setvbuf(f, NULL, _IOFBF, 4096);
	while (fputs("x", f) != EOF && fflush(f) == 0)
		;
	clearerr(f);
	fputs("x", f);
	print_pclose(label, f);
}

/* Whether fd is open in a popen shell (the shell's test builtin looks at
 * its own /proc/self). */
static void print_inherited(const char *label, int fd, const char *mode)
{
	char command[160];
	snprintf(command, sizeof command,
		 "if [ -e /proc/self/fd/%d ]; then echo %s: inherited; else echo %s: closed; fi",
		 fd, label, label);
	fflush(stdout);
	FILE *f = popen(command, mode);
	if (mode[0] == 'r') {
		char line[160];
		while (fgets(line, sizeof line, f))
			fputs(line, stdout);
	}
	pclose(f);
}

NOINLINE static int run_parity(void)
{
	signal(SIGPIPE, SIG_IGN);
	print_system("exit 0", "exit 0");
	print_system("exit 3", "exit 3");
	print_system("killed", "kill -9 $$");
	print_system("missing command", "exec 2>/dev/null; no-such-command-here");
	printf("system(NULL): %d\n", system(NULL));

	print_signal_state("before system");
	print_system("SIGINT and SIGQUIT to the caller",
		     "kill -INT $PPID; kill -QUIT $PPID; exit 4");
	print_system("SIGINT to the shell", "kill -INT $$; exit 0");
	print_signal_state("after system");
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	signal(SIGINT, SIG_IGN);
	print_system("ignored SIGINT to the shell", "kill -INT $$; exit 0");
	print_signal_state("after system, SIGINT ignored, SIGUSR1 blocked");
	signal(SIGINT, SIG_DFL);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);

	FILE *f = popen("echo hello; exit 3", "r");
	char line[64] = "";
	fgets(line, sizeof line, f);
	printf("read: %s", line);
	print_pclose("popen r, exit 3", f);
	f = popen("cat >/dev/null; exit 5", "w");
	fputs("data\n", f);
	print_pclose("popen w, exit 5", f);
	print_pclose("popen r, killed", popen("kill -9 $$", "r"));
	print_pclose("popen r, missing command", popen("exec 2>/dev/null; no-such-command", "r"));
	/* glibc allows what POSIX leaves undefined (and GCC warns about) */
	int (*volatile close_stream)(FILE *) = fclose;
	printf("fclose of a popen stream: %d\n", close_stream(popen("exit 6", "r")));
	print_pclose("pclose of a file", fopen("/dev/null", "r"));
	print_failed_flush("failed flush, exit 0", "exit 0");
	print_failed_flush("failed flush, exit 5", "exit 5");
	const char *modes[] = {"r",  "w",  "rr", "re", "er", "wee", "rw",
			       "wr", "rx", "",	 "e",  "r+", "rb"};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
		print_mode(modes[i]);

	FILE *w = popen("cat >/dev/null", "w");
	FILE *r = popen("cat", "r");
	print_inherited("earlier w stream, r shell", fileno(w), "r");
	print_inherited("earlier r stream, w shell", fileno(r), "w");
	int plain = open("/dev/null", O_RDONLY);
	print_inherited("a plain descriptor", plain, "r");
	close(plain);

	/* a forked child does not wait for its parent's shells */
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		errno = 0;
		int status = pclose(r);
		printf("pclose in a forked child: %d errno %s\n", status, strerror(errno));
		fflush(stdout);
		_exit(0);
	}
	waitpid(child, NULL, 0);
	print_pclose("earlier w stream", w);
	print_pclose("earlier r stream", r);

	signal(SIGCHLD, SIG_IGN);
	print_system("SIGCHLD ignored", "exit 2");
	print_pclose("SIGCHLD ignored", popen("exit 2", "r"));
	signal(SIGCHLD, SIG_DFL);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *arg = argc > 2 ? argv[2] : NULL;
	if (strcmp(mode, "leaf") == 0)
		return run_leaf(arg ? atoi(arg) : 0);
	if (strcmp(mode, "system") == 0 && arg)
		return run_system(arg);
	if (strcmp(mode, "popen-read") == 0 && arg)
		return run_popen_read(arg);
	if (strcmp(mode, "popen-write") == 0 && arg)
		return run_popen_write(arg);
	if (strcmp(mode, "popen-unclosed") == 0 && arg)
		return run_popen_unclosed(arg, false);
	if (strcmp(mode, "popen-unclosed-running") == 0 && arg)
		return run_popen_unclosed(arg, true);
	if (strcmp(mode, "popen-exec") == 0 && arg)
		return run_popen_exec(argv[0], arg);
	if (strcmp(mode, "environment-race") == 0)
		return run_environment_race(arg ? atoi(arg) : 50);
	if (strcmp(mode, "popen-threads") == 0 && argc > 3)
		return run_popen_threads(atoi(argv[2]), atoi(argv[3]));
	if (strcmp(mode, "cancel") == 0)
		return run_cancel();
	if (strcmp(mode, "parity") == 0)
		return run_parity();
	fprintf(stderr,
		"usage: commands leaf [CODE] | system CMD | popen-read CMD | popen-write CMD"
		" | popen-unclosed[-running] CMD | popen-exec CMD | environment-race [N] | "
		"popen-threads "
		"THREADS N | cancel | parity\n");
	return 2;
}
