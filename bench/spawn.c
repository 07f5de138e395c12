/* spawn N PRELOAD PROGRAM [ARGS...]: runs PROGRAM N times, one after the
 * other, with LD_PRELOAD=PRELOAD ("" for none) and the rest of the caller's
 * environment; prints the wall time per run. For `perf stat -e task-clock`:
 * the CPU of a short process's start and exit, with no shell in between. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: spawn N PRELOAD PROGRAM [ARGS...]\n");
		return 2;
	}
	int n = atoi(argv[1]);
	size_t count = 0;
	while (environ[count])
		count++;
	char **env = calloc(count + 2, sizeof *env);
	char preload[4096];
	if (!env)
		return 1;
	size_t k = 0;
	for (size_t i = 0; i < count; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			env[k++] = environ[i];
	if (argv[2][0]) {
		snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[2]);
		env[k++] = preload;
	}
	struct timespec start, end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < n; i++) {
		pid_t pid;
		int status;
		if (posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, env) != 0 ||
		    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			fprintf(stderr, "spawn: %s failed\n", argv[3]);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	double ms =
	    (double)(end.tv_sec - start.tv_sec) * 1e3 + (double)(end.tv_nsec - start.tv_nsec) / 1e6;
	printf("ms_per_run=%.4f\n", ms / n);
	free(env);
	return 0;
}
