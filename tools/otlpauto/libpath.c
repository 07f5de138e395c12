#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define LIBRARY_NAME "libotlpauto.so"

static void add_tried(struct library_search *search, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_tried(struct library_search *search, const char *fmt, ...)
{
	size_t len = strlen(search->tried);
	if (len + 2 >= sizeof search->tried)
		return;
	if (len)
		search->tried[len++] = ',', search->tried[len++] = ' ';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(search->tried + len, sizeof search->tried - len, fmt, ap);
	va_end(ap);
}

/* True (with search->path set) if path is a readable file. */
static bool try_path(struct library_search *search, const char *path)
{
	add_tried(search, "%s", path);
	return access(path, R_OK) == 0 && realpath(path, search->path) != NULL;
}

static bool try_in(struct library_search *search, const char *dir, const char *subdir)
{
	char path[PATH_MAX];
	int n =
	    snprintf(path, sizeof path, "%s%s%s/" LIBRARY_NAME, dir, subdir[0] ? "/" : "", subdir);
	return n > 0 && (size_t)n < sizeof path && try_path(search, path);
}

bool find_library(struct library_search *search)
{
	*search = (struct library_search){0};
	const char *override = getenv("OTLPAUTO_LIB");
	if (override && override[0]) {
		if (try_path(search, override))
			return true;
		snprintf(search->tried, sizeof search->tried,
			 "OTLPAUTO_LIB=%s, which does not exist", override);
		return false;
	}
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len > 0) {
		exe[len] = '\0';
		char *slash = strrchr(exe, '/');
		*slash = '\0'; /* the executable's directory */
		if (try_in(search, exe, ""))
			return true;
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0'; /* its prefix, for <prefix>/bin/otlpauto */
			const char *prefix = exe[0] ? exe : "/";
			if ((OTLPAUTO_LIBDIR_IN_PREFIX[0] &&
			     try_in(search, prefix, OTLPAUTO_LIBDIR_IN_PREFIX)) ||
			    try_in(search, prefix, "lib"))
				return true;
		}
	}
	return try_in(search, OTLPAUTO_LIBDIR, "");
}
