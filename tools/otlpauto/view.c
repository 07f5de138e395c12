/* otlpauto view: OTLP JSON lines files as trees, a per-name summary, or
 * Chrome trace-event JSON; or their metrics as a table. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrome.h"
#include "cli.h"
#include "metrics_view.h"

static const char view_usage[] =
    "Usage: otlpauto view [OPTIONS] [FILE...]\n"
    "Shows the spans in OTLP JSON lines files (what otlpauto run and the otlp/file\n"
    "exporter write) as one tree per trace, joined across files and processes.\n"
    "Without FILE, the newest otlpauto-*.jsonl in the current directory.\n"
    "\n"
    "  --min-duration DURATION  only traces whose root span took at least this, e.g. 5ms\n"
    "  --trace ID               only the trace with this id (or id prefix)\n"
    "  --summary                a table per span name instead of the trees: calls, total,\n"
    "                           self time, average and max, by total\n"
    "  --metrics                the metrics instead: per service and HTTP metric,\n"
    "                           requests, rate, error %, p50, p90 and p99; the same per\n"
    "                           service, database system and operation; and per\n"
    "                           service the spans produced, exported, sampled out, dropped\n"
    "  --chrome OUT.json        write Chrome/Perfetto trace-event JSON to OUT.json\n"
    "                           (- for stdout) instead of the trees\n"
    "  --color[=WHEN]           color errors: auto (on a terminal; the default),\n"
    "                           always or never\n"
    "  -h, --help               show this help\n";

enum { OPT_MIN_DURATION = 256, OPT_TRACE, OPT_SUMMARY, OPT_METRICS, OPT_CHROME, OPT_COLOR };

static const struct option view_options[] = {
    {"min-duration", required_argument, NULL, OPT_MIN_DURATION},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"summary", no_argument, NULL, OPT_SUMMARY},
    {"metrics", no_argument, NULL, OPT_METRICS},
    {"chrome", required_argument, NULL, OPT_CHROME},
    {"color", optional_argument, NULL, OPT_COLOR},
    {"help", no_argument, NULL, 'h'},
    {0},
};

struct view_options {
	uint64_t min_duration_ns;
	char trace_prefix[33];
	bool summary;
	bool metrics;
	const char *chrome_path;
	bool color;
};

#define RED    "\033[1;31m"
#define YELLOW "\033[33m"
#define BOLD   "\033[1m"
#define RESET  "\033[0m"

/* ---- The trees ---- */

static const char *attr_text(const struct span *s, const char *key)
{
	const struct attr *a = span_attr(s, key);
	return a ? a->text : NULL;
}

static bool same_process(const struct process *a, const struct process *b)
{
	return a->has_pid == b->has_pid && a->pid == b->pid &&
	       strcmp(a->executable, b->executable) == 0;
}

/* The parts after the name: duration, kind, key attributes, process, error. */
static void describe(FILE *out, const struct span *s)
{
	static const char *const kinds[] = {NULL, NULL, "server", "client", "producer", "consumer"};
	char duration[32];
	fprintf(out, "  %s", format_duration(span_duration_ns(s), duration));
	if (s->kind >= 0 && s->kind < 6 && kinds[s->kind])
		fprintf(out, "  %s", kinds[s->kind]);
	const char *method = attr_text(s, "http.request.method");
	const char *path = attr_text(s, "url.path");
	const char *url = path ? path : attr_text(s, "url.full");
	const char *status = attr_text(s, "http.response.status_code");
	if (method)
		fprintf(out, "  method=%s", method);
	if (url)
		fprintf(out, "  %s=%s", path ? "path" : "url", url);
	if (status)
		fprintf(out, "  status=%s", status);
	const char *peer = attr_text(s, "network.peer.address");
	const char *port = attr_text(s, "network.peer.port");
	if (!peer) {
		peer = attr_text(s, "server.address");
		port = attr_text(s, "server.port");
	}
	if (peer)
		fprintf(out, "  peer=%s%s%s", peer, port ? ":" : "", port ? port : "");
	const char *dns = attr_text(s, "dns.question.name");
	if (dns)
		fprintf(out, "  dns=%s", dns);
	const char *function = attr_text(s, "code.function.name");
	if (function && strcmp(function, s->name) != 0)
		fprintf(out, "  function=%s", function);
	const char *executable = attr_text(s, "process.executable.path");
	if (executable)
		fprintf(out, "  exe=%s", executable);
	const char *exit_code = attr_text(s, "process.exit.code");
	if (exit_code)
		fprintf(out, "  exit=%s", exit_code);
	const struct process *p = s->process;
	if (!s->parent || !same_process(s->parent->process, p)) {
		if (p->has_pid)
			fprintf(out, "  [pid %" PRId64 "%s%s]", p->pid, p->executable[0] ? " " : "",
				p->executable);
		else if (p->executable[0])
			fprintf(out, "  [%s]", p->executable);
	}
	if (s->status_code == SPAN_STATUS_ERROR) {
		const char *type = attr_text(s, "error.type");
		fprintf(out, "  ERROR%s%s", s->status_message[0] ? ": " : "", s->status_message);
		if (type && strcmp(type, s->status_message) != 0) /* a signal's name: both */
			fprintf(out, " (%s)", type);
	}
}

