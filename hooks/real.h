/* The next definition of an interposed function, found lazily: hooks can run
 * before our constructor (other libraries' constructors call them), so no
 * hook may rely on initialisation having happened. */
#ifndef OTLPAUTO_REAL_H
#define OTLPAUTO_REAL_H

#include <dlfcn.h>

#define OA_REAL(ret, name, params)                                                                 \
	static ret(*real_##name) params;                                                           \
	static inline __attribute__((always_inline)) ret(*oa_real_##name(void)) params             \
	{                                                                                          \
		ret(*fn) params = __atomic_load_n(&real_##name, __ATOMIC_RELAXED);                 \
		if (__builtin_expect(fn == NULL, 0)) {                                             \
			fn = (ret(*) params)dlsym(RTLD_NEXT, #name);                               \
			__atomic_store_n(&real_##name, fn, __ATOMIC_RELAXED);                      \
		}                                                                                  \
		return fn;                                                                         \
	}

#endif
