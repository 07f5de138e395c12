/* Function names for addresses: the ELF symbol tables of loaded objects,
 * read with libelf when an address in the object is first looked up, and a
 * per-address cache of the answers.
 *
 * Every string handed out lives in an append-only arena freed only by
 * oa_symbols_destroy, so names stay valid across refreshes. Objects that were
 * unloaded are kept (not mapped) so addresses recorded before a dlclose still
 * get their names; an object loaded again from the same file at the same base
 * is reused rather than read again. */
#include "symbols.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dynlib.h"
#include "elf_names.h"
#include "fdguard.h"
#include "mem.h"

/* libelf is opened at the first symbol table read, not linked. */
#define LIBELF_FUNCTIONS(X)                                                                        \
	X(elf_version)                                                                             \
	X(elf_begin)                                                                               \
	X(elf_end)                                                                                 \
	X(elf_kind) X(elf_nextscn) X(elf_getdata) X(elf_strptr) X(gelf_getshdr) X(gelf_getsym)
static struct {
	LIBELF_FUNCTIONS(OA_DYNLIB_POINTER)
} libelf;
#define LIBELF_SYMBOL(name) OA_DYNLIB_SYMBOL(libelf, name)
static const struct oa_dynlib_symbol libelf_symbols[] = {LIBELF_FUNCTIONS(LIBELF_SYMBOL)};
static struct oa_dynlib libelf_lib =
    OA_DYNLIB("libelf.so.1", libelf_symbols, "function names are shown as addresses");

typedef char *(*demangle_fn)(const char *mangled, char *buf, size_t *len, int *status);

struct string_chunk {
	struct string_chunk *next;
	size_t used, cap;
	char data[];
};

struct function {
	uintptr_t start, end;
	const char *name;    /* as in the symbol table */
	const char *display; /* demangled name (or name); NULL until computed */
};

struct range {
	uintptr_t start, end;
};

struct object {
	const char *path; /* the file read: the link map's name, or /proc/self/exe */
	const char *basename;
	uintptr_t base; /* load bias: runtime address minus ELF virtual address */
	dev_t dev;
	ino_t ino;
	struct range *exec; /* executable PT_LOAD segments at run time */
	size_t exec_count;
	struct function *functions; /* sorted by start, one per address */
	size_t function_count;
	bool functions_read; /* functions is read when first needed */
	bool mapped;
	bool seen; /* scratch for oa_symbols_refresh */
};

struct cache_entry {
	uintptr_t addr; /* 0: empty slot */
	const char *name;
	size_t len;
};

struct oa_symbols {
	struct object *objects;
	size_t object_count, object_cap;
	struct cache_entry *cache; /* open addressing, linear probing */
	size_t cache_mask, cache_used;
	struct string_chunk *strings;
	/* dlpi_adds + dlpi_subs when the objects were last scanned: both counters
	 * only grow, so the sum changes exactly when the loader's set does. */
	unsigned long long scan_generation;
	demangle_fn demangle;
	bool demangle_searched;
	unsigned long long demangle_generation;
	char *signal_scratch; /* for signal_safe_name */
};

#define CACHE_INITIAL_SLOTS 16 /* doubles as names are asked for */
#define STRING_CHUNK_SIZE   (64 * 1024)

static char *alloc_string(struct oa_symbols *syms, size_t size)
{
	struct string_chunk *chunk = syms->strings;
	if (!chunk || chunk->cap - chunk->used < size) {
		size_t cap = size > STRING_CHUNK_SIZE ? size : STRING_CHUNK_SIZE;
		chunk = oa_malloc(sizeof(*chunk) + cap);
		if (!chunk)
			return NULL;
		chunk->used = 0;
		chunk->cap = cap;
		chunk->next = syms->strings;
		syms->strings = chunk;
	}
	char *s = chunk->data + chunk->used;
	chunk->used += size;
	return s;
}

