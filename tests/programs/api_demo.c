/* Manual API scenarios for test_api.py and test_sampling.py; built once as is
 * and once with -DOTLPAUTO_DISABLE. What it prints does not depend on
 * otlpauto being loaded, except for the traceparent lines.
 *
 *   api_demo basic            4 spans: root > child (error), root > scoped > inner
 *   api_demo limits           1 span with 21 attributes, 10 events, 5 links
 *   api_demo many N           1 span with N integer attributes
 *   api_demo traceparent      prints the traceparent inside a span, then outside
 *   api_demo order            out-of-order and cross-thread ends
 *   api_demo adaptive S R     R roots per second for S seconds, each with 2 children
 */
#include <otlpauto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int basic(void)
{
	otlpauto_span *root = otlpauto_span_start("demo.root", OTLPAUTO_KIND_SERVER);
	otlpauto_span_set_str(root, "demo.str", "first");
	otlpauto_span_set_str(root, "demo.str", "hello");
	otlpauto_span_set_int(root, "demo.int", -42);
	otlpauto_span_set_double(root, "demo.double", 2.5);
	otlpauto_span_set_bool(root, "demo.bool", 1);
	otlpauto_span_add_event(root, "demo.event");

	otlpauto_span *child = otlpauto_span_start("demo.child", OTLPAUTO_KIND_CLIENT);
	otlpauto_span_set_error(child, "child failed");
	otlpauto_span_end(child);

	int blocks = 0;
	OTLPAUTO_SPAN("demo.scoped")
	{
		OTLPAUTO_SPAN_AS(inner, "demo.inner", OTLPAUTO_KIND_PRODUCER)
		{
			otlpauto_span_set_int(inner, "demo.n", 7);
			blocks++;
		}
		blocks++;
	}
	otlpauto_span_end(root);
	printf("basic done: %d blocks\n", blocks);
	return 0;
}

static int limits(void)
{
	otlpauto_span *span = otlpauto_span_start("demo.limits", OTLPAUTO_KIND_INTERNAL);
	/* 2-byte, 3-byte and 1-byte characters: a limit of 7 bytes cuts them
	 * to 6, 6 and 7 bytes. */
	otlpauto_span_set_str(span, "utf8.two", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	otlpauto_span_set_str(span, "utf8.three", "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
	otlpauto_span_set_str(span, "ascii", "abcdefghij");
	otlpauto_span_set_int(span, "number", 123456789);
	otlpauto_span_set_str(span, "dup", "old");
	otlpauto_span_set_str(span, "dup", "new");
	char key[16];
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof key, "attr.%02d", i);
		otlpauto_span_set_int(span, key, i);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "event.%d", i);
		otlpauto_span_add_event(span, key);
	}
	for (int i = 1; i <= 5; i++) {
		char traceparent[64];
		snprintf(traceparent, sizeof traceparent,
			 "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b%d-01", i);
		otlpauto_span_add_link(span, traceparent);
	}
	otlpauto_span_add_link(span, "not a traceparent");
	otlpauto_span_end(span);
	printf("limits done\n");
	return 0;
}

static int many(int n)
{
	otlpauto_span *span = otlpauto_span_start("demo.many", OTLPAUTO_KIND_INTERNAL);
	char key[32];
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "attr.%04d", i);
		otlpauto_span_set_int(span, key, i);
	}
	otlpauto_span_end(span);
	printf("many done: %d\n", n);
	return 0;
}

static int traceparent(void)
{
	char buf[OTLPAUTO_TRACEPARENT_SIZE];
	otlpauto_span *span = otlpauto_span_start("demo.propagating", OTLPAUTO_KIND_CLIENT);
	int n = otlpauto_current_traceparent(buf, sizeof buf);
	printf("inside %d %s\n", n, n ? buf : "-");
	otlpauto_span_end(span);
	n = otlpauto_current_traceparent(buf, sizeof buf);
	printf("outside %d %s\n", n, n ? buf : "-");
	return 0;
}

static void *end_elsewhere(void *span)
{
	otlpauto_span_end(span);
	return NULL;
}

static int order(void)
{
	/* Ended out of order: c still parents on b, the open one. */
	otlpauto_span *a = otlpauto_span_start("order.a", OTLPAUTO_KIND_INTERNAL);
	otlpauto_span *b = otlpauto_span_start("order.b", OTLPAUTO_KIND_INTERNAL);
	otlpauto_span_end(a);
	otlpauto_span *c = otlpauto_span_start("order.c", OTLPAUTO_KIND_INTERNAL);
	otlpauto_span_end(c);
	otlpauto_span_end(b);
	otlpauto_span_end(b); /* twice: ignored */
	/* a and b are both gone: d is a new root. */
	otlpauto_span *d = otlpauto_span_start("order.d", OTLPAUTO_KIND_INTERNAL);
	otlpauto_span_end(d);

	/* Ended on another thread: sent from there; here it stops being the
	 * parent at the next call. */
	otlpauto_span *cross = otlpauto_span_start("order.cross", OTLPAUTO_KIND_INTERNAL);
	pthread_t thread;
	if (pthread_create(&thread, NULL, end_elsewhere, cross) != 0)
		return 1;
	pthread_join(thread, NULL);
	otlpauto_span *after = otlpauto_span_start("order.after", OTLPAUTO_KIND_INTERNAL);
	otlpauto_span_end(after);
	printf("order done\n");
	return 0;
}

static void sleep_until(const struct timespec *when)
{
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, when, NULL) != 0)
		;
}

static int adaptive(double seconds, double per_second)
{
	long roots = (long)(seconds * per_second);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	long step_ns = (long)(1e9 / per_second);
	for (long i = 0; i < roots; i++) {
		otlpauto_span *root = otlpauto_span_start("adaptive.root", OTLPAUTO_KIND_SERVER);
		for (int c = 0; c < 2; c++)
			OTLPAUTO_SPAN("adaptive.child")
			{
			}
		otlpauto_span_end(root);
		next.tv_nsec += step_ns;
		while (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		sleep_until(&next);
	}
	printf("adaptive done: %ld roots\n", roots);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "basic";
	if (strcmp(mode, "basic") == 0)
		return basic();
	if (strcmp(mode, "limits") == 0)
		return limits();
	if (strcmp(mode, "many") == 0 && argc > 2)
		return many(atoi(argv[2]));
	if (strcmp(mode, "traceparent") == 0)
		return traceparent();
	if (strcmp(mode, "order") == 0)
		return order();
	if (strcmp(mode, "adaptive") == 0 && argc > 3)
		return adaptive(atof(argv[2]), atof(argv[3]));
	fprintf(stderr, "usage: api_demo basic|limits|many N|traceparent|order|adaptive S R\n");
	return 2;
}
