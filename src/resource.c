/* The process's Resource: service, SDK and process attributes plus the
 * user's OTEL_RESOURCE_ATTRIBUTES. Built on the exporter thread when it
 * starts (again in a forked child: the pid changed), with no large buffer on
 * the stack: a forked child would copy the pages it reaches. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fdguard.h"
#include "http_parse.h"
#include "mem.h"
#include "resource.h"
#include "self.h"
#include "utf8.h"

static char *text_copy(const char *s, size_t len)
{
	char *out = oa_malloc(3 * len + 1);
	if (!out)
		return NULL;
	size_t n = oa_utf8_sanitize(s, len, out);
	out[n] = '\0';
	return out;
}

static struct oa_str own(char *s)
{
	return (struct oa_str){s, s ? (uint32_t)strlen(s) : 0};
}

/* Headers whose value is a credential, when an argument is one ("Name:
 * value", as curl -H takes it). */
static const char *const secret_headers[] = {"authorization", "proxy-authorization", "cookie",
					     "set-cookie",    "x-api-key",	     "api-key",
					     "x-auth-token"};

/* Option names that carry a credential in "--name=value". */
static const char *const secret_options[] = {"password", "passwd", "secret", "token"};

static bool is_secret_header(const char *arg, size_t name_len)
{
	for (size_t i = 0; i < sizeof secret_headers / sizeof secret_headers[0]; i++)
		if (strlen(secret_headers[i]) == name_len &&
		    strncasecmp(arg, secret_headers[i], name_len) == 0)
			return true;
	return false;
}

static bool is_secret_option(const char *arg, size_t name_len)
{
	if (arg[0] != '-')
		return false;
	for (size_t i = 0; i < sizeof secret_options / sizeof secret_options[0]; i++)
		if (memmem(arg, name_len, secret_options[i], strlen(secret_options[i])))
			return true;
	return false;
}

size_t oa_redact_command_arg(const char *arg, size_t len, enum oa_redact_query query_mode,
			     char *out)
{
	size_t n = 0;
	const char *colon = memchr(arg, ':', len);
	const char *eq = memchr(arg, '=', len);
	const char *scheme_end = memmem(arg, len, "://", 3);
	if (colon && !scheme_end && is_secret_header(arg, (size_t)(colon - arg))) {
		memcpy(out, arg, (size_t)(colon - arg) + 1);
		n = (size_t)(colon - arg) + 1;
		memcpy(out + n, " REDACTED", 9);
		return n + 9;
	}
	if (eq && !scheme_end && is_secret_option(arg, (size_t)(eq - arg))) {
		n = (size_t)(eq - arg) + 1;
		memcpy(out, arg, n);
		memcpy(out + n, "REDACTED", 8);
		return n + 8;
	}
	if (!scheme_end) {
		memcpy(out, arg, len);
		return len;
	}
	/* A URL: no user:password, no query values. */
	const char *end = arg + len;
	const char *auth = scheme_end + 3;
	const char *stop = auth;
	while (stop < end && *stop != '/' && *stop != '?' && *stop != '#')
		stop++;
	const char *at = NULL;
	for (const char *p = auth; p < stop; p++)
		if (*p == '@')
			at = p;
	const char *copy_from = arg;
	if (at) {
		memcpy(out, arg, (size_t)(auth - arg));
		n = (size_t)(auth - arg);
		memcpy(out + n, "REDACTED", 8);
		n += 8;
		copy_from = at;
	}
	const char *query = memchr(copy_from, '?', (size_t)(end - copy_from));
	const char *fragment = query ? memchr(query, '#', (size_t)(end - query)) : NULL;
	const char *query_end = fragment ? fragment : end;
	size_t head = (size_t)((query ? query + 1 : end) - copy_from);
	memcpy(out + n, copy_from, head);
	n += head;
	if (query) {
		n += oa_http_redact_query(query + 1, (size_t)(query_end - query - 1), query_mode,
					  out + n, OA_REDACTED_ARG_MAX(len) - n);
		memcpy(out + n, query_end, (size_t)(end - query_end));
		n += (size_t)(end - query_end);
	}
	return n;
}

/* An argument as recorded: credentials redacted, valid UTF-8. */
static char *recorded_arg(const char *arg, size_t len, enum oa_redact_query query_mode)
{
	char *redacted = oa_malloc(OA_REDACTED_ARG_MAX(len));
	if (!redacted)
		return NULL;
	size_t n = oa_redact_command_arg(arg, len, query_mode, redacted);
	char *out = text_copy(redacted, n);
	oa_free(redacted);
	return out;
}

size_t oa_cmdline_arg_count(const char *buf, size_t n)
{
	/* Trailing NULs: the padding a program that rewrote its title (nginx's
	 * setproctitle) leaves where its other arguments were. */
	while (n > 1 && buf[n - 1] == '\0' && buf[n - 2] == '\0')
		n--;
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += buf[i] == '\0';
	if (n && buf[n - 1] != '\0')
		count++;
	return count;
}

#define CMDLINE_MAX 16384

