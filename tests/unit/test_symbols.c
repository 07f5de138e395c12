/* oa_symbols against real objects: this PIE executable (static and global
 * functions, a C++-mangled one), a linked library, a library dlopen'd after
 * the symbols object exists, and a stripped one.
 * argv[1]: libsymtest_dlopened.so, argv[2]: libsymtest_stripped.so. */
#include "check.h"
#include "elf_names.h"
#include "symbols.h"
#include "symtest.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdbool.h>
#include <stdlib.h>

__attribute__((noipa)) static int main_static(int x)
{
	return x * 5 + 3;
}

__attribute__((noipa)) int symtest_main_global(int x);
__attribute__((noipa)) int symtest_main_global(int x)
{
	return main_static(x) - 1;
}

/* What g++ emits for int foo::bar(int). */
int cxx_function(int x) __asm__("_ZN3foo3barEi");
__attribute__((noipa)) int cxx_function(int x)
{
	return x + 11;
}

/* No .size: it runs until the next symbol. */
void symtest_sizeless(void);
__asm__(".text\n"
	".globl symtest_sizeless\n"
	".type symtest_sizeless, %function\n"
	"symtest_sizeless:\n"
	"ret\n"
	"nop\n"
	"nop\n"
	"nop\n");

static bool executable_is_pie(void)
{
	FILE *f = fopen("/proc/self/exe", "rb");
	ElfW(Ehdr) header;
	bool read = f && fread(&header, sizeof(header), 1, f) == 1;
	if (f)
		fclose(f);
	return read && header.e_type == ET_DYN;
}

static const char *name_of(struct oa_symbols *syms, uintptr_t addr)
{
	size_t len = 0;
	const char *name = oa_symbols_name(syms, addr, &len);
	CHECK_EQ_INT(len, strlen(name));
	return name;
}

static uintptr_t load_bias(void *handle)
{
	struct link_map *map = NULL;
	return dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 ? map->l_addr : 0;
}

struct wanted {
	uintptr_t addr;
	const char *name;
	int seen;
};

/* elf_names (the signal handler's reader) against libelf's answers, for
 * every function of this program and the test libraries: at the start, one
 * byte in, and the mangled name where libelf's is demangled. */
struct cross_check {
	char scratch[OA_ELF_NAMES_SCRATCH];
	size_t compared;
};

static void compare_readers(uintptr_t addr, const char *name, void *ctx)
{
	struct cross_check *cc = ctx;
	Dl_info info;
	if (!dladdr((void *)addr, &info) || !info.dli_fname ||
	    !(strstr(info.dli_fname, "symtest") || strstr(info.dli_fname, "test_symbols")))
		return;
	char raw[1024];
	for (uintptr_t at = addr; at <= addr + 1; at++) {
		size_t len = oa_elf_function_name(at, raw, sizeof raw, cc->scratch);
		CHECK_EQ_INT(len, strlen(raw));
		if (strcmp(name, "foo::bar(int)") == 0)
			CHECK_EQ_STR(raw, "_ZN3foo3barEi");
		else
			CHECK_EQ_STR(raw, name);
	}
	cc->compared++;
}

static void count_wanted(uintptr_t addr, const char *name, void *ctx)
{
	for (struct wanted *w = ctx; w->name; w++)
		if (w->addr == addr && strcmp(w->name, name) == 0)
			w->seen++;
}

