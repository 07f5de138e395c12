/* The next definition of an interposed function, found lazily: hooks can run
 * before our constructor (other libraries' constructors call them), so no
 * hook may rely on initialisation having happened. When there is none (a C
 * library without the function, which a program may still reach through our
 * definition), the hook gets a stand-in that fails with ENOSYS the way the
 * function reports errors (`missing` is its return value) instead of a call
 * through NULL. */
#ifndef OTLPAUTO_REAL_H
#define OTLPAUTO_REAL_H

#include <dlfcn.h>
#include <errno.h>

#define OA_REAL_RESOLVER(ret, name, params)                                                        \
	static ret(*real_##name) params;                                                           \
	static inline __attribute__((always_inline)) ret(*oa_real_##name(void)) params             \
	{                                                                                          \
		ret(*fn) params = __atomic_load_n(&real_##name, __ATOMIC_RELAXED);                 \
		if (__builtin_expect(fn == NULL, 0)) {                                             \
			fn = (ret(*) params)dlsym(RTLD_NEXT, #name);                               \
			if (!fn)                                                                   \
				fn = oa_missing_##name;                                            \
			__atomic_store_n(&real_##name, fn, __ATOMIC_RELAXED);                      \
		}                                                                                  \
		return fn;                                                                         \
	}

/* params name their parameters (the stand-in's go unused). */
#define OA_REAL(ret, name, params, missing)                                                        \
	__attribute__((unused)) static ret oa_missing_##name params                                \
	{                                                                                          \
		errno = ENOSYS;                                                                    \
		return missing;                                                                    \
	}                                                                                          \
	OA_REAL_RESOLVER(ret, name, params)

/* A function without a result: the stand-in runs `fallback`. */
#define OA_REAL_VOID(name, params, fallback)                                                       \
	__attribute__((unused)) static void oa_missing_##name params                               \
	{                                                                                          \
		fallback;                                                                          \
	}                                                                                          \
	OA_REAL_RESOLVER(void, name, params)

#endif