static const char *store_string(struct oa_symbols *syms, const char *s, size_t len)
{
	char *copy = alloc_string(syms, len + 1);
	if (!copy)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

static const char *format_string(struct oa_symbols *syms, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *format_string(struct oa_symbols *syms, size_t *len, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	int needed = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	if (needed < 0)
		return NULL;
	char *s = alloc_string(syms, (size_t)needed + 1);
	if (!s)
		return NULL;
	va_start(args, fmt);
	vsnprintf(s, (size_t)needed + 1, fmt, args);
	va_end(args);
	*len = (size_t)needed;
	return s;
}

static int read_generation(struct dl_phdr_info *info, size_t size, void *data)
{
	*(unsigned long long *)data = info->dlpi_adds + info->dlpi_subs;
	return 1; /* every entry carries the same counters */
}

/* One walk of the link map under the loader's lock, stopped at the first
 * entry: about 10 ns, against a full scan's file reads. */
static unsigned long long loader_generation(void)
{
	unsigned long long generation = 0;
	dl_iterate_phdr(read_generation, &generation);
	return generation;
}

/* __cxa_demangle is in libstdc++, which is loaded in every C++ program; a C
 * program has none and its names stay as they are. Looked up again only when
 * the set of loaded objects has changed. */
static demangle_fn find_demangler(struct oa_symbols *syms)
{
	if (syms->demangle)
		return syms->demangle;
	unsigned long long generation = loader_generation();
	if (syms->demangle_searched && generation == syms->demangle_generation)
		return NULL;
	syms->demangle = (demangle_fn)dlsym(RTLD_DEFAULT, "__cxa_demangle");
	syms->demangle_searched = true;
	syms->demangle_generation = generation;
	return syms->demangle;
}

static const char *display_name(struct oa_symbols *syms, struct function *fn)
{
	if (fn->display)
		return fn->display;
	if (strncmp(fn->name, "_Z", 2) != 0)
		return fn->display = fn->name;
	demangle_fn demangle = find_demangler(syms);
	if (!demangle)
		return fn->name; /* not remembered: libstdc++ may be loaded later */
	int status = 0;
	char *demangled = demangle(fn->name, NULL, NULL, &status);
	if (status == 0 && demangled)
		fn->display = store_string(syms, demangled, strlen(demangled));
	else if (status == -2) /* not a valid mangled name: keep it as it is */
		fn->display = fn->name;
	free(demangled); /* the C library's: __cxa_demangle allocated it */
	return fn->display ? fn->display : fn->name;
}

/* Objects as the loader lists them, copied out so that files are read after
 * the loader's lock is released. */
struct loaded_object {
	char *path;
	bool main_program;
	uintptr_t base;
	struct range *exec;
	size_t exec_count;
};

struct scan {
	struct loaded_object *objects;
	size_t count, cap;
	unsigned long long generation;
	bool generation_read;
	bool main_seen;
	bool out_of_memory;
};

static int collect_object(struct dl_phdr_info *info, size_t size, void *data)
{
	struct scan *scan = data;
	if (!scan->generation_read) {
		scan->generation = info->dlpi_adds + info->dlpi_subs;
		scan->generation_read = true;
	}
	const char *name = info->dlpi_name;
	/* The executable comes first, with an empty name. */
	bool main_program = !name || !*name;
	if (main_program) {
		if (scan->main_seen)
			return 0;
		scan->main_seen = true;
		name = "/proc/self/exe";
	} else if (strncmp(name, "linux-vdso", 10) == 0 || strncmp(name, "linux-gate", 10) == 0) {
		return 0; /* no file behind it */
	}

	size_t exec_count = 0;
	for (size_t i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD && (info->dlpi_phdr[i].p_flags & PF_X))
			exec_count++;
	if (exec_count == 0)
		return 0;

	if (scan->count == scan->cap) {
		size_t cap = scan->cap ? scan->cap * 2 : 32;
		struct loaded_object *objects = oa_realloc(scan->objects, cap * sizeof(*objects));
		if (!objects)
			goto out_of_memory;
		scan->objects = objects;
		scan->cap = cap;
	}
	struct loaded_object *obj = &scan->objects[scan->count];
	obj->path = oa_strdup(name);
	obj->exec = oa_malloc(exec_count * sizeof(*obj->exec));
	if (!obj->path || !obj->exec) {
		oa_free(obj->path);
		oa_free(obj->exec);
		goto out_of_memory;
	}
	obj->main_program = main_program;
	obj->base = info->dlpi_addr;
	obj->exec_count = 0;
	for (size_t i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			uintptr_t start = info->dlpi_addr + ph->p_vaddr;
			obj->exec[obj->exec_count++] = (struct range){start, start + ph->p_memsz};
		}
	}
	scan->count++;
	return 0;

out_of_memory:
	scan->out_of_memory = true;
	return 1;
}

static void free_scan(struct scan *scan)
{
	for (size_t i = 0; i < scan->count; i++) {
		oa_free(scan->objects[i].path);
		oa_free(scan->objects[i].exec);
	}
	oa_free(scan->objects);
}

/* Symbols from one table, before duplicates at one address are merged. */
struct candidate {
	uintptr_t start;
	uint64_t size;
	const char *name; /* in libelf's copy of the string table */
	unsigned char binding;
};

/* By address; among aliases, oa_elf_alias_before's order. */
static int compare_candidates(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	struct oa_elf_alias ax = {x->size, x->binding, x->name},
			    ay = {y->size, y->binding, y->name};
	return oa_elf_alias_before(&ax, &ay) ? -1 : oa_elf_alias_before(&ay, &ax) ? 1 : 0;
}

/* .symtab has the static functions too; a stripped file keeps only .dynsym. */
static Elf_Scn *function_table(Elf *elf, GElf_Shdr *shdr)
{
	Elf_Scn *dynsym = NULL;
	GElf_Shdr dynsym_shdr;
	for (Elf_Scn *scn = libelf.elf_nextscn(elf, NULL); scn;
	     scn = libelf.elf_nextscn(elf, scn)) {
		GElf_Shdr header;
		if (!libelf.gelf_getshdr(scn, &header))
			continue;
		if (header.sh_type == SHT_SYMTAB) {
			*shdr = header;
			return scn;
		}
		if (header.sh_type == SHT_DYNSYM) {
			dynsym = scn;
			dynsym_shdr = header;
		}
	}
	if (dynsym)
		*shdr = dynsym_shdr;
	return dynsym;
}

static uintptr_t exec_range_end(const struct object *obj, uintptr_t addr)
{
	for (size_t i = 0; i < obj->exec_count; i++)
		if (addr >= obj->exec[i].start && addr < obj->exec[i].end)
			return obj->exec[i].end;
	return addr;
}

static void read_functions_from(struct oa_symbols *syms, struct object *obj, Elf *elf)
{
	GElf_Shdr shdr;
	Elf_Scn *table = function_table(elf, &shdr);
	Elf_Data *data = table ? libelf.elf_getdata(table, NULL) : NULL;
	if (!data || shdr.sh_entsize == 0)
		return;
	size_t symbol_count = shdr.sh_size / shdr.sh_entsize;
	struct candidate *candidates = oa_malloc(symbol_count * sizeof(*candidates));
	if (!candidates)
		return;
	size_t candidate_count = 0;
	for (size_t i = 0; i < symbol_count; i++) {
		GElf_Sym sym;
		if (!libelf.gelf_getsym(data, (int)i, &sym))
			continue;
		unsigned char type = GELF_ST_TYPE(sym.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF)
			continue;
		const char *name = libelf.elf_strptr(elf, shdr.sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		candidates[candidate_count++] = (struct candidate){
		    .start = obj->base + sym.st_value,
		    .size = sym.st_size,
		    .name = name,
		    .binding = GELF_ST_BIND(sym.st_info),
		};
	}
	qsort(candidates, candidate_count, sizeof(*candidates), compare_candidates);

	struct function *functions =
	    oa_malloc((candidate_count ? candidate_count : 1) * sizeof(*functions));
	if (!functions)
		goto done;
	size_t count = 0;
	for (size_t i = 0; i < candidate_count; i++) {
		const struct candidate *c = &candidates[i];
		if (count && functions[count - 1].start == c->start)
			continue; /* an alias: the first one sorted wins */
		const char *name = store_string(syms, c->name, strlen(c->name));
		if (!name)
			break;
		functions[count++] = (struct function){
		    .start = c->start,
		    .end = c->start + c->size,
		    .name = name,
		};
	}
	/* A size-0 symbol (assembly, mostly) runs until the next symbol, within
	 * its segment. */
	for (size_t i = 0; i < count; i++) {
		if (functions[i].end != functions[i].start)
			continue;
		uintptr_t next = i + 1 < count ? functions[i + 1].start : UINTPTR_MAX;
		uintptr_t segment_end = exec_range_end(obj, functions[i].start);
		functions[i].end = next < segment_end ? next : segment_end;
	}
	obj->functions = functions;
	obj->function_count = count;
done:
	oa_free(candidates);
}

/* Once per object; the file must still be the one the loader mapped. */
static void read_functions(struct oa_symbols *syms, struct object *obj)
{
	if (obj->functions_read)
		return;
	obj->functions_read = true;
	if (!oa_dynlib_load(&libelf_lib) || libelf.elf_version(EV_CURRENT) == EV_NONE)
		return;
	int fd = oa_fd_open(obj->path, O_RDONLY, 0);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_dev == obj->dev && st.st_ino == obj->ino) {
		Elf *elf = libelf.elf_begin(fd, ELF_C_READ_MMAP, NULL);
		if (elf && libelf.elf_kind(elf) == ELF_K_ELF)
			read_functions_from(syms, obj, elf);
		libelf.elf_end(elf);
	}
	oa_fd_release(fd);
}

static const char *program_basename(struct oa_symbols *syms)
{
	char path[4096];
	ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 1);
	const char *name = program_invocation_short_name;
	if (len > 0) {
		path[len] = '\0';
		const char *slash = strrchr(path, '/');
		name = slash ? slash + 1 : path;
	}
	return store_string(syms, name, strlen(name));
}

