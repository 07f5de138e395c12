#include "elf_names.h"

#include "text.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The file mapping that holds an address. */
struct mapping {
	uintptr_t start;
	uint64_t offset; /* of start in the file */
	const char *path;
	size_t path_len;
};

static const char *hex_field(const char *s, const char *end, uint64_t *v)
{
	uint64_t x = 0;
	const char *begin = s;
	for (; s < end; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else
			break;
		x = x << 4 | d;
	}
	*v = x;
	return s > begin ? s : NULL;
}

static const char *skip_field(const char *s, const char *end)
{
	while (s < end && *s != ' ')
		s++;
	while (s < end && *s == ' ')
		s++;
	return s;
}

/* "start-end perms offset dev inode   path": true when the line maps addr
 * from a file by its absolute path. */
static bool line_maps(const char *s, const char *end, uintptr_t addr, struct mapping *m)
{
	uint64_t start, stop, offset;
	if (!(s = hex_field(s, end, &start)) || s == end || *s++ != '-' ||
	    !(s = hex_field(s, end, &stop)) || addr < start || addr >= stop)
		return false;
	s = skip_field(s, end); /* to the permissions */
	s = skip_field(s, end); /* to the offset */
	if (!(s = hex_field(s, end, &offset)))
		return false;
	s = skip_field(s, end); /* to the device */
	s = skip_field(s, end); /* to the inode */
	s = skip_field(s, end); /* to the path */
	static const char deleted[] = " (deleted)";
	size_t len = (size_t)(end - s);
	if (len == 0 || *s != '/' ||
	    (len >= sizeof deleted - 1 &&
	     memcmp(end - (sizeof deleted - 1), deleted, sizeof deleted - 1) == 0))
		return false;
	*m = (struct mapping){(uintptr_t)start, offset, s, len};
	return true;
}

/* Finds addr's mapping in /proc/self/maps; its path points into scratch. */
static bool find_mapping(uintptr_t addr, char *scratch, struct mapping *m)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	size_t have = 0;
	bool found = false;
	for (;;) {
		ssize_t n = syscall(SYS_read, fd, scratch + have, OA_ELF_NAMES_SCRATCH - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		char *line = scratch, *end = scratch + have, *nl;
		while ((nl = memchr(line, '\n', (size_t)(end - line)))) {
			if (line_maps(line, nl, addr, m)) {
				found = true;
				break;
			}
			line = nl + 1;
		}
		if (found)
			break;
		/* A line longer than the scratch cannot name a path we open. */
		have = line == scratch && have == OA_ELF_NAMES_SCRATCH ? 0 : (size_t)(end - line);
		memmove(scratch, line, have);
	}
	syscall(SYS_close, fd);
	return found;
}

static int binding_rank(unsigned char binding)
{
	return binding == STB_GLOBAL ? 0 : binding == STB_WEAK ? 1 : 2;
}

static size_t leading_underscores(const char *s)
{
	size_t n = 0;
	while (s[n] == '_')
		n++;
	return n;
}

bool oa_elf_alias_before(const struct oa_elf_alias *a, const struct oa_elf_alias *b)
{
	if ((a->size == 0) != (b->size == 0))
		return a->size != 0;
	int rank = binding_rank(a->binding) - binding_rank(b->binding);
	if (rank)
		return rank < 0;
	size_t ua = leading_underscores(a->name), ub = leading_underscores(b->name);
	if (ua != ub)
		return ua < ub;
	return strcmp(a->name, b->name) < 0;
}

struct elf_file {
	const uint8_t *data;
	size_t size;
};

static bool within(const struct elf_file *f, uint64_t offset, uint64_t len)
{
	return offset <= f->size && len <= f->size - offset;
}

/* The section of the given type, if any. */
static const ElfW(Shdr) *
    section_of_type(const struct elf_file *f, const ElfW(Ehdr) * eh, uint32_t type)
{
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		const ElfW(Shdr) *sh =
		    (const ElfW(Shdr) *)(f->data + eh->e_shoff + (size_t)i * eh->e_shentsize);
		if (sh->sh_type == type)
			return sh;
	}
	return NULL;
}

/* The function that contains vaddr, by the rules of symbols.c: .symtab
 * (else .dynsym), function symbols only; the last start at or before vaddr,
 * its best alias; a size-0 one runs until the next start within its
 * segment (which ends at segment_end). */
