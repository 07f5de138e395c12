/* Programs the shim must not break (test_hostile.py), built with
 * -finstrument-functions and also statically linked. Usage: hostile MODE
 * [ARGS]; the span counts with OTLPAUTO_FUNCTION_THRESHOLD=0 are given at
 * each mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define PLAIN	 __attribute__((no_instrument_function))

static volatile unsigned long sink;

NOINLINE static void work_leaf(int i)
{
	sink += (unsigned long)i;
}

/* Spans: do_work and 3 x work_leaf. */
NOINLINE static void do_work(void)
{
	for (int i = 0; i < 3; i++)
		work_leaf(i);
}

/* A symbol name that is not UTF-8 (0xff 0xfe), and one that is (é). */
NOINLINE void utf8_bad(void) __asm__("utf8_\xff\xfe_bad");
NOINLINE void utf8_bad(void)
{
	work_leaf(1);
}
NOINLINE void utf8_good(void) __asm__("utf8_\xc3\xa9_good");
NOINLINE void utf8_good(void)
{
	work_leaf(2);
}

PLAIN static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Spans: main, close_everything, 2 x do_work, 6 x work_leaf. The first
 * batch goes out before
 * the descriptors are closed, so the exporter's connection exists then. */
NOINLINE static int close_everything(const char *how)
{
	do_work();
	sleep_ms(500);
	if (strcmp(how, "loop") == 0) {
		for (int fd = 3; fd <= 1024; fd++)
			close(fd);
	} else if (strcmp(how, "close_range") == 0) {
		if (close_range(3, ~0U, 0) != 0) {
			perror("close_range");
			return 1;
		}
	} else {
		closefrom(3);
	}
	/* The program's own descriptors still work. */
	FILE *f = fopen("/dev/null", "w");
	if (!f || fputs("x", f) < 0 || fclose(f) != 0)
		return 1;
	do_work();
	printf("closed\n");
	return 0;
}

/* Spans: main, run_vfork, "exec hostile", and the new image's main,
 * do_work and 3 x work_leaf. */
NOINLINE static int run_vfork(const char *self)
{
	pid_t pid = vfork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		execl(self, self, "status", "0", (char *)NULL);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 1;
	printf("child %d\n", WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "status";
	if (strcmp(mode, "status") == 0) { /* main, do_work, 3 x work_leaf */
		do_work();
		printf("work done\n");
		fprintf(stderr, "hostile: own stderr line\n");
		return argc > 2 ? atoi(argv[2]) : 0;
	}
	if (strcmp(mode, "close") == 0)
		return close_everything(argc > 2 ? argv[2] : "loop");
	if (strcmp(mode, "vfork") == 0)
		return run_vfork(argv[0]);
	if (strcmp(mode, "secure") == 0) { /* main, do_work, 3 x work_leaf */
		printf("secure %lu\n", getauxval(AT_SECURE));
		do_work();
		return 0;
	}
	if (strcmp(mode, "utf8") == 0) { /* main, utf8_bad, utf8_good, 2 x work_leaf */
		utf8_bad();
		utf8_good();
		printf("utf8 done\n");
		return 0;
	}
	fprintf(stderr, "hostile: unknown mode %s\n", mode);
	return 2;
}
