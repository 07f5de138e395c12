/* otlpauto doctor: whether LD_PRELOAD can reach a program, what it will
 * trace, and whether the configured collector answers. */
/* Calls go through a table of pointers (below): no type-checking macros. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "dynlib.h"
#include "elf_facts.h"

static const char doctor_usage[] =
    "Usage: otlpauto doctor PROGRAM\n"
    "Tells whether preloading libotlpauto.so can work for PROGRAM (dynamic linking,\n"
    "set-uid/set-gid, the architecture, the C library), what will be traced\n"
    "(function spans need -finstrument-functions; names need a symbol table), which\n"
    "library otlpauto run would preload, and whether the collector that the\n"
    "environment configures answers. Exit status 0 when preloading can work.\n"
    "\n"
    "  -h, --help   show this help\n";

#define COLLECTOR_WAIT_MS 3000

/* What preloading needs that PROGRAM lacks; the verdict lists them. */
struct problems {
	char text[1024];
};

static void problem(struct problems *p, const char *text)
{
	size_t len = strlen(p->text);
	snprintf(p->text + len, sizeof p->text - len, "%s%s", len ? "; " : "", text);
}

static void line(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *label, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%-11s", label);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
}

/* ---- The ELF file ---- */

static const char *machine_name(unsigned machine)
{
	switch (machine) {
	case EM_X86_64:
		return "x86-64";
	case EM_386:
		return "i386";
	case EM_AARCH64:
		return "aarch64";
	case EM_ARM:
		return "arm";
	case EM_RISCV:
		return "riscv";
	case EM_PPC64:
		return "ppc64";
	case EM_S390:
		return "s390";
	default:
		return "another machine";
	}
}

static const char *elf_type_name(const struct elf_facts *f)
{
	if (f->type == ET_EXEC)
		return "executable";
	if (f->type == ET_DYN)
		return f->has_interp ? "position-independent executable" : "shared object";
	return "ELF file of another type";
}

/* ---- The checks ---- */

static void check_linking(const struct elf_facts *f, struct problems *p)
{
	if (f->has_interp) {
		line("linking:", "dynamic (loader %s): LD_PRELOAD applies", f->interp);
	} else {
		line("linking:", "static%s: there is no dynamic loader to preload anything",
		     f->has_dynamic ? " (static-pie)" : "");
		problem(p, "it is linked statically");
	}
}

static void check_set_id(const char *path, struct problems *p)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return;
	bool setuid = st.st_mode & S_ISUID, setgid = st.st_mode & S_ISGID;
	bool capabilities = getxattr(path, "security.capability", NULL, 0) > 0;
	/* The loader's secure-execution mode, which ignores LD_PRELOAD, comes with
	 * a change of user or group id, or with file capabilities. */
	bool secure = (setuid && st.st_uid != getuid()) || (setgid && st.st_gid != getgid());
	if (!setuid && !setgid && !capabilities) {
		line("set-id:", "no set-uid, set-gid or file capabilities");
		return;
	}
	char what[64];
	snprintf(what, sizeof what, "%s%s%s%s%s", setuid ? "set-uid" : "",
		 setuid && setgid ? ", " : "", setgid ? "set-gid" : "",
		 (setuid || setgid) && capabilities ? ", " : "",
		 capabilities ? "file capabilities" : "");
	if (secure) {
		line("set-id:",
		     "%s (owner %u:%u): the loader runs it in secure-execution mode and "
		     "ignores LD_PRELOAD",
		     what, (unsigned)st.st_uid, (unsigned)st.st_gid);
		problem(p, "it is set-uid or set-gid");
	} else if (capabilities) {
		line("set-id:", "%s: the loader ignores LD_PRELOAD when they raise privileges",
		     what);
		problem(p, "it has file capabilities");
	} else {
		line("set-id:",
		     "%s, but you own it: LD_PRELOAD works when you run it, not for "
		     "other users",
		     what);
	}
}

static void check_functions(const struct elf_facts *f)
{
	if (f->profile_hook == HOOK_IMPORTED)
		line("functions:", "built with -finstrument-functions (imports " PROFILE_HOOK
				   "): function spans");
	else if (f->profile_hook == HOOK_DEFINED && f->has_interp)
		line("functions:", "built with -finstrument-functions, but defines " PROFILE_HOOK
				   " itself: its own hooks run, not otlpauto's");
	else if (f->profile_hook == HOOK_DEFINED)
		line("functions:", "built with -finstrument-functions (defines " PROFILE_HOOK ")");
	else if (f->has_symtab || f->has_dynsym)
		line("functions:", "not built with -finstrument-functions: no function spans, "
				   "only process, socket, DNS and HTTP spans");
	else
		line("functions:", "unknown: no symbol table to look for " PROFILE_HOOK);
}

