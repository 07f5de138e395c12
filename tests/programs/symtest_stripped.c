/* A library stripped (objcopy --strip-all) and dlopen'd by test_symbols: the static
 * function is then in no symbol table. */
#include "symtest.h"

/* noipa: kept out of line under its own name (no clone, no inlining). */
__attribute__((noipa)) static int symtest_stripped_static(int x)
{
	return x * 7 + 1;
}

__attribute__((noipa)) int symtest_stripped_global(int x)
{
	return symtest_stripped_static(x) + 2;
}

symtest_fn symtest_stripped_static_address(void)
{
	return symtest_stripped_static;
}