static void print_span(FILE *out, const struct span *s, int depth, bool color)
{
	bool error = s->status_code == SPAN_STATUS_ERROR;
	fprintf(out, "%*s%s%s", 2 * depth + 2, "", color && error ? RED : "", s->name);
	describe(out, s);
	if (color && error)
		fputs(RESET, out);
	if (s->parent_missing || s->parent_cycle)
		fprintf(out, "  %s%s%s", color ? YELLOW : "",
			s->parent_missing ? "(parent not received)" : "(parent cycle cut here)",
			color ? RESET : "");
	fputc('\n', out);
}

static void print_trace(FILE *out, const struct trace *t, bool color)
{
	char duration[32];
	fprintf(out, "%strace ", color ? BOLD : "");
	for (int i = 0; i < 16; i++)
		fprintf(out, "%02x", t->trace_id[i]);
	fprintf(out, "%s  %s  %zu span%s\n", color ? RESET : "",
		format_duration(t->end_ns - t->start_ns, duration), t->n_spans,
		t->n_spans == 1 ? "" : "s");
	for (struct span *root = t->first_root; root; root = root->next_sibling) {
		int depth = 0;
		for (struct span *s = root; s; s = span_next(root, s, &depth))
			print_span(out, s, depth, color);
	}
}

/* ---- The summary ---- */

struct row {
	const char *name;
	uint64_t calls, total_ns, self_ns, max_ns;
};

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct span *const *)a)->name, (*(struct span *const *)b)->name);
}

static int by_total(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->total_ns != y->total_ns)
		return x->total_ns > y->total_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool print_summary(FILE *out, const struct trace *const *traces, size_t n_traces)
{
	size_t n = 0;
	for (size_t i = 0; i < n_traces; i++)
		n += traces[i]->n_spans;
	struct span **spans = malloc((n + 1) * sizeof *spans);
	struct row *rows = malloc((n + 1) * sizeof *rows);
	if (!spans || !rows) {
		free(spans);
		free(rows);
		return false;
	}
	n = 0;
	for (size_t i = 0; i < n_traces; i++) {
		for (struct span *root = traces[i]->first_root; root; root = root->next_sibling) {
			int depth = 0;
			for (struct span *s = root; s; s = span_next(root, s, &depth))
				spans[n++] = s;
		}
	}
	qsort(spans, n, sizeof *spans, by_name);
	size_t n_rows = 0;
	for (size_t i = 0; i < n; i++) {
		if (n_rows == 0 || strcmp(spans[i]->name, rows[n_rows - 1].name) != 0)
			rows[n_rows++] = (struct row){.name = spans[i]->name};
		struct row *r = &rows[n_rows - 1];
		uint64_t duration = span_duration_ns(spans[i]);
		r->calls++;
		r->total_ns += duration;
		/* Children that ran in parallel (threads, other processes) can add up to
		 * more than their parent took. */
		r->self_ns +=
		    duration > spans[i]->children_ns ? duration - spans[i]->children_ns : 0;
		if (duration > r->max_ns)
			r->max_ns = duration;
	}
	qsort(rows, n_rows, sizeof *rows, by_total);
	fprintf(out, "%8s  %12s  %12s  %12s  %12s  %s\n", "calls", "total", "self", "average",
		"max", "name");
	for (size_t i = 0; i < n_rows; i++) {
		char total[32], self[32], average[32], max[32];
		fprintf(out, "%8" PRIu64 "  %12s  %12s  %12s  %12s  %s\n", rows[i].calls,
			format_duration(rows[i].total_ns, total),
			format_duration(rows[i].self_ns, self),
			format_duration(rows[i].total_ns / rows[i].calls, average),
			format_duration(rows[i].max_ns, max), rows[i].name);
	}
	free(spans);
	free(rows);
	return true;
}

/* ---- Files and options ---- */

