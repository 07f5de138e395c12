/* Changes of identity and confinement: chroot, the set-id calls, unshare and
 * setns. After one, the exporter may no longer reach the files it needs (the
 * output file, libcurl and its libraries, the symbol tables of the program)
 * or be allowed to open them. So before the first such call, whatever it
 * will need is opened, unless a relay sends for this process: its connection
 * outlives all of these. */
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <unistd.h>

#include "real.h"
#include "runtime.h"

#define OA_EXPORT __attribute__((visibility("default")))

OA_REAL(int, chroot, (const char *a0), -1)
OA_REAL(int, setuid, (uid_t a0), -1)
OA_REAL(int, setgid, (gid_t a0), -1)
OA_REAL(int, seteuid, (uid_t a0), -1)
OA_REAL(int, setegid, (gid_t a0), -1)
OA_REAL(int, setreuid, (uid_t a0, uid_t a1), -1)
OA_REAL(int, setregid, (gid_t a0, gid_t a1), -1)
OA_REAL(int, setresuid, (uid_t a0, uid_t a1, uid_t a2), -1)
OA_REAL(int, setresgid, (gid_t a0, gid_t a1, gid_t a2), -1)
OA_REAL(int, setgroups, (size_t a0, const gid_t *a1), -1)
OA_REAL(int, unshare, (int a0), -1)
OA_REAL(int, setns, (int a0, int a1), -1)

static void before_confinement(void)
{
	if (!(oa_rt.cfg.hooks & OA_HOOK_PROCESS) || !oa_hook_enter())
		return;
	int saved_errno = errno;
	oa_exporter_before_confinement();
	errno = saved_errno;
	oa_hook_leave();
}

#define CONFINING(ret, name, params, args)                                                         \
	OA_EXPORT ret name params                                                                  \
	{                                                                                          \
		before_confinement();                                                              \
		ret(*real) params = oa_real_##name();                                              \
		if (!real) {                                                                       \
			errno = ENOSYS;                                                            \
			return -1;                                                                 \
		}                                                                                  \
		return real args;                                                                  \
	}

CONFINING(int, chroot, (const char *path), (path))
CONFINING(int, setuid, (uid_t uid), (uid))
CONFINING(int, setgid, (gid_t gid), (gid))
CONFINING(int, seteuid, (uid_t uid), (uid))
CONFINING(int, setegid, (gid_t gid), (gid))
CONFINING(int, setreuid, (uid_t ruid, uid_t euid), (ruid, euid))
CONFINING(int, setregid, (gid_t rgid, gid_t egid), (rgid, egid))
CONFINING(int, setresuid, (uid_t ruid, uid_t euid, uid_t suid), (ruid, euid, suid))
CONFINING(int, setresgid, (gid_t rgid, gid_t egid, gid_t sgid), (rgid, egid, sgid))
CONFINING(int, setgroups, (size_t size, const gid_t *list), (size, list))
CONFINING(int, unshare, (int flags), (flags))
CONFINING(int, setns, (int fd, int nstype), (fd, nstype))