static void read_command_args(struct oa_resource *r, enum oa_redact_query query_mode)
{
	/* In place when the program's start was seen (a forked child then
	 * reads its parent's pages, copying none); else from /proc. */
	size_t n = 0;
	char *read = NULL;
	const char *buf = oa_self_cmdline(&n);
	if (!buf) {
		read = oa_malloc(CMDLINE_MAX);
		ssize_t got = read ? oa_fd_read_file("/proc/self/cmdline", read, CMDLINE_MAX) : -1;
		n = got > 0 ? (size_t)got : 0;
		buf = read;
	}
	size_t count = n ? oa_cmdline_arg_count(buf, n) : 0;
	r->args = count ? oa_calloc(count, sizeof *r->args) : NULL;
	for (size_t off = 0; r->args && off < n && r->n_args < count;) {
		size_t len = strnlen(buf + off, n - off);
		r->args[r->n_args++] = own(recorded_arg(buf + off, len, query_mode));
		off += len + 1;
	}
	oa_free(read);
}

static struct oa_attr *find(struct oa_resource *r, const char *key)
{
	for (size_t i = 0; i < r->n_attrs; i++)
		if (strcmp(r->attrs[i].key.ptr, key) == 0)
			return &r->attrs[i];
	return NULL;
}

/* The attribute named key, replacing the user's value of the same key. */
static struct oa_attr *add(struct oa_resource *r, const char *key)
{
	struct oa_attr *a = find(r, key);
	if (!a) {
		a = &r->attrs[r->n_attrs++];
		a->key = (struct oa_str){oa_strdup(key), (uint32_t)strlen(key)};
	} else if (a->type == OA_VALUE_STRING) {
		oa_free((char *)a->v.s.ptr);
	}
	return a;
}

static void set_str(struct oa_resource *r, const char *key, char *value)
{
	struct oa_attr *a = add(r, key);
	a->type = OA_VALUE_STRING;
	a->v.s = own(value);
}

void oa_resource_build(struct oa_resource *r, const struct oa_config *cfg)
{
	memset(r, 0, sizeof *r);
	size_t cap = 10 + cfg->resource_attributes.n;
	r->attrs = oa_calloc(cap, sizeof *r->attrs);
	if (!r->attrs)
		return;

	const char *exe = oa_self_exe_path();
	const char *slash = strrchr(exe, '/');
	const char *exe_name = slash ? slash + 1 : exe;

	for (size_t i = 0; i < cfg->resource_attributes.n; i++) {
		const struct oa_kv *kv = &cfg->resource_attributes.items[i];
		set_str(r, kv->key, text_copy(kv->value, strlen(kv->value)));
	}
	if (cfg->service_name) {
		set_str(r, "service.name", text_copy(cfg->service_name, strlen(cfg->service_name)));
	} else if (!find(r, "service.name")) {
		static const char prefix[] = "unknown_service:";
		size_t len = strlen(exe_name);
		char *name = oa_malloc(sizeof prefix + len);
		if (name) {
			memcpy(name, prefix, sizeof prefix - 1);
			memcpy(name + sizeof prefix - 1, exe_name, len + 1);
			set_str(r, "service.name", text_copy(name, sizeof prefix - 1 + len));
			oa_free(name);
		}
	}
	set_str(r, "telemetry.sdk.name", oa_strdup("otlpauto"));
	set_str(r, "telemetry.sdk.language", oa_strdup("c"));
	set_str(r, "telemetry.sdk.version", oa_strdup(OTLPAUTO_VERSION));
	struct oa_attr *pid = add(r, "process.pid");
	pid->type = OA_VALUE_INT;
	pid->v.i = getpid();
	set_str(r, "process.executable.name", text_copy(exe_name, strlen(exe_name)));
	set_str(r, "process.executable.path", text_copy(exe, strlen(exe)));
	read_command_args(r, cfg->redact_query);
	if (r->n_args) {
		struct oa_attr *args = add(r, "process.command_args");
		args->type = OA_VALUE_STRING_ARRAY;
		args->v.array.items = r->args;
		args->v.array.n = (uint32_t)r->n_args;
	}
	char host[256];
	if (gethostname(host, sizeof host) == 0 && !find(r, "host.name")) {
		host[sizeof host - 1] = '\0';
		set_str(r, "host.name", text_copy(host, strlen(host)));
	}
}

static struct {
	bool built;
	struct oa_resource resource;
} process;

const struct oa_resource *oa_process_resource(const struct oa_config *cfg)
{
	if (!process.built) {
		oa_resource_build(&process.resource, cfg);
		process.built = true;
	}
	return &process.resource;
}

void oa_process_resource_atfork_child(bool consistent)
{
	struct oa_attr *pid =
	    process.built && consistent ? find(&process.resource, "process.pid") : NULL;
	if (!pid) {
		memset(&process, 0, sizeof process);
		return;
	}
	pid->v.i = getpid();
}

void oa_resource_free(struct oa_resource *r)
{
	for (size_t i = 0; i < r->n_attrs; i++) {
		oa_free((char *)r->attrs[i].key.ptr);
		if (r->attrs[i].type == OA_VALUE_STRING)
			oa_free((char *)r->attrs[i].v.s.ptr);
	}
	for (size_t i = 0; i < r->n_args; i++)
		oa_free((char *)r->args[i].ptr);
	oa_free(r->attrs);
	oa_free(r->args);
	memset(r, 0, sizeof *r);
}
