#include "dynlib.h"

#include <dlfcn.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum { UNTRIED, READY, MISSING };

#define LOAD_WAIT_MS 5000

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

/* No lock is held across the load: a child forked while a thread of its
 * parent loads (the exporter, past the fork's bounded wait) would inherit
 * it held by a thread it does not have. The loader's process id marks a
 * load in progress instead; such a child sees its parent's and loads the
 * library itself. */
bool oa_dynlib_load(struct oa_dynlib *lib)
{
	for (int waited_ms = 0;; waited_ms++) {
		int state = __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE);
		if (state != UNTRIED)
			return state == READY;
		pid_t self = getpid();
		pid_t loader = __atomic_load_n(&lib->loader, __ATOMIC_ACQUIRE);
		if (loader == self) { /* another thread of ours is loading it */
			if (waited_ms == LOAD_WAIT_MS)
				return false;
			struct timespec ms = {0, 1000000};
			nanosleep(&ms, NULL);
			continue;
		}
		if (__atomic_compare_exchange_n(&lib->loader, &loader, self, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			state = open_and_resolve(lib) ? READY : MISSING;
			__atomic_store_n(&lib->state, state, __ATOMIC_RELEASE);
			__atomic_store_n(&lib->loader, 0, __ATOMIC_RELEASE);
			return state == READY;
		}
	}
}
