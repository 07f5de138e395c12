/* otlpauto run: the options become the environment variables the library
 * reads, LD_PRELOAD gets the library, and the program replaces this process. */
#include <dlfcn.h>
#include <errno.h>
#include <gelf.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "elf_facts.h"
#include "exec_target.h"
#include "log.h"
#include "relay.h"

static const char run_usage[] =
    "Usage: otlpauto run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "Runs PROGRAM with libotlpauto.so preloaded. The exit status is PROGRAM's\n"
    "(127 if it cannot be executed, 125 if otlpauto fails before starting it).\n"
    "\n"
    "Where spans go (one of these; without one, and without OTEL_TRACES_EXPORTER\n"
    "or OTEL_EXPORTER_OTLP_* in the environment, a new otlpauto-PROGRAM-TIME.jsonl\n"
    "in the current directory):\n"
    "  --endpoint URL          an OTLP/HTTP collector (OTEL_EXPORTER_OTLP_ENDPOINT)\n"
    "  --file PATH             append OTLP JSON lines to PATH (otlp/file exporter)\n"
    "  --console               print spans on stderr\n"
    "  --header K=V            a request header for the collector (repeatable)\n"
    "  --gzip                  compress requests to the collector\n"
    "\n"
    "What is traced:\n"
    "  --service NAME          service.name (OTEL_SERVICE_NAME)\n"
    "  --threshold DURATION    drop function spans shorter than this, e.g. 1ms\n"
    "                          (OTLPAUTO_FUNCTION_THRESHOLD, default 100us)\n"
    "  --functions GLOBS       trace only functions matching these globs, e.g. 'http_*,db_*'\n"
    "  --exclude GLOBS         never trace functions matching these globs\n"
    "  --sampler NAME[:ARG]    OTEL_TRACES_SAMPLER and its argument, e.g. traceidratio:0.1\n"
    "  --hooks LIST            hook families, e.g. functions,process (OTLPAUTO_HOOKS)\n"
    "  -h, --help              show this help\n"
    "\n"
    "Programs started by PROGRAM inherit these settings and write to the same place.\n";

/* More than the distinct variables the options can set. */
#define MAX_SETTINGS 16

/* An environment variable to set, and the option that asked for it. */
struct setting {
	const char *name;
	char *value;
	const char *option;
};

struct settings {
	struct setting items[MAX_SETTINGS];
	size_t n;
	char *headers;		 /* K=V,... from every --header, percent-encoded */
	const char *destination; /* --endpoint, --file or --console, whichever was given */
};

static void set(struct settings *s, const char *option, const char *name, const char *value)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->items[i].name, name) == 0) {
			free(s->items[i].value);
			s->items[i].value = strdup(value);
			s->items[i].option = option;
			return;
		}
	}
	s->items[s->n++] = (struct setting){.name = name, .value = strdup(value), .option = option};
}

static const char *setting_value(const struct settings *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->items[i].name, name) == 0)
			return s->items[i].value;
	return NULL;
}

static void free_settings(struct settings *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i].value);
	free(s->headers);
}

/* The header value as OTEL_EXPORTER_OTLP_HEADERS carries it: percent-encoding
 * what would split the list or be trimmed away. */
static char *encode_header(const char *key, size_t key_len, const char *value)
{
	size_t value_len = strlen(value);
	char *out = malloc(key_len + 1 + 3 * value_len + 1);
	if (!out)
		return NULL;
	size_t n = 0;
	memcpy(out, key, key_len);
	n += key_len;
	out[n++] = '=';
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p <= ' ' || *p == ',' || *p == '%' || *p >= 0x7f)
			n += (size_t)sprintf(out + n, "%%%02X", *p);
		else
			out[n++] = (char)*p;
	}
	out[n] = '\0';
	return out;
}

static bool add_header(struct settings *s, const char *k_eq_v)
{
	const char *eq = strchr(k_eq_v, '=');
	if (!eq || eq == k_eq_v)
		return false;
	char *header = encode_header(k_eq_v, (size_t)(eq - k_eq_v), eq + 1);
	if (!header)
		return false;
	size_t old = s->headers ? strlen(s->headers) : 0;
	char *joined = realloc(s->headers, old + 1 + strlen(header) + 1);
	if (joined) {
		sprintf(joined + old, "%s%s", old ? "," : "", header);
		s->headers = joined;
	}
	free(header);
	return joined != NULL;
}

