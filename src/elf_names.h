/* Function names from a signal handler, where oa_symbols cannot go: libelf
 * allocates, and the loader's list of objects takes its lock, either of which
 * the interrupted code may hold. The mapping that holds an address comes from
 * /proc/self/maps, its file is mapped read-only and its symbol table read in
 * place: system calls only, and the caller's buffers. */
#ifndef OTLPAUTO_ELF_NAMES_H
#define OTLPAUTO_ELF_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A function symbol among others at one address. */
struct oa_elf_alias {
	uint64_t size;
	unsigned char binding; /* STB_* */
	const char *name;
};

/* Whether a names the function before b: sized, global, public looking
 * (malloc over __libc_malloc), then by name, so the choice is stable. */
bool oa_elf_alias_before(const struct oa_elf_alias *a, const struct oa_elf_alias *b);

/* Writes the name of the function that contains addr into out (mangled: the
 * demangler allocates), chosen among aliases and bounded as oa_symbols does;
 * "0x<offset>@<object basename>" in an object without such a function,
 * "0x<addr>" outside every mapped file. Returns its length (truncated to
 * cap - 1, NUL-terminated), 0 when cap is 0 or nothing can be read.
 * `scratch` (at least OA_ELF_NAMES_SCRATCH bytes) holds the lines of the
 * maps file. Async-signal-safe. */
#define OA_ELF_NAMES_SCRATCH 16384
size_t oa_elf_function_name(uintptr_t addr, char *out, size_t cap, char *scratch);

#endif
