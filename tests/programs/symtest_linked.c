/* A library linked into test_symbols. */
#include "symtest.h"

/* noipa: kept out of line under its own name (no clone, no inlining). */
__attribute__((noipa)) static int symtest_linked_static(int x)
{
	return x * 7 + 1;
}

__attribute__((noipa)) int symtest_linked_global(int x)
{
	return symtest_linked_static(x) + 2;
}

symtest_fn symtest_linked_static_address(void)
{
	return symtest_linked_static;
}
