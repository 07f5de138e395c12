/* Libraries opened when first needed instead of linked: a traced process
 * pays for a library (the loader's relocations and symbol lookups, its
 * mappings and page faults) only when it uses the feature. A user keeps a
 * table of typed function pointers named after the functions, filled here
 * by name:
 *
 *   #define ZLIB_FUNCTIONS(X) X(deflate) X(deflateEnd)
 *   static struct { ZLIB_FUNCTIONS(OA_DYNLIB_POINTER) } zlib;
 *   #define ZLIB_SYMBOL(name) OA_DYNLIB_SYMBOL(zlib, name)
 *   static const struct oa_dynlib_symbol zlib_symbols[] = {ZLIB_FUNCTIONS(ZLIB_SYMBOL)};
 *   static struct oa_dynlib libz = OA_DYNLIB("libz.so.1", zlib_symbols, "...");
 *
 * A library or function that is missing gives one warning and the feature
 * stays off. Libraries are never closed. */
#ifndef OTLPAUTO_DYNLIB_H
#define OTLPAUTO_DYNLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct oa_dynlib_symbol {
	const char *name;
	void *slot; /* the table member: a function pointer */
};

struct oa_dynlib {
	const char *soname;
	const struct oa_dynlib_symbol *symbols;
	size_t n_symbols;
	const char *without; /* what stays off without it, for the warning */
	int state;	     /* untried, ready or missing */
	pid_t loader;	     /* the process whose thread is loading it, else 0 */
};

/* A table member with the type of the function the header declares (only
 * its type: the function itself is not referenced). */
#define OA_DYNLIB_POINTER(name)	      __typeof__(name) *name;
#define OA_DYNLIB_SYMBOL(table, name) {#name, &(table).name},
#define OA_DYNLIB(soname, symbols, without)                                                        \
	{                                                                                          \
		(soname), (symbols), sizeof(symbols) / sizeof((symbols)[0]), (without), 0, 0       \
	}

/* Opens the library and fills every slot, the first time; true when all are
 * there. Thread-safe and fork-safe (a child forked during a load loads
 * again); the table may be used once this returned true. */
bool oa_dynlib_load(struct oa_dynlib *lib);

#endif