static void check_symbols(const struct elf_facts *f)
{
	if (f->has_symtab)
		line("symbols:", "symbol table present (.symtab): function names resolve");
	else
		line("symbols:", "stripped (no .symtab): only exported functions (.dynsym) have "
				 "names");
}

static void check_libc(const struct elf_facts *f, struct problems *p)
{
	bool musl = strstr(f->libc, "musl") || strstr(f->interp, "musl");
	if (musl) {
		line("libc:", "musl (%s): libotlpauto.so is built for glibc",
		     f->libc[0] ? f->libc : f->interp);
		problem(p, "it uses musl");
	} else if (strcmp(f->libc, "libc.so.6") == 0) {
		line("libc:", "glibc (libc.so.6)");
	} else if (f->libc[0]) {
		line("libc:", "%s", f->libc);
	} else {
		line("libc:", "none among the needed libraries%s",
		     f->has_interp ? "" : " (static)");
	}
}

/* Runtimes that make their system calls without the C library, where the
 * hooks cannot see them. Returns what the verdict should add, or NULL. */
static const char *check_runtime(const struct elf_facts *f)
{
	char go[48];
	snprintf(go, sizeof go, "Go%s%s%s", f->go_version[0] ? " (" : "", f->go_version,
		 f->go_version[0] ? ")" : "");
	if (!f->has_interp) { /* static: the verdict says it all */
		if (f->go)
			line("runtime:", "%s", go);
		return NULL;
	}
	if (f->go) {
		line("runtime:",
		     "%s: Go makes its system calls itself, not through the C library. Not "
		     "seen: its network and file I/O, its DNS lookups (unless they go through "
		     "the C library's resolver: GODEBUG=netdns=cgo), its execs and its exit "
		     "(so no process span). Seen: the programs it starts, when they use "
		     "the C library",
		     go);
		return "it is a Go program: its own network and file I/O are not seen, the "
		       "programs it starts are traced";
	}
	if (f->uring[0]) {
		line("runtime:",
		     "io_uring (%s): reads, writes, accepts and connects submitted through "
		     "io_uring bypass the C library and are not seen",
		     f->uring);
		return "I/O it submits through io_uring is not seen";
	}
	line("runtime:", "no Go runtime, no io_uring: its I/O goes through the C library");
	return NULL;
}

/* HTTPS is seen inside a dynamically linked OpenSSL or GnuTLS. Returns
 * what the verdict should add, or NULL. */
static const char *check_tls(const struct elf_facts *f)
{
	if (f->openssl_inside) {
		line("tls:", "OpenSSL is linked into the program: its HTTPS requests and "
			     "responses are not seen (only its connections)");
		return "OpenSSL is linked in statically: its HTTPS is not seen";
	}
	if (f->libssl[0] || f->gnutls[0])
		line("tls:", "%s (%s): HTTPS requests and responses are seen",
		     f->libssl[0] ? "OpenSSL" : "GnuTLS", f->libssl[0] ? f->libssl : f->gnutls);
	else
		line("tls:", "no TLS library among the needed ones: OpenSSL or GnuTLS loaded with "
			     "another library or later is seen");
	return NULL;
}

static void check_library(const struct elf_facts *program, struct problems *p)
{
	struct library_search library;
	if (!find_library(&library)) {
		line("library:", "libotlpauto.so not found (looked at: %s)", library.tried);
		problem(p, "libotlpauto.so is not found");
		return;
	}
	struct elf_facts lib;
	char why[256];
	if (!read_elf(library.path, &lib, why, sizeof why)) {
		line("library:", "%s: %s", library.path, why);
		problem(p, "libotlpauto.so is unreadable");
	} else if (lib.elf_class != program->elf_class || lib.machine != program->machine) {
		line("library:", "%s is %d-bit %s, the program %d-bit %s: the loader skips it",
		     library.path, lib.elf_class == ELFCLASS64 ? 64 : 32, machine_name(lib.machine),
		     program->elf_class == ELFCLASS64 ? 64 : 32, machine_name(program->machine));
		problem(p, "libotlpauto.so is built for another architecture");
	} else {
		line("library:", "%s (exists)", library.path);
	}
}

