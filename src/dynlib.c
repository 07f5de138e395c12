#include "dynlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "log.h"

enum { UNTRIED, READY, MISSING };

/* Loads are rare (once per library) and short: one lock for all of them. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static bool open_and_resolve(const struct oa_dynlib *lib)
{
	void *handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		oa_warn("cannot load %s (%s); %s", lib->soname, dlerror(), lib->without);
		return false;
	}
	for (size_t i = 0; i < lib->n_symbols; i++) {
		void *fn = dlsym(handle, lib->symbols[i].name);
		if (!fn) {
			oa_warn("%s has no %s; %s", lib->soname, lib->symbols[i].name,
				lib->without);
			dlclose(handle);
			return false;
		}
		/* memcpy: the slot is a function pointer, not a void *. */
		memcpy(lib->symbols[i].slot, &fn, sizeof fn);
	}
	return true;
}

bool oa_dynlib_load(struct oa_dynlib *lib)
{
	int state = __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE);
	if (state != UNTRIED)
		return state == READY;
	pthread_mutex_lock(&load_lock);
	state = __atomic_load_n(&lib->state, __ATOMIC_RELAXED);
	if (state == UNTRIED) {
		state = open_and_resolve(lib) ? READY : MISSING;
		__atomic_store_n(&lib->state, state, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&load_lock);
	return state == READY;
}
