#include "exec_target.h"

#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "text.h"

/* The kernel follows at most this many interpreters (#!) before giving up;
 * one level is what real scripts use, two covers `env` wrappers. */
#define MAX_SCRIPT_DEPTH 2

bool oa_exec_search(const char *file, const char *path_env, char *out, size_t size)
{
	if (!file || !*file)
		return false;
	if (strchr(file, '/')) {
		struct oa_text t = oa_text_into(out, size);
		oa_text_str(&t, file);
		return !t.cut;
	}
	const char *dirs = path_env ? path_env : "/bin:/usr/bin";
	for (const char *p = dirs;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dir_len = (size_t)(end - p);
		/* An empty element is the current directory, as for execvp. */
		struct oa_text t = oa_text_into(out, size);
		if (dir_len) {
			oa_text_mem(&t, p, dir_len);
			oa_text_mem(&t, "/", 1);
		}
		oa_text_str(&t, file);
		if (!t.cut && access(out, X_OK) == 0) {
			struct stat st;
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
				return true;
		}
		if (!*end)
			return false;
		p = end;
	}
}

static bool read_at(int fd, void *buf, size_t len, off_t at)
{
	return syscall(SYS_pread64, fd, buf, len, at) == (ssize_t)len;
}

static bool loads_preload_fd(int fd, int depth);

/* "#!interpreter [arg]": the interpreter decides. */
static bool script_loads_preload(int fd, int depth)
{
	char line[256];
	ssize_t n = syscall(SYS_pread64, fd, line, sizeof line - 1, 0);
	if (n < 3 || depth >= MAX_SCRIPT_DEPTH)
		return false;
	line[n] = '\0';
	char *p = line + 2;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t len = strcspn(p, " \t\n");
	if (len == 0)
		return false;
	p[len] = '\0';
	int interp = (int)syscall(SYS_openat, AT_FDCWD, p, O_RDONLY | O_CLOEXEC);
	if (interp < 0)
		return false;
	bool loads = loads_preload_fd(interp, depth + 1);
	syscall(SYS_close, interp);
	return loads;
}

static bool loads_preload_fd(int fd, int depth)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & (S_ISUID | S_ISGID)))
		return false;
	Elf64_Ehdr eh;
	if (!read_at(fd, &eh, 2, 0))
		return false;
	if (memcmp(&eh, "#!", 2) == 0)
		return script_loads_preload(fd, depth);
	if (!read_at(fd, &eh, sizeof eh, 0) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 512)
		return false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (!read_at(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)))
			return false;
		if (ph.p_type == PT_INTERP)
			return true;
	}
	return false;
}

/* Neither ELF nor a script: the kernel refuses it (ENOEXEC), unless a
 * binfmt_misc handler takes it, which we do not follow. */
static bool runnable_format(int fd)
{
	char magic[4];
	return read_at(fd, magic, 4, 0) &&
	       (memcmp(magic, ELFMAG, SELFMAG) == 0 || memcmp(magic, "#!", 2) == 0);
}

static enum oa_exec_target target_of(int fd)
{
	if (!runnable_format(fd))
		return OA_EXEC_UNRUNNABLE;
	return loads_preload_fd(fd, 0) ? OA_EXEC_LOADS_PRELOAD : OA_EXEC_NO_PRELOAD;
}

enum oa_exec_target oa_exec_target_check(const char *path, int fd)
{
	if (fd >= 0)
		return target_of(fd);
	if (!path)
		return OA_EXEC_UNRUNNABLE;
	int own = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (own < 0) {
		/* An executable the caller may run but not read (mode 0111): it
		 * may still run; whether it loads the shim is unknown. */
		return access(path, X_OK) == 0 ? OA_EXEC_NO_PRELOAD : OA_EXEC_UNRUNNABLE;
	}
	enum oa_exec_target target = target_of(own);
	syscall(SYS_close, own);
	return target;
}