static void check_hooks(const struct oa_config *cfg)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} families[] = {
	    {OA_HOOK_FUNCTIONS, "functions"},
	    {OA_HOOK_SOCKETS, "sockets"},
	    {OA_HOOK_DNS, "dns"},
	    {OA_HOOK_HTTP, "http"},
	    {OA_HOOK_TLS, "tls"},
	    {OA_HOOK_PROCESS, "process"},
	    {OA_HOOK_FILES, "files"},
	};
	char names[128] = "";
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
		if (cfg->hooks & families[i].bit)
			snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
				 names[0] ? "," : "", families[i].name);
	if (cfg->sdk_disabled)
		line("hooks:", "none: OTEL_SDK_DISABLED=true turns otlpauto off");
	else
		line("hooks:", "%s (OTLPAUTO_HOOKS)", names[0] ? names : "none");
}

static size_t discard(char *data, size_t size, size_t n, void *ctx)
{
	(void)data;
	(void)ctx;
	return size * n;
}

/* The URL without user:password@, which may hold a secret. */
static void shown_url(const char *url, char *out, size_t size)
{
	const char *scheme_end = strstr(url, "://");
	const char *authority = scheme_end ? scheme_end + 3 : url;
	const char *at = strchr(authority, '@');
	const char *slash = strchr(authority, '/');
	if (at && (!slash || at < slash))
		snprintf(out, size, "%.*s***%s", (int)(authority - url), url, at);
	else
		snprintf(out, size, "%s", url);
}

/* libcurl, opened here rather than linked: linked, it and its ~30 libraries
 * cost every otlpauto run, which never uses it, 434 page faults and 13 ms
 * of CPU (on a VM with slow page faults). */
#define LIBCURL_FUNCTIONS(X)                                                                       \
	X(curl_global_init)                                                                        \
	X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_perform) X(curl_easy_getinfo)            \
	    X(curl_easy_strerror) X(curl_easy_cleanup) X(curl_slist_append) X(curl_slist_free_all)
static struct {
	LIBCURL_FUNCTIONS(OA_DYNLIB_POINTER)
} lc;
#define LIBCURL_SYMBOL(name) OA_DYNLIB_SYMBOL(lc, name)
static const struct oa_dynlib_symbol libcurl_symbols[] = {LIBCURL_FUNCTIONS(LIBCURL_SYMBOL)};
static struct oa_dynlib libcurl =
    OA_DYNLIB("libcurl.so.4", libcurl_symbols, "the collector is not checked");

/* POSTs an empty ExportTraceServiceRequest, as the exporter would. */
static void check_collector(const struct oa_config *cfg)
{
	char url[1024];
	shown_url(cfg->endpoint, url, sizeof url);
	if (!oa_dynlib_load(&libcurl) || lc.curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		line("collector:", "%s: not checked (libcurl cannot be loaded)", url);
		return;
	}
	CURL *curl = lc.curl_easy_init();
	struct curl_slist *headers = NULL;
	bool json = cfg->protocol == OA_PROTOCOL_JSON;
	headers = lc.curl_slist_append(headers, json ? "Content-Type: application/json"
						  : "Content-Type: application/x-protobuf");
	for (size_t i = 0; i < cfg->headers.n; i++) {
		char header[1024];
		snprintf(header, sizeof header, "%s: %s", cfg->headers.items[i].key,
			 cfg->headers.items[i].value);
		headers = lc.curl_slist_append(headers, header);
	}
	if (!curl || !headers) {
		line("collector:", "%s: not checked (out of memory)", url);
		lc.curl_slist_free_all(headers);
		lc.curl_easy_cleanup(curl);
		return;
	}
	char error[CURL_ERROR_SIZE] = "";
	const char *body = json ? "{}" : "";
	lc.curl_easy_setopt(curl, CURLOPT_URL, cfg->endpoint);
	lc.curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	lc.curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	lc.curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	lc.curl_easy_setopt(curl, CURLOPT_USERAGENT, "otlpauto-doctor/" OTLPAUTO_VERSION);
	lc.curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)COLLECTOR_WAIT_MS);
	lc.curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)COLLECTOR_WAIT_MS);
	lc.curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	lc.curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
	lc.curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	if (cfg->certificate)
		lc.curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->certificate);
	if (cfg->client_certificate)
		lc.curl_easy_setopt(curl, CURLOPT_SSLCERT, cfg->client_certificate);
	if (cfg->client_key)
		lc.curl_easy_setopt(curl, CURLOPT_SSLKEY, cfg->client_key);
	CURLcode rc = lc.curl_easy_perform(curl);
	long status = 0;
	lc.curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	const char *why = error[0] ? error : lc.curl_easy_strerror(rc);
	if (rc == CURLE_OK && status >= 200 && status < 300)
		line("collector:", "%s: reachable, HTTP %ld: it accepts traces", url, status);
	else if (rc == CURLE_OK)
		line("collector:", "%s: reachable, but HTTP %ld%s", url, status,
		     status == 404 ? " (no OTLP traces endpoint at this path)"
		     : status == 401 || status == 403
			 ? " (check the headers: OTEL_EXPORTER_OTLP_HEADERS)"
			 : "");
	else if (rc == CURLE_COULDNT_CONNECT)
		line("collector:", "%s: refused or unreachable (%s)", url, why);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		line("collector:", "%s: no answer within %d ms", url, COLLECTOR_WAIT_MS);
	else
		line("collector:", "%s: failed (%s)", url, why);
	lc.curl_slist_free_all(headers);
	lc.curl_easy_cleanup(curl);
}