static bool same_object(const struct object *obj, const struct loaded_object *loaded,
			const struct stat *st)
{
	if (obj->base != loaded->base || obj->dev != st->st_dev || obj->ino != st->st_ino ||
	    obj->exec_count != loaded->exec_count || strcmp(obj->path, loaded->path) != 0)
		return false;
	return memcmp(obj->exec, loaded->exec, obj->exec_count * sizeof(*obj->exec)) == 0;
}

/* Takes loaded->exec on success. */
static bool add_object(struct oa_symbols *syms, struct loaded_object *loaded, const struct stat *st)
{
	if (syms->object_count == syms->object_cap) {
		size_t cap = syms->object_cap ? syms->object_cap * 2 : 32;
		struct object *objects = oa_realloc(syms->objects, cap * sizeof(*objects));
		if (!objects)
			return false;
		syms->objects = objects;
		syms->object_cap = cap;
	}
	const char *path = store_string(syms, loaded->path, strlen(loaded->path));
	if (!path)
		return false;
	const char *basename;
	if (loaded->main_program) {
		basename = program_basename(syms);
		if (!basename)
			return false;
	} else {
		const char *slash = strrchr(path, '/');
		basename = slash ? slash + 1 : path;
	}
	struct object *obj = &syms->objects[syms->object_count++];
	*obj = (struct object){
	    .path = path,
	    .basename = basename,
	    .base = loaded->base,
	    .dev = st->st_dev,
	    .ino = st->st_ino,
	    .exec = loaded->exec,
	    .exec_count = loaded->exec_count,
	    .mapped = true,
	    .seen = true,
	};
	loaded->exec = NULL;
	return true;
}