/* ---- Checking values the way the library will read them ---- */

static char config_warning[1024];

static void keep_first_warning(const char *line)
{
	if (!config_warning[0])
		snprintf(config_warning, sizeof config_warning, "%s", line);
}

struct validation {
	const struct settings *settings;
	const char *option;
};

static const char *option_variables(const char *name, void *ctx)
{
	const struct validation *v = ctx;
	if (strcmp(v->option, "--header") == 0)
		return strcmp(name, "OTEL_EXPORTER_OTLP_HEADERS") == 0 ? v->settings->headers
								       : NULL;
	for (size_t i = 0; i < v->settings->n; i++) {
		const struct setting *item = &v->settings->items[i];
		if (strcmp(item->option, v->option) == 0 && strcmp(item->name, name) == 0)
			return item->value;
	}
	return NULL;
}

/* Parses an option's variables alone with the library's own parser: a
 * warning from it means a bad option value. Returns the status to exit with,
 * 0 when the value is good. */
static int validate_option(const struct settings *s, const char *option)
{
	struct validation v = {.settings = s, .option = option};
	struct oa_config cfg = {0};
	config_warning[0] = '\0';
	oa_log_set_sink(keep_first_warning);
	oa_config_parse(&cfg, option_variables, &v);
	oa_log_set_sink(NULL);
	oa_config_free(&cfg);
	if (!config_warning[0])
		return 0;
	/* "otlpauto: VAR=value is ...; using X": what the library would fall back to
	 * does not apply to an option that is refused. */
	char *text = config_warning + strlen("otlpauto: ");
	char *consequence = strstr(text, "; ");
	for (char *next; consequence && (next = strstr(consequence + 2, "; "));)
		consequence = next;
	if (consequence)
		*consequence = '\0';
	return usage_error("run", "%s: %s", option, text);
}

static int validate(const struct settings *s)
{
	int status = s->headers ? validate_option(s, "--header") : 0;
	for (size_t i = 0; i < s->n && !status; i++)
		status = validate_option(s, s->items[i].option);
	return status;
}

/* ---- The environment ---- */

/* An absolute path, so that children which change directory write to the same file. */
static bool absolute_path(const char *path, char *out, size_t size)
{
	if (path[0] == '/')
		return (size_t)snprintf(out, size, "%s", path) < size;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		return false;
	return (size_t)snprintf(out, size, "%s/%s", cwd, path) < size;
}

/* otlpauto-PROGRAM-YYYYMMDD-HHMMSS.jsonl, the program name kept to safe characters. */
static void default_file_name(const char *program, char *out, size_t size)
{
	const char *base = strrchr(program, '/');
	base = base ? base + 1 : program;
	char name[64];
	size_t n = 0;
	for (const char *p = base; *p && n < sizeof name - 1; p++)
		name[n++] =
		    strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p)
			? *p
			: '_';
	name[n] = '\0';
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
	snprintf(out, size, "otlpauto-%s-%s.jsonl", name, stamp);
}

/* LD_PRELOAD=LIBRARY followed by what it held before, without LIBRARY twice. */
static char *preload_value(const char *library)
{
	const char *old = getenv("LD_PRELOAD");
	size_t size = strlen(library) + (old ? strlen(old) : 0) + 2;
	char *value = malloc(size);
	if (!value)
		return NULL;
	snprintf(value, size, "%s", library);
	char *copy = old ? strdup(old) : NULL;
	char *save = NULL;
	for (char *entry = copy ? strtok_r(copy, ": ", &save) : NULL; entry;
	     entry = strtok_r(NULL, ": ", &save)) {
		if (strcmp(entry, library) != 0) {
			strcat(value, ":");
			strcat(value, entry);
		}
	}
	free(copy);
	return value;
}

/* Exports the settings; variables the library would prefer over ours are
 * removed. False when the environment cannot be changed. */
