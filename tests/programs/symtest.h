/* Functions of the libraries the symbols unit test looks up. */
#ifndef OTLPAUTO_SYMTEST_H
#define OTLPAUTO_SYMTEST_H

typedef int (*symtest_fn)(int);

/* libsymtest_linked.so: linked into test_symbols. */
int symtest_linked_global(int x);
symtest_fn symtest_linked_static_address(void);

/* libsymtest_dlopened.so: dlopen'd after the symbols object exists. */
int symtest_dlopened_global(int x);
symtest_fn symtest_dlopened_static_address(void);

/* libsymtest_stripped.so: --strip-all, so only .dynsym names its exports. */
int symtest_stripped_global(int x);
symtest_fn symtest_stripped_static_address(void);

#endif