static void clear_cache(struct oa_symbols *syms)
{
	memset(syms->cache, 0, (syms->cache_mask + 1) * sizeof(*syms->cache));
	syms->cache_used = 0;
}

void oa_symbols_refresh(struct oa_symbols *syms)
{
	struct scan scan = {0};
	dl_iterate_phdr(collect_object, &scan);
	if (scan.out_of_memory) {
		free_scan(&scan);
		return; /* keep what we know */
	}
	for (size_t i = 0; i < syms->object_count; i++)
		syms->objects[i].seen = false;
	bool changed = false;
	for (size_t i = 0; i < scan.count; i++) {
		struct loaded_object *loaded = &scan.objects[i];
		struct stat st = {0};
		stat(loaded->path, &st); /* identity only: a missing file reads as 0 */
		size_t j = 0;
		while (j < syms->object_count && !same_object(&syms->objects[j], loaded, &st))
			j++;
		if (j < syms->object_count)
			syms->objects[j].seen = true;
		else if (add_object(syms, loaded, &st))
			changed = true;
	}
	for (size_t i = 0; i < syms->object_count; i++) {
		struct object *obj = &syms->objects[i];
		changed |= obj->mapped != obj->seen;
		obj->mapped = obj->seen;
	}
	/* Cached answers may now belong to another object or to none. */
	if (changed)
		clear_cache(syms);
	syms->scan_generation = scan.generation;
	free_scan(&scan);
}

