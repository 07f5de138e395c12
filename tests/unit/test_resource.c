/* The process's Resource: arguments from /proc/self/cmdline, and the
 * attributes built for this test process. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "resource.h"

#define COUNT(literal) oa_cmdline_arg_count(literal, sizeof literal - 1)

static void test_arg_count(void)
{
	CHECK_EQ_INT(COUNT("prog\0"), 1);
	CHECK_EQ_INT(COUNT("prog\0-v\0x y\0"), 3);
	CHECK_EQ_INT(COUNT("prog\0-v"), 2);	/* the last one without its NUL */
	CHECK_EQ_INT(COUNT("prog\0\0-v\0"), 3); /* an empty argument in the middle stays */
	/* nginx's setproctitle: the title, then NULs where the arguments were */
	CHECK_EQ_INT(COUNT("nginx: worker process\0\0\0\0\0\0\0\0\0\0\0\0"), 1);
	CHECK_EQ_INT(COUNT("\0"), 1);
	CHECK_EQ_INT(oa_cmdline_arg_count("", 0), 0);
}

static const struct oa_attr *find(const struct oa_resource *r, const char *key)
{
	for (size_t i = 0; i < r->n_attrs; i++)
		if (strcmp(r->attrs[i].key.ptr, key) == 0)
			return &r->attrs[i];
	return NULL;
}

static void test_build(const char *argv0)
{
	struct oa_config cfg;
	oa_config_defaults(&cfg);
	struct oa_resource r;
	oa_resource_build(&r, &cfg);
	const struct oa_attr *pid = find(&r, "process.pid");
	CHECK(pid && pid->type == OA_VALUE_INT && pid->v.i == getpid());
	const struct oa_attr *args = find(&r, "process.command_args");
	CHECK(args && args->type == OA_VALUE_STRING_ARRAY);
	if (args) {
		CHECK_EQ_INT(args->v.array.n, 2);
		CHECK_EQ_STR(args->v.array.items[0].ptr, argv0);
		CHECK_EQ_STR(args->v.array.items[1].ptr, "http://REDACTED@host/x");
	}
	const struct oa_attr *name = find(&r, "service.name");
	CHECK(name && strncmp(name->v.s.ptr, "unknown_service:", 16) == 0);
	oa_resource_free(&r);
	oa_config_free(&cfg);
}

int main(int argc, char **argv)
{
	/* Re-run with a known argument list: a URL with credentials. */
	if (argc == 1) {
		execl("/proc/self/exe", argv[0], "http://user:pw@host/x", (char *)NULL);
		return 1;
	}
	test_arg_count();
	test_build(argv[0]);
	CHECK_DONE();
}
