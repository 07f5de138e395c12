/* Instrumented scenarios around the end of a process or a thread, for
 * test_exit.py. Usage: exits MODE; see main(). */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static volatile unsigned long sink;

static void say(const char *line)
{
	/* write(2), not stdio: the process dies of a signal, stdio is not flushed */
	if (write(1, line, strlen(line)) < 0)
		_exit(2);
}

NOINLINE static void leaf(void)
{
	sink++;
}

NOINLINE static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Allocates and frees blocks that bypass malloc's per-thread cache, so the
 * main arena's lock is held much of the time: a signal lands inside it.
 * (A second thread makes malloc lock at all.) */
NOINLINE static int alloc_loop(void)
{
	pthread_t thread;
	if (pthread_create(&thread, NULL, idle, NULL) != 0)
		return 1;
	say("ready\n");
	for (;;) {
		char *p = malloc(64 << 10);
		if (!p)
			return 1;
		p[0] = 1;
		sink += (unsigned long)p[0];
		free(p);
	}
}

/* A thread limit reached: clone3 fails with EAGAIN (a seccomp filter, as a
 * container's could), so starting the exporter thread fails and sets errno. */
static void limit_threads(void)
{
	struct sock_filter filter[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
		perror("exits: seccomp");
		exit(2);
	}
}

static jmp_buf jump;

NOINLINE static void jump_away(void)
{
	longjmp(jump, 1);
}

/* Its exit finds jump_away's frame on top: that frame is ended as unwound
 * (the process's first span) before this one. errno must survive both. */
NOINLINE static int set_errno_after_longjmp(void)
{
	if (setjmp(jump) == 0)
		jump_away();
	errno = ERANGE;
	return 0;
}

NOINLINE static int errno_after_unwound(void)
{
	limit_threads();
	set_errno_after_longjmp();
	int seen = errno;
	printf("errno %s\n", seen == ERANGE ? "kept" : strerrorname_np(seen));
	return 0;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int worker_started;

/* Tells main to exit once its frame and its caller's are open, then ends
 * 300 ms later, during the exit flush. (Told before its sleep was entered,
 * main could begin the exit first, after which no frame is pushed: under
 * load that frame was missing.) */
NOINLINE static void signal_then_sleep(void)
{
	pthread_mutex_lock(&lock);
	worker_started = 1;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	struct timespec ts = {0, 300000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

NOINLINE static void ends_during_exit(void)
{
	signal_then_sleep();
}

NOINLINE static void *exit_worker(void *arg)
{
	(void)arg;
	ends_during_exit();
	for (;;)
		pause();
	return NULL;
}

/* main exits while a worker's call is open; the call ends after the exit
 * began (main, end_after_exit and leaf are queued; ends_during_exit and
 * signal_then_sleep are counted; exit_worker never ends). */
NOINLINE static int end_after_exit(void)
{
	leaf();
	pthread_t thread;
	if (pthread_create(&thread, NULL, exit_worker, NULL) != 0)
		return 1;
	pthread_mutex_lock(&lock);
	while (!worker_started)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	exit(0);
}

static pthread_key_t late_key;

NOINLINE static void in_destructor(void)
{
	leaf();
}

/* The destructor of a key created after the library's: it runs after the
 * library's own thread-exit handler. */
static void late_destructor(void *value)
{
	(void)value;
	in_destructor();
}

NOINLINE static void *destructor_worker(void *arg)
{
	(void)arg;
	pthread_setspecific(late_key, &late_key);
	leaf();
	return NULL;
}

NOINLINE static int tls_destructor(void)
{
	if (pthread_key_create(&late_key, late_destructor) != 0)
		return 1;
	pthread_t thread;
	if (pthread_create(&thread, NULL, destructor_worker, NULL) != 0)
		return 1;
	pthread_join(thread, NULL);
	return 0;
}

/* Writes lines until the reader goes away (`exits write-forever | head -1`):
 * main and write_forever are open when SIGPIPE comes. */
NOINLINE static int write_forever(void)
{
	leaf();
	for (;;)
		if (write(1, "y\n", 2) < 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "alloc-loop") == 0)
		return alloc_loop();
	if (strcmp(mode, "errno-unwound") == 0)
		return errno_after_unwound();
	if (strcmp(mode, "end-after-exit") == 0)
		return end_after_exit();
	if (strcmp(mode, "tls-destructor") == 0)
		return tls_destructor();
	if (strcmp(mode, "write-forever") == 0)
		return write_forever();
	fprintf(stderr, "exits: unknown mode %s\n", mode);
	return 2;
}
