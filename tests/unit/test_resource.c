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

static void check_redacted_as(const char *arg, enum oa_redact_query mode, const char *expected)
{
	char out[OA_REDACTED_ARG_MAX(256)];
	size_t n = oa_redact_command_arg(arg, strlen(arg), mode, out);
	out[n] = '\0';
	CHECK_EQ_STR(out, expected);
}

static void check_redacted(const char *arg, const char *expected)
{
	check_redacted_as(arg, OA_REDACT_QUERY_SENSITIVE, expected);
}

/* Arguments that carry credentials: header values as curl -H takes them,
 * --password=/--token=/--secret= values, a URL's user:password and query
 * values. Everything else is kept as it is. */
static void test_redaction(void)
{
	check_redacted("-v", "-v");
	check_redacted("http://host:80/a/b", "http://host:80/a/b");
	check_redacted("http://user:pw@host/x", "http://REDACTED@host/x");
	check_redacted("https://h/p?token=abc&x&y=", "https://h/p?token=REDACTED&x&y=");
	check_redacted("https://u:p@h/p?k=v#frag", "https://REDACTED@h/p?k=v#frag");
	check_redacted("https://h/p?page=2&sig=abc", "https://h/p?page=2&sig=REDACTED");
	/* the setting: every query value, or none; user:password whatever it says */
	check_redacted_as("https://u:p@h/p?k=v&x#frag", OA_REDACT_QUERY_ALL,
			  "https://REDACTED@h/p?k=REDACTED&x#frag");
	check_redacted_as("https://u:p@h/p?token=t", OA_REDACT_QUERY_NONE,
			  "https://REDACTED@h/p?token=t");
	check_redacted("Authorization: Bearer s3cret", "Authorization: REDACTED");
	check_redacted("cookie:a=b", "cookie: REDACTED");
	check_redacted("X-Api-Key: k", "X-Api-Key: REDACTED");
	check_redacted("Accept: text/plain", "Accept: text/plain");
	check_redacted("--password=hunter2", "--password=REDACTED");
	check_redacted("--auth-token=t", "--auth-token=REDACTED");
	check_redacted("--db-secret=s", "--db-secret=REDACTED");
	check_redacted("--name=value", "--name=value");
	check_redacted("key=value", "key=value");
	/* the longest growth: every value replaced */
	check_redacted_as("http://h/?a=1&b=2&c=3", OA_REDACT_QUERY_ALL,
			  "http://h/?a=REDACTED&b=REDACTED&c=REDACTED");
	check_redacted("http://h/?a=1&b=2&c=3", "http://h/?a=1&b=2&c=3");
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
	test_redaction();
	test_build(argv[0]);
	CHECK_DONE();
}