static bool apply(const struct settings *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->items[i].value || setenv(s->items[i].name, s->items[i].value, 1) != 0)
			return false;
	if (setting_value(s, "OTEL_EXPORTER_OTLP_ENDPOINT"))
		unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	if (setting_value(s, "OTEL_EXPORTER_OTLP_COMPRESSION"))
		unsetenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
	if (s->headers) {
		/* Added to the headers the environment has, in the variable that wins. */
		const char *name = env_is_set("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
				       ? "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
				       : "OTEL_EXPORTER_OTLP_HEADERS";
		const char *old = getenv(name);
		size_t size = (old ? strlen(old) : 0) + strlen(s->headers) + 2;
		char *value = malloc(size);
		if (!value)
			return false;
		snprintf(value, size, "%s%s%s", old && old[0] ? old : "", old && old[0] ? "," : "",
			 s->headers);
		bool ok = setenv(name, value, 1) == 0;
		free(value);
		if (!ok)
			return false;
	}
	return true;
}

/* ---- The relay: otlpauto stays the program's parent and sends for it ---- */

static void ignore_line(const char *line)
{
	(void)line;
}

/* The settings as the program will read them. Quietly: the program's own
 * library warns about a bad value, once. */
static void parse_environment(struct oa_config *cfg)
{
	oa_log_set_sink(ignore_line);
	oa_config_parse(cfg, env_get, NULL);
	oa_log_set_sink(NULL);
}

/* The library, loaded here (not preloaded: nothing in this process is
 * traced), hosting the relay the program and its children send through;
 * NULL when it cannot (then the program exports by itself). */
static const struct otlpauto_relay_v1 *host_relay(const char *library)
{
	struct oa_config cfg = {0};
	parse_environment(&cfg);
	bool relayable = !cfg.sdk_disabled && (cfg.exporter == OA_EXPORTER_OTLP ||
					       (cfg.exporter == OA_EXPORTER_FILE && cfg.file_path));
	oa_config_free(&cfg);
	if (!relayable)
		return NULL;
	void *lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
	const struct otlpauto_relay_v1 *relay = lib ? dlsym(lib, "otlpauto_relay_v1") : NULL;
	char value[256];
	if (!relay || !relay->host(value, sizeof value) || setenv(OA_RELAY_ENV, value, 1) != 0)
		return NULL;
	return relay;
}

static volatile sig_atomic_t child_pid;

static void pass_on_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* Terminal signals reach the program directly (one process group); those
 * sent to otlpauto alone are passed on. SIGINT and SIGQUIT are ignored here,
 * as system() does: the program decides whether they end it. */
