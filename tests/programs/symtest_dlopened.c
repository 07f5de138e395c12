/* A library dlopen'd by test_symbols after it has created its symbols object. */
#include "symtest.h"

/* noipa: kept out of line under its own name (no clone, no inlining). */
__attribute__((noipa)) static int symtest_dlopened_static(int x)
{
	return x * 7 + 1;
}

__attribute__((noipa)) int symtest_dlopened_global(int x)
{
	return symtest_dlopened_static(x) + 2;
}

symtest_fn symtest_dlopened_static_address(void)
{
	return symtest_dlopened_static;
}