struct oa_symbols *oa_symbols_create(void)
{
	struct oa_symbols *syms = oa_calloc(1, sizeof(*syms));
	if (!syms)
		return NULL;
	syms->cache = oa_calloc(CACHE_INITIAL_SLOTS, sizeof(*syms->cache));
	if (!syms->cache) {
		oa_free(syms);
		return NULL;
	}
	syms->cache_mask = CACHE_INITIAL_SLOTS - 1;
	/* Objects are read at the first name asked for: a process without
	 * function spans never opens its libraries' symbol tables. */
	return syms;
}

void oa_symbols_destroy(struct oa_symbols *syms)
{
	if (!syms)
		return;
	for (size_t i = 0; i < syms->object_count; i++) {
		oa_free(syms->objects[i].exec);
		oa_free(syms->objects[i].functions);
	}
	oa_free(syms->objects);
	oa_free(syms->cache);
	oa_free(syms->signal_scratch);
	for (struct string_chunk *chunk = syms->strings, *next; chunk; chunk = next) {
		next = chunk->next;
		oa_free(chunk);
	}
	oa_free(syms);
}

static bool object_contains(const struct object *obj, uintptr_t addr)
{
	for (size_t i = 0; i < obj->exec_count; i++)
		if (addr >= obj->exec[i].start && addr < obj->exec[i].end)
			return true;
	return false;
}

/* A mapped object first; else the latest unloaded one that held addr. */
static struct object *find_object(struct oa_symbols *syms, uintptr_t addr)
{
	struct object *unloaded = NULL;
	for (size_t i = 0; i < syms->object_count; i++) {
		struct object *obj = &syms->objects[i];
		if (!object_contains(obj, addr))
			continue;
		if (obj->mapped)
			return obj;
		unloaded = obj;
	}
	return unloaded;
}

