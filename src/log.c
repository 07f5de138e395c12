#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

enum oa_log_level oa_log_threshold = OA_LOG_INFO;
unsigned oa_log_warnings;
static oa_log_sink_fn log_sink;

void oa_log_set_sink(oa_log_sink_fn sink)
{
	log_sink = sink;
}

#define PREFIX "otlpauto: "

/* Hands line[0..len) to the sink or stderr; line has room for two more bytes. */
static void emit(char *line, size_t len)
{
	if (log_sink) {
		line[len] = '\0';
		log_sink(line);
		return;
	}
	line[len++] = '\n';
	for (size_t off = 0; off < len;) {
		long w = syscall(SYS_write, 2, line + off, len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

void oa_log(enum oa_log_level level, const char *fmt, ...)
{
	if (level > oa_log_threshold || level == OA_LOG_NONE)
		return;
	if (level == OA_LOG_WARN)
		__atomic_fetch_add(&oa_log_warnings, 1, __ATOMIC_RELAXED);
	char line[1024];
	int prefix = snprintf(line, sizeof line, PREFIX);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line + prefix, sizeof line - (size_t)prefix - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)prefix + (n < 0 ? 0 : (size_t)n);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	emit(line, len);
}

void oa_log_text(enum oa_log_level level, const char *text)
{
	if (level > oa_log_threshold || level == OA_LOG_NONE)
		return;
	char line[1024];
	size_t len = 0;
	for (const char *p = PREFIX; *p; p++)
		line[len++] = *p;
	for (; *text && len < sizeof line - 2; text++)
		line[len++] = *text;
	emit(line, len);
}
