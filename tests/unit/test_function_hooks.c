/* The function hooks driven directly: the runtime is linked into this test
 * and the hooks are called by hand, so each case knows exactly which calls
 * happened. Records are read from the thread's ring; the exporter keeps them
 * there because a batch is never full (64 records) and the schedule delay is
 * an hour. Each case runs in a fresh copy of this program (the runtime reads
 * its settings once, at start-up), with the case's settings in its
 * environment. */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "record.h"
#include "runtime.h"

void __cyg_profile_func_enter(void *fn, void *site);
void __cyg_profile_func_exit(void *fn, void *site);

/* Real functions, so the name filters find them in the symbol table. */
__attribute__((noinline)) void kept_outer(void);
__attribute__((noinline)) void kept_outer(void)
{
}
__attribute__((noinline)) void excluded_middle(void);
__attribute__((noinline)) void excluded_middle(void)
{
}
__attribute__((noinline)) void kept_inner(void);
__attribute__((noinline)) void kept_inner(void)
{
}

#define ENTER(f) __cyg_profile_func_enter((void *)(f), NULL)
#define EXIT(f)	 __cyg_profile_func_exit((void *)(f), NULL)

/* A record with room for the one-slot payload function spans have. */
union slot {
	struct oa_record rec;
	uint8_t bytes[OA_SLOT_SIZE];
};

struct seen {
	union slot recs[32];
	int n;
};

/* Copies the calling thread's committed records, oldest first. */
static void collect(struct seen *s)
{
	struct oa_ring *ring = oa_tls.state->ring;
	s->n = 0;
	for (uint64_t pos = ring->tail; pos < ring->head && s->n < 32;) {
		struct oa_record *rec = oa_ring_slot(ring, pos);
		if (rec->type == OA_REC_SPAN)
			memcpy(s->recs[s->n++].bytes, rec, OA_SLOT_SIZE);
		pos += rec->n_slots;
	}
}

static const struct oa_record *find(const struct seen *s, void (*fn)(void), int nth)
{
	for (int i = 0; i < s->n; i++)
		if (s->recs[i].rec.subject == (uintptr_t)fn && nth-- == 0)
			return &s->recs[i].rec;
	return NULL;
}

static const char *end_reason(const struct oa_record *r)
{
	/* The only payload item function spans carry: a static reason string. */
	if (r->payload_len < 3 + sizeof(char *))
		return "";
	const char *s;
	memcpy(&s, r->payload + 3, sizeof s);
	return s;
}

static void case_balanced(void)
{
	ENTER(kept_outer);
	ENTER(kept_inner);
	EXIT(kept_inner);
	EXIT(kept_outer);
	struct seen s;
	collect(&s);
	CHECK_EQ_INT(s.n, 2);
	const struct oa_record *outer = find(&s, kept_outer, 0), *inner = find(&s, kept_inner, 0);
	CHECK(outer && inner);
	if (!outer || !inner)
		return;
	CHECK(inner->parent_span_id == outer->span_id);
	CHECK(inner->rec_flags & OA_REC_F_HAS_PARENT);
	/* The outermost frame is a child of the process span. */
	CHECK(outer->rec_flags & OA_REC_F_HAS_PARENT);
	CHECK(outer->parent_span_id == oa_rt.process_ctx.span_id && outer->parent_span_id != 0);
	CHECK(memcmp(inner->trace_id, outer->trace_id, 16) == 0);
	CHECK(outer->start <= inner->start && inner->end <= outer->end);
	CHECK_EQ_INT(outer->kind, OA_KIND_INTERNAL);
	CHECK_EQ_INT(outer->scope, OA_SCOPE_FUNCTIONS);
	CHECK_EQ_INT(oa_tls.state->depth, 0);
}

static void case_unmatched_exit_ignored(void)
{
	EXIT(kept_inner); /* its enter came before we were active */
	ENTER(kept_outer);
	EXIT(kept_inner); /* not on the stack: ignored */
	CHECK_EQ_INT(oa_tls.state->depth, 1);
	EXIT(kept_outer);
	struct seen s;
	collect(&s);
	CHECK_EQ_INT(s.n, 1);
	CHECK(find(&s, kept_outer, 0) != NULL);
}

static void case_resync_after_missing_exits(void)
{
	ENTER(kept_outer);
	ENTER(excluded_middle);
	ENTER(kept_inner);
	/* A longjmp or exception skips the exits of the two inner frames. */
	EXIT(kept_outer);
	CHECK_EQ_INT(oa_tls.state->depth, 0);
	struct seen s;
	collect(&s);
	CHECK_EQ_INT(s.n, 3);
	const struct oa_record *outer = find(&s, kept_outer, 0);
	const struct oa_record *middle = find(&s, excluded_middle, 0);
	const struct oa_record *inner = find(&s, kept_inner, 0);
	CHECK(outer && middle && inner);
	if (!outer || !middle || !inner)
		return;
	CHECK_EQ_STR(end_reason(inner), "unwound");
	CHECK_EQ_STR(end_reason(middle), "unwound");
	CHECK(outer->payload_len == 0); /* ended normally */
	CHECK(inner->parent_span_id == middle->span_id);
	CHECK(middle->parent_span_id == outer->span_id);
	/* Sent once: a late exit of an unwound frame finds nothing. */
	EXIT(kept_inner);
	collect(&s);
	CHECK_EQ_INT(s.n, 3);
}