static struct function *find_function(const struct object *obj, uintptr_t addr)
{
	size_t lo = 0, hi = obj->function_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (obj->functions[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr >= obj->functions[lo - 1].end)
		return NULL;
	return &obj->functions[lo - 1];
}

static const char *resolve(struct oa_symbols *syms, uintptr_t addr, size_t *len)
{
	struct object *obj = find_object(syms, addr);
	/* Outside every mapped object: rescan, but only when the loader's set has
	 * changed since the last scan, so a bad address costs no file reads. */
	if ((!obj || !obj->mapped) && loader_generation() != syms->scan_generation) {
		oa_symbols_refresh(syms);
		obj = find_object(syms, addr);
	}
	if (!obj)
		return format_string(syms, len, "0x%" PRIxPTR, addr);
	read_functions(syms, obj);
	struct function *fn = find_function(obj, addr);
	if (!fn)
		return format_string(syms, len, "0x%" PRIxPTR "@%s", addr - obj->base,
				     obj->basename);
	const char *name = display_name(syms, fn);
	*len = strlen(name);
	return name;
}

static size_t cache_slot(const struct oa_symbols *syms, uintptr_t addr)
{
	/* Fibonacci hashing: function addresses share their low bits. */
	size_t i = (size_t)(((uint64_t)addr * 0x9E3779B97F4A7C15ull) >> 32) & syms->cache_mask;
	while (syms->cache[i].addr != addr && syms->cache[i].addr != 0)
		i = (i + 1) & syms->cache_mask;
	return i;
}

static void grow_cache(struct oa_symbols *syms)
{
	size_t slots = (syms->cache_mask + 1) * 2;
	struct cache_entry *old = syms->cache, *cache = oa_calloc(slots, sizeof(*cache));
	if (!cache)
		return; /* probing still works, only slower */
	size_t old_slots = syms->cache_mask + 1;
	syms->cache = cache;
	syms->cache_mask = slots - 1;
	for (size_t i = 0; i < old_slots; i++)
		if (old[i].addr)
			syms->cache[cache_slot(syms, old[i].addr)] = old[i];
	oa_free(old);
}

static void cache_insert(struct oa_symbols *syms, uintptr_t addr, const char *name, size_t len)
{
	if ((syms->cache_used + 1) * 2 > syms->cache_mask + 1)
		grow_cache(syms);
	if (syms->cache_used + 1 > syms->cache_mask)
		return; /* keep one slot empty so that probing ends */
	syms->cache[cache_slot(syms, addr)] = (struct cache_entry){addr, name, len};
	syms->cache_used++;
}

/* From a signal handler: read in place (elf_names.h), the maps file's
 * lines in one scratch buffer from mem.h's pages. Mangled: the demangler
 * allocates. */
static const char *signal_safe_name(struct oa_symbols *syms, uintptr_t addr, size_t *len)
{
	if (!syms->signal_scratch && !(syms->signal_scratch = oa_malloc(OA_ELF_NAMES_SCRATCH)))
		return NULL;
	char name[1024];
	size_t name_len = oa_elf_function_name(addr, name, sizeof name, syms->signal_scratch);
	const char *stored = name_len ? store_string(syms, name, name_len) : NULL;
	if (stored)
		*len = name_len;
	return stored;
}

const char *oa_symbols_name(struct oa_symbols *syms, uintptr_t addr, size_t *len)
{
	size_t name_len;
	const char *name;
	if (addr == 0) { /* the empty-slot key; outside every object anyway */
		name = "0x0";
		name_len = 3;
	} else {
		const struct cache_entry *entry = &syms->cache[cache_slot(syms, addr)];
		if (entry->addr == addr) {
			name = entry->name;
			name_len = entry->len;
		} else if (oa_mem_signal_safe()) {
			/* libelf allocates, the loader's list takes its lock. */
			name = signal_safe_name(syms, addr, &name_len);
			if (!name)
				return NULL;
			cache_insert(syms, addr, name, name_len);
		} else {
			name = resolve(syms, addr, &name_len);
			if (name) {
				cache_insert(syms, addr, name, name_len);
			} else { /* out of memory */
				name = "?";
				name_len = 1;
			}
		}
	}
	if (len)
		*len = name_len;
	return name;
}

void oa_symbols_foreach_function(struct oa_symbols *syms,
				 void (*fn)(uintptr_t addr, const char *name, void *ctx), void *ctx)
{
	if (syms->scan_generation != loader_generation())
		oa_symbols_refresh(syms);
	for (size_t i = 0; i < syms->object_count; i++) {
		struct object *obj = &syms->objects[i];
		if (!obj->mapped)
			continue;
		read_functions(syms, obj);
		for (size_t j = 0; j < obj->function_count; j++)
			fn(obj->functions[j].start, display_name(syms, &obj->functions[j]), ctx);
	}
}