static const char *function_at(const struct elf_file *f, const ElfW(Ehdr) * eh, uint64_t vaddr,
			       uint64_t segment_end)
{
	if (eh->e_shentsize != sizeof(ElfW(Shdr)) ||
	    !within(f, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(ElfW(Shdr))))
		return NULL;
	const ElfW(Shdr) *table = section_of_type(f, eh, SHT_SYMTAB);
	if (!table)
		table = section_of_type(f, eh, SHT_DYNSYM);
	if (!table || table->sh_entsize != sizeof(ElfW(Sym)) || table->sh_link >= eh->e_shnum ||
	    !within(f, table->sh_offset, table->sh_size))
		return NULL;
	const ElfW(Shdr) *strtab =
	    (const ElfW(Shdr) *)(f->data + eh->e_shoff + (size_t)table->sh_link * eh->e_shentsize);
	if (!within(f, strtab->sh_offset, strtab->sh_size) || strtab->sh_size == 0 ||
	    f->data[strtab->sh_offset + strtab->sh_size - 1] != '\0')
		return NULL;
	const char *strings = (const char *)f->data + strtab->sh_offset;
	const ElfW(Sym) *syms = (const ElfW(Sym) *)(f->data + table->sh_offset);
	size_t count = table->sh_size / sizeof(ElfW(Sym));
	const ElfW(Sym) *best = NULL;
	struct oa_elf_alias best_alias = {0};
	uint64_t next_start = UINT64_MAX;
	for (size_t i = 0; i < count; i++) {
		const ElfW(Sym) *s = &syms[i];
		unsigned char type = ELF64_ST_TYPE(s->st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s->st_shndx == SHN_UNDEF ||
		    s->st_name == 0 || s->st_name >= strtab->sh_size)
			continue;
		const char *name = strings + s->st_name;
		if (s->st_value > vaddr) {
			if (s->st_value < next_start)
				next_start = s->st_value;
			continue;
		}
		struct oa_elf_alias alias = {s->st_size, ELF64_ST_BIND(s->st_info), name};
		if (!best || s->st_value > best->st_value ||
		    (s->st_value == best->st_value && oa_elf_alias_before(&alias, &best_alias))) {
			best = s;
			best_alias = alias;
		}
	}
	if (!best)
		return NULL;
	uint64_t end = best->st_value + best->st_size;
	if (best->st_size == 0)
		end = next_start < segment_end ? next_start : segment_end;
	return vaddr < end ? best_alias.name : NULL;
}

/* Names addr within the mapped file f (m: the mapping); false when the file
 * is not an ELF object of ours. */
static bool name_in_file(const struct elf_file *f, const struct mapping *m, uintptr_t addr,
			 struct oa_text *out)
{
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)f->data;
	if (f->size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
	    eh->e_phentsize != sizeof(ElfW(Phdr)) ||
	    !within(f, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(ElfW(Phdr))))
		return false;
	uint64_t file_offset = addr - m->start + m->offset;
	const ElfW(Phdr) *load = NULL;
	for (unsigned i = 0; i < eh->e_phnum && !load; i++) {
		const ElfW(Phdr) *ph =
		    (const ElfW(Phdr) *)(f->data + eh->e_phoff + (size_t)i * sizeof(ElfW(Phdr)));
		if (ph->p_type == PT_LOAD && file_offset >= ph->p_offset &&
		    file_offset < ph->p_offset + ph->p_filesz)
			load = ph;
	}
	if (!load)
		return false;
	uint64_t vaddr = file_offset - load->p_offset + load->p_vaddr;
	const char *name = function_at(f, eh, vaddr, load->p_vaddr + load->p_memsz);
	if (name) {
		oa_text_str(out, name);
		return true;
	}
	/* As symbols.c: the offset from the load bias, and the object's name. */
	const char *base = m->path + m->path_len;
	while (base > m->path && base[-1] != '/')
		base--;
	oa_text_mem(out, "0x", 2);
	oa_text_hex(out, vaddr);
	oa_text_mem(out, "@", 1);
	oa_text_mem(out, base, (size_t)(m->path + m->path_len - base));
	return true;
}

size_t oa_elf_function_name(uintptr_t addr, char *out, size_t cap, char *scratch)
{
	if (cap == 0)
		return 0;
	struct oa_text text = oa_text_into(out, cap);
	struct mapping m;
	bool named = false;
	if (find_mapping(addr, scratch, &m) && m.path_len < OA_ELF_NAMES_SCRATCH) {
		/* The path is in scratch already: terminate it there. */
		memmove(scratch, m.path, m.path_len);
		scratch[m.path_len] = '\0';
		m.path = scratch;
		int fd = (int)syscall(SYS_openat, AT_FDCWD, scratch, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd >= 0 && syscall(SYS_fstat, fd, &st) == 0 && st.st_size > 0) {
			void *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (data != MAP_FAILED) {
				struct elf_file f = {data, (size_t)st.st_size};
				named = name_in_file(&f, &m, addr, &text);
				munmap(data, (size_t)st.st_size);
			}
		}
		if (fd >= 0)
			syscall(SYS_close, fd);
	}
	if (!named) {
		text = oa_text_into(out, cap);
		oa_text_mem(&text, "0x", 2);
		oa_text_hex(&text, addr);
	}
	return (size_t)(text.at - out);
}