/* The newest otlpauto-*.jsonl in the current directory, malloc'd; NULL if none. */
static char *newest_default_file(void)
{
	DIR *dir = opendir(".");
	if (!dir)
		return NULL;
	char *newest = NULL;
	struct timespec newest_time = {0};
	for (struct dirent *e; (e = readdir(dir));) {
		size_t len = strlen(e->d_name);
		struct stat st;
		if (strncmp(e->d_name, "otlpauto-", 9) != 0 || len < 15 ||
		    strcmp(e->d_name + len - 6, ".jsonl") != 0 || stat(e->d_name, &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		bool newer = !newest || st.st_mtim.tv_sec > newest_time.tv_sec ||
			     (st.st_mtim.tv_sec == newest_time.tv_sec &&
			      st.st_mtim.tv_nsec > newest_time.tv_nsec);
		if (newer) {
			free(newest);
			newest = strdup(e->d_name);
			newest_time = st.st_mtim;
		}
	}
	closedir(dir);
	return newest;
}

static bool parse_trace_id(const char *text, char prefix[static 33])
{
	size_t len = strlen(text);
	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
		prefix[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	prefix[len] = '\0';
	return true;
}

static int parse_options(int argc, char **argv, struct view_options *o)
{
	const char *color = "auto";
	int opt;
	while ((opt = getopt_long(argc, argv, "h", view_options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(view_usage, stdout);
			return -1;
		case OPT_MIN_DURATION:
			if (!parse_duration(optarg, &o->min_duration_ns))
				return usage_error("view",
						   "--min-duration: '%s' is not a duration such as "
						   "250us, 5ms or 1.5s",
						   optarg);
			break;
		case OPT_TRACE:
			if (!parse_trace_id(optarg, o->trace_prefix))
				return usage_error("view", "--trace: '%s' is not a trace id (hex)",
						   optarg);
			break;
		case OPT_SUMMARY:
			o->summary = true;
			break;
		case OPT_METRICS:
			o->metrics = true;
			break;
		case OPT_CHROME:
			o->chrome_path = optarg;
			break;
		case OPT_COLOR:
			color = optarg ? optarg : "always";
			break;
		default:
			fprintf(stderr, "Try 'otlpauto view --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (strcmp(color, "always") == 0)
		o->color = true;
	else if (strcmp(color, "auto") == 0)
		o->color = isatty(STDOUT_FILENO);
	else if (strcmp(color, "never") != 0)
		return usage_error("view", "--color: '%s' is not auto, always or never", color);
	return 0;
}

static bool selected(const struct trace *t, const struct view_options *o)
{
	char id[33];
	for (int i = 0; i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", t->trace_id[i]);
	return strncmp(id, o->trace_prefix, strlen(o->trace_prefix)) == 0 &&
	       t->longest_root_ns >= o->min_duration_ns;
}

static bool write_chrome_file(const char *path, const struct trace *const *traces, size_t n)
{
	bool to_stdout = strcmp(path, "-") == 0;
	FILE *out = to_stdout ? stdout : fopen(path, "w");
	if (!out) {
		fprintf(stderr, "otlpauto view: cannot write %s: %s\n", path, strerror(errno));
		return false;
	}
	bool ok = write_chrome(out, traces, n);
	if (!to_stdout && fclose(out) != 0)
		ok = false;
	if (!ok)
		fprintf(stderr, "otlpauto view: cannot write %s\n", path);
	return ok;
}

/* Loads a file; false, with a message, when it cannot be read or holds no
 * span (run writes no file when no span was produced, so an empty one is
 * someone else's mistake worth naming). */
static bool load_file(struct span_set *set, const char *path)
{
	size_t before = set->n_spans;
	if (!spans_load_file(set, path))
		return false;
	if (set->n_spans > before)
		return true;
	struct stat st;
	bool empty = stat(path, &st) == 0 && st.st_size == 0;
	fprintf(stderr, "otlpauto view: %s: %s\n", path,
		empty ? "empty file, no spans" : "no span in it");
	return false;
}

static int show(struct span_set *set, const struct view_options *o)
{
	const struct trace **traces = malloc((set->n_traces + 1) * sizeof *traces);
	if (!traces)
		return 1;
	size_t n = 0;
	for (size_t i = 0; i < set->n_traces; i++)
		if (selected(&set->traces[i], o))
			traces[n++] = &set->traces[i];
	bool ok = true;
	if (o->summary)
		ok = print_summary(stdout, traces, n);
	if (o->chrome_path)
		ok = write_chrome_file(o->chrome_path, traces, n) && ok;
	for (size_t i = 0; i < n && !o->summary && !o->chrome_path; i++) {
		if (i)
			fputc('\n', stdout);
		print_trace(stdout, traces[i], o->color);
	}
	if (set->n_duplicates)
		fprintf(stderr, "otlpauto view: %zu duplicate span%s ignored\n", set->n_duplicates,
			set->n_duplicates == 1 ? "" : "s");
	free(traces);
	return ok ? 0 : 1;
}

int cmd_view(int argc, char **argv)
{
	struct view_options o = {0};
	int status = parse_options(argc, argv, &o);
	if (status)
		return status < 0 ? 0 : status; /* -1: the help was asked for */
	char *default_file = NULL;
	if (optind == argc) {
		default_file = newest_default_file();
		if (!default_file) {
			fprintf(stderr,
				"otlpauto view: no otlpauto-*.jsonl in the current directory; "
				"name the files to show\n");
			return 1;
		}
	}
	if (o.metrics) {
		bool printed = default_file
				   ? print_metrics(stdout, &default_file, 1)
				   : print_metrics(stdout, argv + optind, (size_t)(argc - optind));
		free(default_file);
		return printed ? 0 : 1;
	}
	struct span_set set = {0};
	bool ok = true;
	if (default_file)
		ok = load_file(&set, default_file);
	for (int i = optind; i < argc; i++)
		ok = load_file(&set, argv[i]) && ok;
	free(default_file);
	if (!spans_build(&set)) {
		fprintf(stderr, "otlpauto view: out of memory\n");
		spans_free(&set);
		return 1;
	}
	status = show(&set, &o);
	spans_free(&set);
	return ok ? status : 1;
}
