/* Chrome trace-event JSON (the format chrome://tracing and Perfetto open):
 * one "X" (complete) event per span, times in microseconds, and "M"
 * (metadata) events naming processes and threads. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chrome.h"

static void put_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* Nanoseconds as microseconds with three decimals, exactly. */
static void put_us(FILE *out, uint64_t ns)
{
	fprintf(out, "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
}

static int64_t thread_id(const struct span *s)
{
	const struct attr *tid = span_attr(s, "thread.id");
	if (tid && tid->type == ATTR_INT)
		return strtoll(tid->text, NULL, 10);
	return s->process->pid;
}

static void put_event(FILE *out, const struct span *s, bool *first)
{
	static const char *const kinds[] = {"span",   "internal", "server",
					    "client", "producer", "consumer"};
	fputs(*first ? "\n" : ",\n", out);
	*first = false;
	fputs("{\"name\":", out);
	put_string(out, s->name);
	fprintf(out, ",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":",
		s->kind >= 0 && s->kind < 6 ? kinds[s->kind] : "span");
	put_us(out, s->start_ns);
	fputs(",\"dur\":", out);
	put_us(out, span_duration_ns(s));
	fprintf(out, ",\"pid\":%" PRId64 ",\"tid\":%" PRId64 ",\"args\":{", s->process->pid,
		thread_id(s));
	for (size_t i = 0; i < s->n_attrs; i++) {
		const struct attr *a = &s->attrs[i];
		if (i)
			fputc(',', out);
		put_string(out, a->key);
		fputc(':', out);
		if (a->type == ATTR_INT || a->type == ATTR_DOUBLE || a->type == ATTR_BOOL)
			fputs(a->text, out);
		else
			put_string(out, a->text);
	}
	fputs("}}", out);
}

/* A process or thread to name in a metadata event. */
struct named {
	int64_t pid, tid; /* tid 0: the process */
	const char *name;
};

static int by_ids(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static void put_names(FILE *out, struct named *names, size_t n, bool *first)
{
	qsort(names, n, sizeof *names, by_ids);
	for (size_t i = 0; i < n; i++) {
		if (i && by_ids(&names[i - 1], &names[i]) == 0)
			continue;
		fputs(*first ? "\n" : ",\n", out);
		*first = false;
		fprintf(out, "{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%" PRId64,
			names[i].tid ? "thread_name" : "process_name", names[i].pid);
		if (names[i].tid)
			fprintf(out, ",\"tid\":%" PRId64, names[i].tid);
		fputs(",\"args\":{\"name\":", out);
		put_string(out, names[i].name);
		fputs("}}", out);
	}
}

bool write_chrome(FILE *out, const struct trace *const *traces, size_t n_traces)
{
	size_t n_spans = 0;
	for (size_t i = 0; i < n_traces; i++)
		n_spans += traces[i]->n_spans;
	/* At most a process and a thread name per span. */
	struct named *names = malloc((2 * n_spans + 1) * sizeof *names);
	if (!names)
		return false;
	size_t n_names = 0;
	bool first = true;
	fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[", out);
	for (size_t i = 0; i < n_traces; i++) {
		for (struct span *root = traces[i]->first_root; root; root = root->next_sibling) {
			int depth = 0;
			for (struct span *s = root; s; s = span_next(root, s, &depth)) {
				put_event(out, s, &first);
				const struct process *p = s->process;
				if (p->executable[0])
					names[n_names++] = (struct named){p->pid, 0, p->executable};
				const struct attr *thread = span_attr(s, "thread.name");
				if (thread)
					names[n_names++] =
					    (struct named){p->pid, thread_id(s), thread->text};
			}
		}
	}
	put_names(out, names, n_names, &first);
	fputs("\n]}\n", out);
	free(names);
	return !ferror(out);
}
