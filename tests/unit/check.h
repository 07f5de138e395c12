/* A minimal test harness: CHECK records a failure and carries on, so one run
 * reports every broken expectation; CHECK_DONE prints the closing line. */
#ifndef OTLPAUTO_CHECK_H
#define OTLPAUTO_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;
/* Atomic: tests also check from the threads they start. */
#define CHECK_COUNT(counter) __atomic_fetch_add(&(counter), 1, __ATOMIC_RELAXED)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			CHECK_COUNT(check_passed);                                                 \
		} else {                                                                           \
			CHECK_COUNT(check_failed);                                                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long check_a = (long long)(a), check_b = (long long)(b);                      \
		if (check_a == check_b) {                                                          \
			CHECK_COUNT(check_passed);                                                 \
		} else {                                                                           \
			CHECK_COUNT(check_failed);                                                 \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,        \
				__LINE__, #a, #b, check_a, check_b);                               \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
	do {                                                                                       \
		const char *check_a = (a), *check_b = (b);                                         \
		if (check_a && check_b && strcmp(check_a, check_b) == 0) {                         \
			CHECK_COUNT(check_passed);                                                 \
		} else {                                                                           \
			CHECK_COUNT(check_failed);                                                 \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,    \
				__LINE__, #a, #b, check_a ? check_a : "(null)",                    \
				check_b ? check_b : "(null)");                                     \
		}                                                                                  \
	} while (0)

#define CHECK_DONE()                                                                               \
	do {                                                                                       \
		printf("%d passed, %d failed\n", check_passed, check_failed);                      \
		return check_failed ? 1 : 0;                                                       \
	} while (0)

#endif