static void watch_signals(void)
{
	static const int passed[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT};
	struct sigaction sa = {0};
	sa.sa_handler = pass_on_signal;
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
		sigaction(passed[i], &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
}

/* What run knows of the program before it starts. */
struct target {
	const char *name;	 /* as given */
	const char *untraced;	 /* what keeps the shim out ("is statically linked"), or NULL */
	const char *consequence; /* with it: what that does */
	bool go;		 /* a dynamically linked Go program */
	char file[PATH_MAX + 2]; /* where spans are written, as shown; empty: not a file */
};

/* Why a program that will not load preloaded libraries does not, from its
 * file: set-id bits, then the ELF program headers. */
static void why_untraced(struct target *t, const char *path)
{
	struct stat st;
	struct elf_facts facts;
	char why[256];
	t->untraced = "does not load preloaded libraries";
	t->consequence = "";
	if (stat(path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
		t->untraced = "is set-uid or set-gid";
		t->consequence = ": the loader ignores LD_PRELOAD for it";
	} else if (read_elf(path, &facts, why, sizeof why) && !facts.has_interp) {
		t->untraced = "is statically linked";
		t->consequence = ": there is no dynamic loader to preload anything";
	}
}

static void inspect_target(struct target *t, const char *name)
{
	char path[PATH_MAX];
	t->name = name;
	if (!find_program(name, path, sizeof path) || elf_version(EV_CURRENT) == EV_NONE)
		return;
	if (oa_exec_target_check(path, -1) == OA_EXEC_NO_PRELOAD) {
		why_untraced(t, path);
		return;
	}
	struct elf_facts facts;
	char why[256];
	t->go = read_elf(path, &facts, why, sizeof why) && facts.go && facts.has_interp;
}

static const char go_reason[] = "is a Go program, which makes its system calls without the C "
				"library: its own network and file I/O are not seen, the "
				"programs it starts are traced";

/* The file spans go to, as messages show it: ./NAME when it is in the
 * current directory. */
static void show_file(struct target *t, const char *path)
{
	char cwd[PATH_MAX];
	size_t n = getcwd(cwd, sizeof cwd) ? strlen(cwd) : 0;
	if (n && strncmp(path, cwd, n) == 0 && path[n] == '/' && !strchr(path + n + 1, '/'))
		snprintf(t->file, sizeof t->file, "./%s", path + n + 1);
	else
		snprintf(t->file, sizeof t->file, "%s", path);
}

/* No span arrived: says so, why, and that the file got nothing. */
static void say_no_span(const struct target *target, const char *why)
{
	if (target->file[0])
		fprintf(stderr, "otlpauto: no span was produced, nothing was written to %s: %s\n",
			target->file, why);
	else
		fprintf(stderr, "otlpauto: no span was produced: %s\n", why);
}

/* Why processes that were traced recorded nothing: the hook families, when
 * they were chosen, are the likely reason. */
static void say_nothing_recorded(char *why, size_t size, uint64_t processes)
{
	int n = snprintf(why, size, "nothing was recorded in %llu traced process%s",
			 (unsigned long long)processes, processes == 1 ? "" : "es");
	if (env_is_set("OTLPAUTO_HOOKS") && n > 0 && (size_t)n < size)
		snprintf(why + n, size - (size_t)n, " (OTLPAUTO_HOOKS=%s)",
			 getenv("OTLPAUTO_HOOKS"));
}

/* What went wrong, on stderr; nothing when every span was delivered. When no
 * span arrived it says why, if known: not traced, a Go program, nothing
 * recorded, every span sampled out (said only for a file: a collector's
 * sampled-out traces are normal). */
static void say_what_was_lost(const struct target *target, const struct oa_relay_totals *t)
{
	const char *program = target->name;
	const struct oa_relay_stats *r = &t->reported;
	/* Spans the processes delivered to the relay are lost again when the
	 * relay cannot send them (t->failed), or not by its deadline. */
	uint64_t lost_in_processes = 0;
	for (size_t i = 0; i < sizeof r->lost / sizeof r->lost[0]; i++)
		lost_in_processes += r->lost[i];
	uint64_t recorded = r->exported + lost_in_processes;
	uint64_t lost = lost_in_processes + t->failed + t->unsent_at_exit;
	char why[512];
	/* A Go program ends with its own exit system call: it never reports. */
	bool go_silent = target->go && t->unreported;
	bool said_unreported = go_silent;
	if (t->processes == 0) {
		snprintf(why, sizeof why, "%s %s%s", program,
			 target->untraced ? target->untraced
					  : "ran without the shim (statically linked, set-uid, or "
					    "LD_PRELOAD removed)",
			 target->untraced ? ", it cannot be traced" : "");
		say_no_span(target, why);
		return;
	}
	/* A process that never reported may still have sent spans. */
	bool none = recorded == 0 && t->spans_in == 0;
	if (none && go_silent) {
		snprintf(why, sizeof why, "%s %s", program, go_reason);
		say_no_span(target, why);
	} else if (none && r->sampled_out == 0) {
		said_unreported = t->unreported == t->processes;
		if (said_unreported)
			snprintf(why, sizeof why,
				 "the %llu traced process%s ended without "
				 "reporting (killed, or replaced by a program that is not traced)",
				 (unsigned long long)t->processes, t->processes == 1 ? "" : "es");
		else
			say_nothing_recorded(why, sizeof why, t->processes);
		say_no_span(target, why);
	} else if (none && target->file[0]) {
		snprintf(why, sizeof why, "every span of %s was sampled out (%llu)", program,
			 (unsigned long long)r->sampled_out);
		say_no_span(target, why);
	}
	if (lost)
		fprintf(stderr,
			"otlpauto: %llu of %llu spans were lost: ring full %llu, queue full %llu, "
			"export failed %llu, rejected %llu, unsent at exit %llu, ended after exit "
			"%llu, pipelined past what a connection follows %llu\n",
			(unsigned long long)lost, (unsigned long long)recorded,
			(unsigned long long)r->lost[0], (unsigned long long)r->lost[1],
			(unsigned long long)(r->lost[2] + t->failed),
			(unsigned long long)r->lost[3],
			(unsigned long long)(r->lost[4] + t->unsent_at_exit),
			(unsigned long long)r->lost[5], (unsigned long long)r->lost[6]);
	if (t->unreported && !said_unreported)
		fprintf(stderr,
			"otlpauto: %llu traced process%s ended without reporting (killed, or "
			"replaced by a program that is not traced): spans may be missing\n",
			(unsigned long long)t->unreported, t->unreported == 1 ? "" : "es");
}

/* Runs the program as a child, waits for it, sends what the relay took in
 * and exits as the program did. */
static int run_with_relay(const struct otlpauto_relay_v1 *relay, char **program,
			  const struct target *target)
{
	watch_signals();
	pid_t pid;
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	sigset_t defaults;
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGQUIT);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
	int err = posix_spawnp(&pid, program[0], NULL, &attr, program, environ);
	posix_spawnattr_destroy(&attr);
	if (err) {
		fprintf(stderr, "otlpauto run: cannot execute %s: %s\n", program[0], strerror(err));
		return EXIT_CANNOT_EXEC;
	}
	child_pid = pid;
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	child_pid = 0;
	struct oa_config cfg = {0};
	parse_environment(&cfg);
	struct oa_relay_totals totals;
	relay->finish(cfg.export_timeout_ms, &totals);
	oa_config_free(&cfg);
	say_what_was_lost(target, &totals);
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		raise(WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

/* ---- The command ---- */

enum {
	OPT_ENDPOINT = 256,
	OPT_SERVICE,
	OPT_FILE,
	OPT_CONSOLE,
	OPT_THRESHOLD,
	OPT_FUNCTIONS,
	OPT_EXCLUDE,
	OPT_SAMPLER,
	OPT_HOOKS,
	OPT_HEADER,
	OPT_GZIP,
};

static const struct option run_options[] = {
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"service", required_argument, NULL, OPT_SERVICE},
    {"file", required_argument, NULL, OPT_FILE},
    {"console", no_argument, NULL, OPT_CONSOLE},
    {"threshold", required_argument, NULL, OPT_THRESHOLD},
    {"functions", required_argument, NULL, OPT_FUNCTIONS},
    {"exclude", required_argument, NULL, OPT_EXCLUDE},
    {"sampler", required_argument, NULL, OPT_SAMPLER},
    {"hooks", required_argument, NULL, OPT_HOOKS},
    {"header", required_argument, NULL, OPT_HEADER},
    {"gzip", no_argument, NULL, OPT_GZIP},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* Records --endpoint, --file or --console; two different ones contradict each other. */
static bool choose_destination(struct settings *s, const char *option)
{
	if (s->destination && strcmp(s->destination, option) != 0)
		return false;
	s->destination = option;
	return true;
}

static int parse_options(int argc, char **argv, struct settings *s)
{
	char path[PATH_MAX];
	int opt;
	while ((opt = getopt_long(argc, argv, "+h", run_options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(run_usage, stdout);
			return -1;
		case OPT_ENDPOINT:
		case OPT_FILE:
		case OPT_CONSOLE: {
			const char *option = opt == OPT_ENDPOINT ? "--endpoint"
					     : opt == OPT_FILE	 ? "--file"
								 : "--console";
			if (!choose_destination(s, option))
				return usage_error("run", "%s and %s cannot be used together",
						   s->destination, option);
			if (opt == OPT_ENDPOINT) {
				set(s, "--endpoint", "OTEL_TRACES_EXPORTER", "otlp");
				set(s, "--endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", optarg);
			} else if (opt == OPT_CONSOLE) {
				set(s, "--console", "OTEL_TRACES_EXPORTER", "console");
			} else {
				if (!optarg[0] || !absolute_path(optarg, path, sizeof path))
					return usage_error("run", "--file: bad path '%s'", optarg);
				set(s, "--file", "OTEL_TRACES_EXPORTER", "otlp/file");
				set(s, "--file", "OTLPAUTO_FILE", path);
			}
			break;
		}
		case OPT_SERVICE:
			set(s, "--service", "OTEL_SERVICE_NAME", optarg);
			break;
		case OPT_THRESHOLD:
			set(s, "--threshold", "OTLPAUTO_FUNCTION_THRESHOLD", optarg);
			break;
		case OPT_FUNCTIONS:
			set(s, "--functions", "OTLPAUTO_FUNCTION_INCLUDE", optarg);
			break;
		case OPT_EXCLUDE:
			set(s, "--exclude", "OTLPAUTO_FUNCTION_EXCLUDE", optarg);
			break;
		case OPT_SAMPLER: {
			char *colon = strchr(optarg, ':');
			if (colon) {
				*colon = '\0';
				set(s, "--sampler", "OTEL_TRACES_SAMPLER_ARG", colon + 1);
			}
			set(s, "--sampler", "OTEL_TRACES_SAMPLER", optarg);
			break;
		}
		case OPT_HOOKS:
			set(s, "--hooks", "OTLPAUTO_HOOKS", optarg);
			break;
		case OPT_HEADER:
			if (!add_header(s, optarg))
				return usage_error("run", "--header: '%s' is not KEY=VALUE",
						   optarg);
			break;
		case OPT_GZIP:
			set(s, "--gzip", "OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
			break;
		default:
			fprintf(stderr, "Try 'otlpauto run --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("run", "no program given");
	return validate(s);
}

int cmd_run(int argc, char **argv)
{
	struct settings s = {0};
	int status = parse_options(argc, argv, &s);
	if (status) {
		free_settings(&s);
		return status < 0 ? 0 : status; /* -1: the help was asked for */
	}
	char **program = argv + optind;
	struct library_search library;
	if (!find_library(&library)) {
		fprintf(
		    stderr,
		    "otlpauto run: cannot find libotlpauto.so (looked at: %s); set OTLPAUTO_LIB "
		    "to its path\n",
		    library.tried);
		free_settings(&s);
		return EXIT_RUN_FAILED;
	}
	char file[PATH_MAX], path[PATH_MAX];
	/* A build without the JSON encoder has no file exporter to fall back on. */
	bool default_file = OA_FEATURE_JSON && !s.destination && !destination_in_environment();
	if (default_file) {
		default_file_name(program[0], file, sizeof file);
		if (!absolute_path(file, path, sizeof path)) {
			fprintf(stderr, "otlpauto run: cannot name a file for the spans: %s\n",
				strerror(errno));
			free_settings(&s);
			return EXIT_RUN_FAILED;
		}
		set(&s, "", "OTEL_TRACES_EXPORTER", "otlp/file");
		set(&s, "", "OTLPAUTO_FILE", path);
	}
	char *preload = preload_value(library.path);
	if (!preload || !apply(&s) || setenv("LD_PRELOAD", preload, 1) != 0) {
		fprintf(stderr, "otlpauto run: cannot set the environment: %s\n", strerror(errno));
		free(preload);
		free_settings(&s);
		return EXIT_RUN_FAILED;
	}
	free(preload);
	free_settings(&s);
	struct target target = {0};
	inspect_target(&target, program[0]);
	struct oa_config cfg = {0};
	parse_environment(&cfg);
	/* A default file is named only for a program that can write to it. */
	if (cfg.exporter == OA_EXPORTER_FILE && cfg.file_path && !(default_file && target.untraced))
		show_file(&target, cfg.file_path);
	oa_config_free(&cfg);
	/* Not before a program that is not there or cannot be traced: it would
	 * write nothing. */
	if (default_file && find_program(program[0], path, sizeof path) && !target.untraced)
		fprintf(stderr, "otlpauto: writing spans to %s; view them with: otlpauto view %s\n",
			target.file, target.file);
	if (target.untraced)
		fprintf(stderr,
			"otlpauto: %s %s%s, so it cannot be traced; see 'otlpauto doctor %s'\n",
			program[0], target.untraced, target.consequence, program[0]);
	else if (target.go)
		fprintf(stderr, "otlpauto: %s %s; see 'otlpauto doctor %s'\n", program[0],
			go_reason, program[0]);
	const struct otlpauto_relay_v1 *relay = host_relay(library.path);
	if (relay)
		return run_with_relay(relay, program, &target);
	execvp(program[0], program);
	fprintf(stderr, "otlpauto run: cannot execute %s: %s\n", program[0], strerror(errno));
	return EXIT_CANNOT_EXEC;
}
