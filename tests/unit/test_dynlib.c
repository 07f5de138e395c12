/* Libraries opened when first needed: a table is filled by name; a missing
 * library or function gives one warning naming what stays off, and the
 * answer is remembered (no second attempt, no second warning); a child
 * forked while a thread of its parent loads a library does not wait for it.
 * argv[1]: libslowinit.so (its load takes 300 ms). */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "dynlib.h"
#include "log.h"

static char lines[8][256];
static int n_lines;

static void capture(const char *line)
{
	if (n_lines < 8)
		snprintf(lines[n_lines], sizeof lines[0], "%s", line);
	n_lines++;
}

#define ZLIB_FUNCTIONS(X) X(zlibVersion) X(crc32)
static struct {
	ZLIB_FUNCTIONS(OA_DYNLIB_POINTER)
} zlib;
#define ZLIB_SYMBOL(name) OA_DYNLIB_SYMBOL(zlib, name)
static const struct oa_dynlib_symbol zlib_symbols[] = {ZLIB_FUNCTIONS(ZLIB_SYMBOL)};

static void test_present(void)
{
	struct oa_dynlib lib = OA_DYNLIB("libz.so.1", zlib_symbols, "nothing works");
	CHECK(oa_dynlib_load(&lib));
	CHECK(oa_dynlib_load(&lib));
	CHECK_EQ_STR(zlib.zlibVersion(), zlibVersion());
	CHECK_EQ_INT(zlib.crc32(0, (const Bytef *)"abc", 3), 0x352441c2);
	CHECK_EQ_INT(n_lines, 0);
}

static void test_library_missing(void)
{
	n_lines = 0;
	struct oa_dynlib lib =
	    OA_DYNLIB("libotlpauto-test-absent.so.7", zlib_symbols, "the feature is off");
	CHECK(!oa_dynlib_load(&lib));
	CHECK(!oa_dynlib_load(&lib));
	CHECK_EQ_INT(n_lines, 1);
	CHECK(strncmp(lines[0], "otlpauto: cannot load libotlpauto-test-absent.so.7 (", 52) == 0);
	const char *tail = "); the feature is off";
	size_t len = strlen(lines[0]);
	CHECK(len > strlen(tail) && strcmp(lines[0] + len - strlen(tail), tail) == 0);
}

static struct {
	OA_DYNLIB_POINTER(zlibVersion)
	void (*no_such_function)(void);
} partial;

static void test_function_missing(void)
{
	n_lines = 0;
	static const struct oa_dynlib_symbol symbols[] = {
	    OA_DYNLIB_SYMBOL(partial, zlibVersion) OA_DYNLIB_SYMBOL(partial, no_such_function)};
	struct oa_dynlib lib = OA_DYNLIB("libz.so.1", symbols, "the feature is off");
	CHECK(!oa_dynlib_load(&lib));
	CHECK(!oa_dynlib_load(&lib));
	CHECK_EQ_INT(n_lines, 1);
	CHECK_EQ_STR(lines[0], "otlpauto: libz.so.1 has no no_such_function; the feature is off");
}

static struct {
	int (*slowinit_marker)(void);
} slow;
static const struct oa_dynlib_symbol slow_symbols[] = {OA_DYNLIB_SYMBOL(slow, slowinit_marker)};
static struct oa_dynlib slow_lib;

static void *load_slow(void *arg)
{
	(void)arg;
	return oa_dynlib_load(&slow_lib) ? &slow_lib : NULL;
}

/* In the child: the library the parent's thread is loading, and another
 * one, both at once (a lock held across loads would hang it: the alarm). */
static int child_loads(void)
{
	alarm(5);
	struct oa_dynlib other = OA_DYNLIB("libz.so.1", zlib_symbols, "nothing works");
	bool ok =
	    oa_dynlib_load(&other) && oa_dynlib_load(&slow_lib) && slow.slowinit_marker() == 42;
	return ok ? 0 : 1;
}

static void test_fork_during_load(const char *slow_path)
{
	slow_lib = (struct oa_dynlib)OA_DYNLIB(slow_path, slow_symbols, "nothing works");
	pthread_t loader;
	CHECK_EQ_INT(pthread_create(&loader, NULL, load_slow, NULL), 0);
	usleep(100000); /* the thread is in the library's constructor now */
	pid_t pid = fork();
	if (pid == 0)
		_exit(child_loads());
	int status = 0;
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	void *loaded = NULL;
	pthread_join(loader, &loaded);
	CHECK(loaded == &slow_lib);
	CHECK_EQ_INT(slow.slowinit_marker(), 42);
}

int main(int argc, char **argv)
{
	CHECK_EQ_INT(argc, 2);
	if (argc != 2)
		CHECK_DONE();
	oa_log_set_sink(capture);
	test_present();
	test_library_missing();
	test_function_missing();
	test_fork_during_load(argv[1]);
	oa_log_set_sink(NULL);
	CHECK_DONE();
}