static void case_exclude_glob(void)
{
	ENTER(kept_outer);
	ENTER(excluded_middle);
	ENTER(kept_inner);
	EXIT(kept_inner);
	EXIT(excluded_middle);
	EXIT(kept_outer);
	struct seen s;
	collect(&s);
	CHECK_EQ_INT(s.n, 2);
	const struct oa_record *outer = find(&s, kept_outer, 0), *inner = find(&s, kept_inner, 0);
	CHECK(find(&s, excluded_middle, 0) == NULL);
	CHECK(outer && inner && inner->parent_span_id == outer->span_id);
}

static void case_include_glob(void)
{
	ENTER(kept_outer);
	ENTER(kept_inner);
	EXIT(kept_inner);
	EXIT(kept_outer);
	struct seen s;
	collect(&s);
	CHECK_EQ_INT(s.n, 1);
	const struct oa_record *inner = find(&s, kept_inner, 0);
	CHECK(inner != NULL);
	/* No exported ancestor: a child of the process span. */
	if (inner)
		CHECK(inner->parent_span_id == oa_rt.process_ctx.span_id &&
		      (inner->rec_flags & OA_REC_F_HAS_PARENT));
}

static void case_threshold(void)
{
	ENTER(kept_outer);
	ENTER(kept_inner);
	EXIT(kept_inner); /* fast: not a span */
	usleep(6000);
	EXIT(kept_outer); /* slow: a span */
	struct seen s;
	collect(&s);
	CHECK_EQ_INT(s.n, 1);
	CHECK(find(&s, kept_outer, 0) != NULL);
	/* A fast parent still becomes a span once a slow child named it. */
	ENTER(kept_outer);
	ENTER(kept_inner);
	usleep(6000);
	EXIT(kept_inner);
	struct oa_frame top = oa_tls.state->frames[0];
	EXIT(kept_outer);
	collect(&s);
	CHECK_EQ_INT(s.n, 3);
	const struct oa_record *inner = find(&s, kept_inner, 0), *outer2 = find(&s, kept_outer, 1);
	CHECK(inner && outer2 && inner->parent_span_id == outer2->span_id &&
	      top.span_id == outer2->span_id);
}

static void case_deeper_than_shadow_stack(void)
{
	for (int i = 0; i < OA_MAX_FRAMES + 10; i++)
		ENTER(kept_inner);
	CHECK_EQ_INT(oa_tls.state->depth, OA_MAX_FRAMES + 10);
	CHECK_EQ_INT(oa_tls.state->frames_overflowed, 10);
	for (int i = 0; i < OA_MAX_FRAMES + 10; i++)
		EXIT(kept_inner);
	CHECK_EQ_INT(oa_tls.state->depth, 0);
}

struct test_case {
	const char *name;
	void (*fn)(void);
	const char *threshold;
	const char *include;
	const char *exclude;
};

static const struct test_case cases[] = {
    {"balanced", case_balanced, "0", NULL, NULL},
    {"unmatched-exit", case_unmatched_exit_ignored, "0", NULL, NULL},
    {"resync", case_resync_after_missing_exits, "0", NULL, NULL},
    {"exclude", case_exclude_glob, "0", NULL, "excluded_*"},
    {"include", case_include_glob, "0", "kept_inner", NULL},
    {"threshold", case_threshold, "5ms", NULL, NULL},
    {"deep", case_deeper_than_shadow_stack, "0", NULL, NULL},
};

/* Runs a case in a new process image (raw execve: the hooks linked into
 * this test must not see it); the child's checks count in its status. */
static void run_case(const char *self, const struct test_case *c)
{
	char threshold[64], include[128], exclude[128];
	snprintf(threshold, sizeof threshold, "OTLPAUTO_FUNCTION_THRESHOLD=%s", c->threshold);
	snprintf(include, sizeof include, "OTLPAUTO_FUNCTION_INCLUDE=%s",
		 c->include ? c->include : "");
	snprintf(exclude, sizeof exclude, "OTLPAUTO_FUNCTION_EXCLUDE=%s",
		 c->exclude ? c->exclude : "");
	char *env[] = {threshold,
		       include,
		       exclude,
		       "OTEL_BSP_SCHEDULE_DELAY=3600000",
		       "OTEL_TRACES_EXPORTER=none",
		       NULL};
	char *argv[] = {(char *)self, (char *)c->name, NULL};
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		syscall(SYS_execve, self, argv, env);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	bool passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!passed)
		fprintf(stderr, "case %s failed (status %d)\n", c->name, status);
	CHECK(passed);
}

int main(int argc, char **argv)
{
	size_t n = sizeof cases / sizeof cases[0];
	if (argc > 1) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(argv[1], cases[i].name) == 0)
				cases[i].fn();
		fflush(NULL);
		/* Skip the exit flush: nothing here is meant to be exported. */
		syscall(SYS_exit_group, check_failed ? 1 : 0);
	}
	for (size_t i = 0; i < n; i++)
		run_case("/proc/self/exe", &cases[i]);
	CHECK_DONE();
}