int main(int argc, char **argv)
{
	CHECK_EQ_INT(argc, 3);
	if (argc != 3)
		CHECK_DONE();
	CHECK(executable_is_pie());
	bool demangler_at_start = dlsym(RTLD_DEFAULT, "__cxa_demangle") != NULL;

	struct oa_symbols *syms = oa_symbols_create();
	CHECK(syms != NULL);

	/* The executable: global and static functions, and addresses inside. */
	uintptr_t main_global = (uintptr_t)symtest_main_global;
	CHECK_EQ_STR(name_of(syms, main_global), "symtest_main_global");
	CHECK_EQ_STR(name_of(syms, main_global + 1), "symtest_main_global");
	CHECK_EQ_STR(name_of(syms, (uintptr_t)main_static), "main_static");
	CHECK_EQ_STR(name_of(syms, (uintptr_t)main_static + 2), "main_static");
	CHECK_EQ_STR(name_of(syms, (uintptr_t)main), "main");
	CHECK_EQ_STR(name_of(syms, (uintptr_t)symtest_sizeless + 2), "symtest_sizeless");

	/* A cached answer is the same string. */
	size_t len = 0;
	const char *first = oa_symbols_name(syms, main_global, NULL);
	CHECK(oa_symbols_name(syms, main_global, &len) == first);
	CHECK_EQ_INT(len, strlen("symtest_main_global"));

	/* The linked library. */
	CHECK_EQ_STR(name_of(syms, (uintptr_t)symtest_linked_global), "symtest_linked_global");
	CHECK_EQ_STR(name_of(syms, (uintptr_t)symtest_linked_static_address()),
		     "symtest_linked_static");
	CHECK_EQ_STR(name_of(syms, (uintptr_t)symtest_linked_static_address() + 3),
		     "symtest_linked_static");

	/* Without libstdc++ a mangled name stays as it is; after it is loaded a
	 * refresh drops the cached answer and the name comes out demangled. */
	uintptr_t cxx = (uintptr_t)cxx_function;
	if (!demangler_at_start)
		CHECK_EQ_STR(name_of(syms, cxx), "_ZN3foo3barEi");
	void *libstdcxx = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL);
	CHECK(libstdcxx != NULL);
	oa_symbols_refresh(syms);
	CHECK_EQ_STR(name_of(syms, cxx), "foo::bar(int)");
	CHECK_EQ_STR(name_of(syms, cxx + 1), "foo::bar(int)");

	/* Outside every object: the bare address; asked again, the cached
	 * string (no second rescan). */
	char *heap = malloc(64);
	char expected[128];
	snprintf(expected, sizeof(expected), "0x%" PRIxPTR, (uintptr_t)heap);
	const char *outside = name_of(syms, (uintptr_t)heap);
	CHECK_EQ_STR(outside, expected);
	CHECK(oa_symbols_name(syms, (uintptr_t)heap, NULL) == outside);
	CHECK_EQ_STR(name_of(syms, 0), "0x0");

	/* dlopen'd after create: the first miss rescans and finds it. */
	void *dlopened = dlopen(argv[1], RTLD_NOW);
	CHECK(dlopened != NULL);
	uintptr_t dlopened_global = (uintptr_t)dlsym(dlopened, "symtest_dlopened_global");
	symtest_fn (*dlopened_static_address)(void) =
	    (symtest_fn(*)(void))dlsym(dlopened, "symtest_dlopened_static_address");
	CHECK(dlopened_global != 0 && dlopened_static_address != NULL);
	uintptr_t dlopened_static = (uintptr_t)dlopened_static_address();
	CHECK_EQ_STR(name_of(syms, dlopened_global), "symtest_dlopened_global");
	CHECK_EQ_STR(name_of(syms, dlopened_static), "symtest_dlopened_static");

	/* Stripped: exports keep their .dynsym names, a static function gets its
	 * offset from the load base. */
	void *stripped = dlopen(argv[2], RTLD_NOW);
	CHECK(stripped != NULL);
	uintptr_t stripped_global = (uintptr_t)dlsym(stripped, "symtest_stripped_global");
	symtest_fn (*stripped_static_address)(void) =
	    (symtest_fn(*)(void))dlsym(stripped, "symtest_stripped_static_address");
	CHECK(stripped_global != 0 && stripped_static_address != NULL);
	CHECK_EQ_STR(name_of(syms, stripped_global), "symtest_stripped_global");
	uintptr_t stripped_static = (uintptr_t)stripped_static_address();
	snprintf(expected, sizeof(expected), "0x%" PRIxPTR "@libsymtest_stripped.so",
		 stripped_static - load_bias(stripped));
	CHECK_EQ_STR(name_of(syms, stripped_static), expected);

	/* Every function once, demangled, with its address. */
	struct wanted wanted[] = {
	    {main_global, "symtest_main_global", 0},
	    {(uintptr_t)main_static, "main_static", 0},
	    {cxx, "foo::bar(int)", 0},
	    {(uintptr_t)symtest_linked_global, "symtest_linked_global", 0},
	    {dlopened_static, "symtest_dlopened_static", 0},
	    {stripped_global, "symtest_stripped_global", 0},
	    {0, NULL, 0},
	};
	oa_symbols_foreach_function(syms, count_wanted, wanted);
	for (struct wanted *w = wanted; w->name; w++)
		CHECK_EQ_INT(w->seen, 1);

	struct cross_check *cc = calloc(1, sizeof *cc);
	oa_symbols_foreach_function(syms, compare_readers, cc);
	CHECK(cc->compared >= 8);
	char raw[128];
	oa_elf_function_name(stripped_static, raw, sizeof raw, cc->scratch);
	CHECK_EQ_STR(raw, expected);
	oa_elf_function_name((uintptr_t)heap, raw, sizeof raw, cc->scratch);
	snprintf(expected, sizeof(expected), "0x%" PRIxPTR, (uintptr_t)heap);
	CHECK_EQ_STR(raw, expected);
	CHECK_EQ_STR(
	    (oa_elf_function_name((uintptr_t)symtest_sizeless + 3, raw, sizeof raw, cc->scratch),
	     raw),
	    "symtest_sizeless");
	CHECK_EQ_INT(oa_elf_function_name(main_global, raw, 8, cc->scratch), 7);
	CHECK_EQ_STR(raw, "symtest");
	free(cc);

	/* After dlclose, addresses recorded before it keep their names, and the
	 * library is no longer listed. */
	CHECK_EQ_INT(dlclose(dlopened), 0);
	oa_symbols_refresh(syms);
	CHECK_EQ_STR(name_of(syms, dlopened_global), "symtest_dlopened_global");
	wanted[0] = (struct wanted){dlopened_global, "symtest_dlopened_global", 0};
	wanted[1] = (struct wanted){0, NULL, 0};
	oa_symbols_foreach_function(syms, count_wanted, wanted);
	CHECK_EQ_INT(wanted[0].seen, 0);

	free(heap);
	dlclose(stripped);
	dlclose(libstdcxx);
	oa_symbols_destroy(syms);
	CHECK_DONE();
}
