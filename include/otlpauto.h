/* otlpauto manual spans.
 *
 * Include this header; no link flag is needed. Under LD_PRELOAD of
 * libotlpauto.so the spans join the automatic ones (function spans, HTTP
 * server spans) in one trace; without it every call is a cheap no-op.
 * Defining OTLPAUTO_DISABLE before the include removes every call at compile
 * time: no symbol of otlpauto's (nor dlsym) is referenced.
 *
 *     otlpauto_span *span = otlpauto_span_start("load config", OTLPAUTO_KIND_INTERNAL);
 *     otlpauto_span_set_str(span, "config.path", path);
 *     if (!ok)
 *             otlpauto_span_set_error(span, "parse error");
 *     otlpauto_span_end(span);
 *
 *     OTLPAUTO_SPAN("flush") {          // ends when the block is left,
 *             write_all();              // also by return, break or goto
 *     }
 *     OTLPAUTO_SPAN_AS(span, "GET /users", OTLPAUTO_KIND_CLIENT) {
 *             otlpauto_span_set_int(span, "http.response.status_code", 200);
 *     }
 *
 * Semantics:
 * - A span started while another span is current on the thread (a manual
 *   span, an instrumented function's frame, an HTTP server span, a
 *   TRACEPARENT the process was started with) is its child; otherwise it is
 *   the root of a new trace, sampled per OTEL_TRACES_SAMPLER. While open, it
 *   is the current span of its thread: spans started inside parent to it.
 * - An unsampled span costs a context push and pop: nothing is recorded,
 *   but its context (sampled flag off) still propagates.
 * - Attribute keys set again replace the value. Limits (OTEL_SPAN_*_LIMIT,
 *   OTEL_ATTRIBUTE_*_LIMIT) apply; what they drop is counted in the span.
 * - End a span once, on any thread, before its starting thread exits. Ended
 *   on another thread, it is sent from there and its starting thread stops
 *   treating it as current at its next otlpauto call. A handle must not be
 *   used after otlpauto_span_end. Calls are not async-signal-safe.
 * - At most 64 spans are open per thread; beyond, and when the runtime is
 *   off, otlpauto_span_start returns a handle on which every call is a no-op.
 * - Spans still open when their thread or the process exits are not sent.
 * - Strings are copied: they need not outlive the call. Span and event
 *   names and error messages are cut at 4096 bytes, attribute keys at 255.
 */
#ifndef OTLPAUTO_H
#define OTLPAUTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct otlpauto_span otlpauto_span;

/* OTLP SpanKind numbers. */
enum otlpauto_span_kind {
	OTLPAUTO_KIND_INTERNAL = 1,
	OTLPAUTO_KIND_SERVER = 2,
	OTLPAUTO_KIND_CLIENT = 3,
	OTLPAUTO_KIND_PRODUCER = 4,
	OTLPAUTO_KIND_CONSUMER = 5,
};

/* Buffer size for otlpauto_current_traceparent: 55 characters and a NUL. */
#define OTLPAUTO_TRACEPARENT_SIZE 56

/* The library's entry points, looked up by name at the first call. A table
 * rather than weak references: an undefined weak symbol in a non-PIE
 * program is bound to 0 at link time and a preloaded library never fills
 * it in. */
struct otlpauto_api_v1 {
	otlpauto_span *(*span_start)(const char *name, int kind);
	void (*span_set_str)(otlpauto_span *span, const char *key, const char *value);
	void (*span_set_int)(otlpauto_span *span, const char *key, int64_t value);
	void (*span_set_double)(otlpauto_span *span, const char *key, double value);
	void (*span_set_bool)(otlpauto_span *span, const char *key, int value);
	void (*span_add_event)(otlpauto_span *span, const char *name);
	void (*span_add_link)(otlpauto_span *span, const char *traceparent);
	void (*span_set_error)(otlpauto_span *span, const char *message);
	void (*span_end)(otlpauto_span *span);
	int (*current_traceparent)(char *buf, size_t len);
};

#define OTLPAUTO__CAT2(a, b) a##b
#define OTLPAUTO__CAT(a, b)  OTLPAUTO__CAT2(a, b)
/* Never instrumented: under -finstrument-functions these wrappers would
 * otherwise become function spans around every call. */
