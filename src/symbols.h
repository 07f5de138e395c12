/* Function names for addresses, from the ELF symbol tables of every loaded
 * object (exporter side only: allocates, through mem.h, and reads files). */
#ifndef OTLPAUTO_SYMBOLS_H
#define OTLPAUTO_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

struct oa_symbols;

/* Lists the loaded objects; an object's symbol table is read (and libelf
 * opened) when a name in it is first asked for. */
struct oa_symbols *oa_symbols_create(void);
void oa_symbols_destroy(struct oa_symbols *syms);
/* The name of the function that contains addr, C++ demangled; when none is
 * known, "0x<offset>@<object basename>" (or "0x<addr>" outside any object).
 * From a signal handler's export (mem.h), an address not looked up before
 * is named by elf_names.h (libelf allocates): not demangled; NULL when even
 * that fails.
 * The string stays valid until oa_symbols_destroy. Results are cached per
 * address; a miss on an address outside every known object rescans the
 * loaded objects once (it may have been dlopen'd since). */
const char *oa_symbols_name(struct oa_symbols *syms, uintptr_t addr, size_t *len);
/* Rescans the loaded objects (after dlopen/dlclose). */
void oa_symbols_refresh(struct oa_symbols *syms);
/* Calls fn for every function symbol of every loaded object, with its runtime
 * address and (demangled) name. */
void oa_symbols_foreach_function(struct oa_symbols *syms,
				 void (*fn)(uintptr_t addr, const char *name, void *ctx),
				 void *ctx);

#endif