static void check_exporter(const struct oa_config *cfg)
{
	switch (cfg->exporter) {
	case OA_EXPORTER_OTLP:
		check_collector(cfg);
		break;
	case OA_EXPORTER_CONSOLE:
		line("collector:", "none: OTEL_TRACES_EXPORTER=console prints spans on stderr");
		break;
	case OA_EXPORTER_FILE:
		line("collector:", "none: OTEL_TRACES_EXPORTER=otlp/file appends spans to %s",
		     cfg->file_path ? cfg->file_path : "otlpauto-<pid>.jsonl");
		break;
	case OA_EXPORTER_NONE:
		line("collector:", "none: OTEL_TRACES_EXPORTER=none drops the spans");
		break;
	}
	if (!destination_in_environment())
		line("", "(otlpauto run without --endpoint writes spans to a file instead)");
}

/* ---- The command ---- */

/* A script's interpreter, from its #! line; false if it has none. */
static bool script_interpreter(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char first[PATH_MAX + 3];
	bool script = fgets(first, sizeof first, f) && strncmp(first, "#!", 2) == 0;
	fclose(f);
	if (!script)
		return false;
	const char *start = first + 2 + strspn(first + 2, " \t");
	size_t len = strcspn(start, " \t\r\n");
	return len > 0 && len < size && snprintf(out, size, "%.*s", (int)len, start) > 0;
}

static int diagnose(const char *program)
{
	char path[PATH_MAX], interpreter[PATH_MAX], why[256];
	if (!find_program(program, path, sizeof path)) {
		fprintf(stderr, "otlpauto doctor: %s: not found%s\n", program,
			strchr(program, '/') ? "" : " in PATH");
		return 1;
	}
	line("program:", "%s", path);
	struct elf_facts f;
	if (!read_elf(path, &f, why, sizeof why)) {
		if (!script_interpreter(path, interpreter, sizeof interpreter)) {
			line("format:", "%s", why);
			line("verdict:", "cannot tell: %s is %s", path, why);
			return 1;
		}
		/* The kernel runs the interpreter, which is what gets preloaded. */
		line("script:", "run by %s, which is what gets preloaded", interpreter);
		snprintf(path, sizeof path, "%s", interpreter);
		if (!read_elf(path, &f, why, sizeof why)) {
			line("verdict:", "cannot tell: %s is %s", path, why);
			return 1;
		}
	}
	struct problems problems = {{0}};
	line("format:", "ELF %d-bit %s %s", f.elf_class == ELFCLASS64 ? 64 : 32,
	     machine_name(f.machine), elf_type_name(&f));
	check_linking(&f, &problems);
	check_set_id(path, &problems);
	check_functions(&f);
	check_symbols(&f);
	check_libc(&f, &problems);
	const char *limits = check_runtime(&f);
	const char *tls_limits = check_tls(&f);
	if (!limits)
		limits = tls_limits;
	check_library(&f, &problems);
	struct oa_config cfg = {0};
	oa_config_parse(&cfg, env_get, NULL);
	check_hooks(&cfg);
	check_exporter(&cfg);
	oa_config_free(&cfg);
	if (problems.text[0]) {
		line("verdict:", "preloading cannot work: %s", problems.text);
		return 1;
	}
	if (limits)
		line("verdict:", "preloading can work, but %s", limits);
	else
		line("verdict:", "preloading can work");
	return 0;
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int opt;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt != 'h') {
			fprintf(stderr, "Try 'otlpauto doctor --help'.\n");
			return EXIT_USAGE;
		}
		fputs(doctor_usage, stdout);
		return 0;
	}
	if (optind == argc)
		return usage_error("doctor", "no program given");
	if (argc - optind > 1)
		return usage_error("doctor", "one program at a time");
	if (elf_version(EV_CURRENT) == EV_NONE) {
		fprintf(stderr, "otlpauto doctor: cannot initialise libelf\n");
		return 1;
	}
	return diagnose(argv[optind]);
}
