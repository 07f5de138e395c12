/* Spans read back from OTLP JSON lines (one ExportTraceServiceRequest per
 * line, as the otlp/file exporter writes them), joined into one tree per
 * trace across all files. */
#ifndef OTLPAUTO_CLI_SPANS_H
#define OTLPAUTO_CLI_SPANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

struct trace;

enum attr_type {
	ATTR_STRING,
	ATTR_INT,
	ATTR_DOUBLE,
	ATTR_BOOL,
	ATTR_OTHER, /* array, kvlist, bytes or empty: text is a rendering of it */
};

struct attr {
	const char *key;
	const char *text; /* strings as they are; numbers and booleans as JSON writes them */
	enum attr_type type;
};

/* The resource of one export request: which process sent the spans. */
struct process {
	int64_t pid;
	bool has_pid;
	const char *executable; /* process.executable.name, or "" */
};

enum { SPAN_STATUS_ERROR = 2 };

struct span {
	uint8_t trace_id[16];
	uint64_t span_id;
	uint64_t parent_id; /* 0: none */
	const char *name;
	int kind; /* OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer */
	uint64_t start_ns, end_ns;
	int status_code;
	const char *status_message;
	const struct attr *attrs;
	size_t n_attrs;
	const struct process *process;

	/* The tree, filled by spans_build. */
	struct trace *trace;
	struct span *parent;
	struct span *first_child, *last_child, *next_sibling;
	bool parent_missing;  /* names a parent that no file holds */
	bool parent_cycle;    /* its ancestors lead back to it: shown as a root */
	uint64_t children_ns; /* the durations of its children added up, for self time */
	int visit;	      /* cycle search state */
};

struct trace {
	uint8_t trace_id[16];
	struct span *first_root, *last_root;
	uint64_t start_ns, end_ns;
	uint64_t longest_root_ns;
	size_t n_spans;
};

struct span_set {
	struct arena arena;
	struct span **spans;
	size_t n_spans, cap_spans;
	struct trace *traces; /* by start time, after spans_build */
	size_t n_traces;
	size_t n_duplicates;
};

/* Adds the spans of every valid line of path; a bad line gets one warning on
 * stderr naming path:line and is skipped. False if the file cannot be read. */
bool spans_load_file(struct span_set *set, const char *path);
/* Drops duplicate spans, links parents and children (children by start
 * time) and groups the spans into traces. False when out of memory. */
bool spans_build(struct span_set *set);
void spans_free(struct span_set *set);

uint64_t span_duration_ns(const struct span *s);
const struct attr *span_attr(const struct span *s, const char *key);
/* Pre-order walk of one tree: the span after s below root, NULL at the end;
 * *depth follows the walk. */
struct span *span_next(const struct span *root, struct span *s, int *depth);

#endif
