/* What an ELF file says about how a preloaded library can reach it: the
 * loader, the C library, the -finstrument-functions hook, and runtimes that
 * make their system calls without the C library (Go, io_uring). doctor
 * reports all of it; run warns from it. */
#ifndef OTLPAUTO_ELF_FACTS_H
#define OTLPAUTO_ELF_FACTS_H

#include <stdbool.h>
#include <stddef.h>

#define PROFILE_HOOK "__cyg_profile_func_enter"

enum profile_hook { HOOK_ABSENT, HOOK_IMPORTED, HOOK_DEFINED };

struct elf_facts {
	int elf_class;
	unsigned machine;
	unsigned type;
	bool has_interp, has_dynamic, has_symtab, has_dynsym;
	char interp[256];
	char libc[128]; /* the DT_NEEDED entry naming a C library */
	enum profile_hook profile_hook;
	/* A Go program (a .go.buildinfo or .note.go.buildid section); go_version
	 * is "go1.19.8" when the build info holds it, else empty. */
	bool go;
	char go_version[32];
	char uring[64]; /* the DT_NEEDED entry naming liburing, if any */
	/* TLS: DT_NEEDED entries naming libssl or libgnutls, and whether the
	 * file defines OpenSSL's SSL_write itself (linked in statically). */
	char libssl[64], gnutls[64];
	bool openssl_inside;
};

/* False with a message in why when path is not an ELF file libelf can read.
 * elf_version() must have been called. */
bool read_elf(const char *path, struct elf_facts *f, char *why, size_t why_size);

#endif
