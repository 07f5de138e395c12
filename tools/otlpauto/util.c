#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

int usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "otlpauto %s: ", command);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'otlpauto %s --help'.\n", command);
	va_end(ap);
	return EXIT_USAGE;
}

bool parse_duration(const char *text, uint64_t *ns)
{
	return oa_parse_duration_ns(text, ns);
}

const char *format_duration(uint64_t ns, char buf[static 32])
{
	static const struct {
		uint64_t below;
		uint64_t unit_ns;
		const char *unit;
	} scales[] = {
	    {1000000, 1000, "us"}, {1000000000, 1000000, "ms"}, {UINT64_MAX, 1000000000, "s"}};
	if (ns < 1000) {
		snprintf(buf, 32, "%" PRIu64 "ns", ns);
		return buf;
	}
	size_t i = 0;
	while (ns >= scales[i].below && i + 1 < sizeof scales / sizeof scales[0])
		i++;
	/* Thousandths of the unit, rounded to nearest. */
	uint64_t step = scales[i].unit_ns / 1000;
	uint64_t thousandths = ns / step + (ns % step >= (step + 1) / 2 && step > 1);
	snprintf(buf, 32, "%" PRIu64 ".%03" PRIu64 "%s", thousandths / 1000, thousandths % 1000,
		 scales[i].unit);
	return buf;
}

const char *env_get(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

bool env_is_set(const char *name)
{
	const char *value = getenv(name);
	return value && value[0];
}

bool destination_in_environment(void)
{
	extern char **environ;
	if (env_is_set("OTEL_TRACES_EXPORTER"))
		return true;
	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (strncmp(*e, "OTEL_EXPORTER_OTLP_", 19) == 0 && eq && eq[1])
			return true;
	}
	return false;
}

bool find_program(const char *name, char *out, size_t size)
{
	if (strchr(name, '/'))
		return (size_t)snprintf(out, size, "%s", name) < size && access(out, F_OK) == 0;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/bin:/usr/bin";
	for (const char *dir = path;; dir++) {
		const char *end = strchrnul(dir, ':');
		int len = (int)(end - dir);
		int n = snprintf(out, size, "%.*s%s%s", len, dir, len ? "/" : "", name);
		struct stat st;
		if (n > 0 && (size_t)n < size && access(out, X_OK) == 0 && stat(out, &st) == 0 &&
		    S_ISREG(st.st_mode))
			return true;
		if (!*end)
			return false;
		dir = end;
	}
}