#define OTLPAUTO__INLINE                                                                           \
	static inline __attribute__((always_inline, no_instrument_function, unused))

/* OTLPAUTO_SPAN(name) { ... }: an internal span around the block.
 * OTLPAUTO_SPAN_AS(var, name, kind) { ... }: the same, with the handle
 * named var inside the block. Both end the span however the block is left
 * (but longjmp). A for statement underneath: break leaves the block. */
#define OTLPAUTO_SPAN(name)                                                                        \
	OTLPAUTO_SPAN_AS(OTLPAUTO__CAT(otlpauto__span_, __COUNTER__), (name),                      \
			 OTLPAUTO_KIND_INTERNAL)

#if defined(OTLPAUTO_DISABLE)

#define OTLPAUTO_SPAN_AS(var, name, kind)                                                          \
	for (otlpauto_span * var                                                                   \
		 __attribute__((unused)) = ((void)(name), (void)(kind), (otlpauto_span *)0),       \
		 *OTLPAUTO__CAT(otlpauto__once_, var) = (otlpauto_span *)1;                        \
	     OTLPAUTO__CAT(otlpauto__once_, var); OTLPAUTO__CAT(otlpauto__once_, var) = 0)

OTLPAUTO__INLINE otlpauto_span *otlpauto_span_start(const char *name, int kind)
{
	(void)name;
	(void)kind;
	return 0;
}
OTLPAUTO__INLINE void otlpauto_span_set_str(otlpauto_span *s, const char *k, const char *v)
{
	(void)s, (void)k, (void)v;
}
OTLPAUTO__INLINE void otlpauto_span_set_int(otlpauto_span *s, const char *k, int64_t v)
{
	(void)s, (void)k, (void)v;
}
OTLPAUTO__INLINE void otlpauto_span_set_double(otlpauto_span *s, const char *k, double v)
{
	(void)s, (void)k, (void)v;
}
OTLPAUTO__INLINE void otlpauto_span_set_bool(otlpauto_span *s, const char *k, int v)
{
	(void)s, (void)k, (void)v;
}
OTLPAUTO__INLINE void otlpauto_span_add_event(otlpauto_span *s, const char *name)
{
	(void)s, (void)name;
}
OTLPAUTO__INLINE void otlpauto_span_add_link(otlpauto_span *s, const char *traceparent)
{
	(void)s, (void)traceparent;
}
OTLPAUTO__INLINE void otlpauto_span_set_error(otlpauto_span *s, const char *message)
{
	(void)s, (void)message;
}
OTLPAUTO__INLINE void otlpauto_span_end(otlpauto_span *s)
{
	(void)s;
}
OTLPAUTO__INLINE int otlpauto_current_traceparent(char *buf, size_t len)
{
	if (buf && len)
		buf[0] = 0;
	return 0;
}

#elif !defined(OTLPAUTO_TYPES_ONLY) /* OTLPAUTO_TYPES_ONLY: the library's own build */

#include <dlfcn.h>

#ifdef RTLD_DEFAULT
#define OTLPAUTO__RTLD_DEFAULT RTLD_DEFAULT
#else /* <dlfcn.h> defines it only for _GNU_SOURCE; it is 0 in glibc and musl */
#define OTLPAUTO__RTLD_DEFAULT ((void *)0)
#endif

/* Per translation unit: NULL until looked up, then the table or ABSENT. A
 * handle from another unit is no proof that this one has looked it up. */
static const struct otlpauto_api_v1 *otlpauto__api_table __attribute__((unused));
#define OTLPAUTO__ABSENT ((const struct otlpauto_api_v1 *)&otlpauto__api_table)

static __attribute__((noinline, cold, no_instrument_function, unused))
const struct otlpauto_api_v1 *
otlpauto__resolve(void)
{
	const struct otlpauto_api_v1 *api =
	    (const struct otlpauto_api_v1 *)dlsym(OTLPAUTO__RTLD_DEFAULT, "otlpauto_api_v1");
	__atomic_store_n(&otlpauto__api_table, api ? api : OTLPAUTO__ABSENT, __ATOMIC_RELEASE);
	return api;
}

