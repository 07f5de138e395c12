#include "elf_facts.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool is_libc(const char *needed)
{
	return strncmp(needed, "libc.so", 7) == 0 || strncmp(needed, "libc.musl", 9) == 0;
}

/* Scans a symbol table for the -finstrument-functions entry hook and for
 * OpenSSL defined inside the file. */
static void scan_symbols(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, struct elf_facts *f)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
	for (size_t i = 0; data && i < n; i++) {
		GElf_Sym sym;
		const char *name;
		if (!gelf_getsym(data, (int)i, &sym) ||
		    !(name = elf_strptr(elf, sh->sh_link, sym.st_name)))
			continue;
		if (strcmp(name, "SSL_write") == 0 && sym.st_shndx != SHN_UNDEF)
			f->openssl_inside = true;
		if (strcmp(name, PROFILE_HOOK))
			continue;
		enum profile_hook found = sym.st_shndx == SHN_UNDEF ? HOOK_IMPORTED : HOOK_DEFINED;
		if (found > f->profile_hook)
			f->profile_hook = found;
	}
}

static void scan_dynamic(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, struct elf_facts *f)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
	for (size_t i = 0; data && i < n; i++) {
		GElf_Dyn dyn;
		if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag != DT_NEEDED)
			continue;
		const char *needed = elf_strptr(elf, sh->sh_link, dyn.d_un.d_val);
		if (needed && is_libc(needed))
			snprintf(f->libc, sizeof f->libc, "%s", needed);
		if (needed && strncmp(needed, "liburing.so", 11) == 0)
			snprintf(f->uring, sizeof f->uring, "%s", needed);
		if (needed && strncmp(needed, "libssl.so", 9) == 0)
			snprintf(f->libssl, sizeof f->libssl, "%s", needed);
		if (needed && strncmp(needed, "libgnutls.so", 12) == 0)
			snprintf(f->gnutls, sizeof f->gnutls, "%s", needed);
	}
}

static void scan_program_headers(Elf *elf, struct elf_facts *f)
{
	size_t n, size;
	const char *raw = elf_rawfile(elf, &size);
	if (elf_getphdrnum(elf, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph))
			continue;
		if (ph.p_type == PT_DYNAMIC)
			f->has_dynamic = true;
		if (ph.p_type == PT_INTERP) {
			f->has_interp = true;
			if (raw && ph.p_offset < size && ph.p_filesz <= size - ph.p_offset)
				snprintf(f->interp, sizeof f->interp, "%.*s", (int)ph.p_filesz,
					 raw + ph.p_offset);
		}
	}
}

/* Go 1.18 and later put the toolchain version inline in .go.buildinfo: a
 * 14-byte magic, the pointer size, flags (bit 1: inline strings), padding to
 * 32 bytes, then the version as a varint length and its bytes. */
static void read_go_version(Elf_Scn *scn, struct elf_facts *f)
{
	static const char magic[] = "\xff Go buildinf:";
	Elf_Data *data = elf_getdata(scn, NULL);
	if (!data || !data->d_buf || data->d_size < 33 || memcmp(data->d_buf, magic, 14) != 0)
		return;
	const unsigned char *p = data->d_buf;
	if (!(p[15] & 2))
		return;
	size_t len = p[32]; /* one varint byte: a version is shorter than 128 bytes */
	if (len >= 128 || len >= sizeof f->go_version || 33 + len > data->d_size)
		return;
	memcpy(f->go_version, p + 33, len);
	f->go_version[len] = '\0';
}

bool read_elf(const char *path, struct elf_facts *f, char *why, size_t why_size)
{
	*f = (struct elf_facts){0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_size, "cannot open it: %s", strerror(errno));
		return false;
	}
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	GElf_Ehdr eh;
	bool ok = elf && elf_kind(elf) == ELF_K_ELF && gelf_getehdr(elf, &eh);
	if (!ok) {
		snprintf(why, why_size, "not an ELF file");
	} else {
		f->elf_class = gelf_getclass(elf);
		f->machine = eh.e_machine;
		f->type = eh.e_type;
		scan_program_headers(elf, f);
		size_t names;
		if (elf_getshdrstrndx(elf, &names) == 0) {
			for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
				GElf_Shdr sh;
				if (!gelf_getshdr(scn, &sh))
					continue;
				const char *name = elf_strptr(elf, names, sh.sh_name);
				if (name && strcmp(name, ".go.buildinfo") == 0) {
					f->go = true;
					read_go_version(scn, f);
				} else if (name && strcmp(name, ".note.go.buildid") == 0) {
					f->go = true;
				}
				if (sh.sh_type == SHT_SYMTAB)
					f->has_symtab = true;
				if (sh.sh_type == SHT_DYNSYM)
					f->has_dynsym = true;
				if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
					scan_symbols(elf, scn, &sh, f);
				else if (sh.sh_type == SHT_DYNAMIC)
					scan_dynamic(elf, scn, &sh, f);
			}
		}
	}
	elf_end(elf);
	close(fd);
	return ok;
}