OTLPAUTO__INLINE const struct otlpauto_api_v1 *otlpauto__api(void)
{
	const struct otlpauto_api_v1 *api = __atomic_load_n(&otlpauto__api_table, __ATOMIC_ACQUIRE);
	if (__builtin_expect(api == 0, 0))
		return otlpauto__resolve();
	return api == OTLPAUTO__ABSENT ? 0 : api;
}

OTLPAUTO__INLINE void otlpauto__span_cleanup(otlpauto_span **span);

#define OTLPAUTO_SPAN_AS(var, name, kind)                                                          \
	for (otlpauto_span * var                                                                   \
		 __attribute__((cleanup(otlpauto__span_cleanup),                                   \
				unused)) = otlpauto_span_start((name), (kind)),                    \
				*OTLPAUTO__CAT(otlpauto__once_, var) = (otlpauto_span *)1;         \
	     OTLPAUTO__CAT(otlpauto__once_, var); OTLPAUTO__CAT(otlpauto__once_, var) = 0)

/* Starts a span; kind is an enum otlpauto_span_kind (others: internal). */
OTLPAUTO__INLINE otlpauto_span *otlpauto_span_start(const char *name, int kind)
{
	const struct otlpauto_api_v1 *api = otlpauto__api();
	return api ? api->span_start(name, kind) : 0;
}

OTLPAUTO__INLINE void otlpauto_span_set_str(otlpauto_span *span, const char *key, const char *value)
{
	const struct otlpauto_api_v1 *api;
	if (span && (api = otlpauto__api()))
		api->span_set_str(span, key, value);
}

OTLPAUTO__INLINE void otlpauto_span_set_int(otlpauto_span *span, const char *key, int64_t value)
{
	const struct otlpauto_api_v1 *api;
	if (span && (api = otlpauto__api()))
		api->span_set_int(span, key, value);
}

OTLPAUTO__INLINE void otlpauto_span_set_double(otlpauto_span *span, const char *key, double value)
{
	const struct otlpauto_api_v1 *api;
	if (span && (api = otlpauto__api()))
		api->span_set_double(span, key, value);
}

OTLPAUTO__INLINE void otlpauto_span_set_bool(otlpauto_span *span, const char *key, int value)
{
	const struct otlpauto_api_v1 *api;
	if (span && (api = otlpauto__api()))
		api->span_set_bool(span, key, value);
}

OTLPAUTO__INLINE void otlpauto_span_add_event(otlpauto_span *span, const char *name)
{
	const struct otlpauto_api_v1 *api;
	if (span && (api = otlpauto__api()))
		api->span_add_event(span, name);
}

/* Links the span to the span a W3C traceparent names (ignored if invalid). */
OTLPAUTO__INLINE void otlpauto_span_add_link(otlpauto_span *span, const char *traceparent)
{
	const struct otlpauto_api_v1 *api;
	if (span && (api = otlpauto__api()))
		api->span_add_link(span, traceparent);
}

/* Status error with this description (NULL: none). */
OTLPAUTO__INLINE void otlpauto_span_set_error(otlpauto_span *span, const char *message)
{
	const struct otlpauto_api_v1 *api;
	if (span && (api = otlpauto__api()))
		api->span_set_error(span, message);
}

OTLPAUTO__INLINE void otlpauto_span_end(otlpauto_span *span)
{
	const struct otlpauto_api_v1 *api;
	if (span && (api = otlpauto__api()))
		api->span_end(span);
}

/* Writes the current span's W3C traceparent and a NUL into buf (len >=
 * OTLPAUTO_TRACEPARENT_SIZE) and returns its length, 55; returns 0 with buf
 * empty when there is no current span or no otlpauto. */
OTLPAUTO__INLINE int otlpauto_current_traceparent(char *buf, size_t len)
{
	const struct otlpauto_api_v1 *api = otlpauto__api();
	if (api)
		return api->current_traceparent(buf, len);
	if (buf && len)
		buf[0] = 0;
	return 0;
}

OTLPAUTO__INLINE void otlpauto__span_cleanup(otlpauto_span **span)
{
	otlpauto_span_end(*span);
}

#endif

#ifdef __cplusplus
}
#endif

#endif
