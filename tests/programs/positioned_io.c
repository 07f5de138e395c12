/* Every positioned read and write of glibc once on one file, for the files
 * hooks (test_sockets): pread, pwrite, preadv, pwritev, preadv2, pwritev2,
 * their 64 variants, and the fortified __pread_chk and __pread64_chk. Prints
 * what it read, so that a hook that changed a call shows. Usage:
 * positioned_io FILE. */
#undef _FILE_OFFSET_BITS /* pread, not the pread64 it would be redirected to */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t __pread_chk(int fd, void *buf, size_t len, off_t offset, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t len, off64_t offset, size_t buflen);

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 1;
	char a[] = "aaaa", b[] = "bbbb";
	struct iovec out[2] = {{a, 4}, {b, 4}};
	long written = pwrite(fd, "0123", 4, 0) + pwrite64(fd, "4567", 4, 4) +
		       pwritev(fd, out, 2, 8) + pwritev64(fd, out, 2, 16) +
		       pwritev2(fd, out, 2, 24, 0) + pwritev64v2(fd, out, 2, 32, 0);
	char buf[8][9] = {{0}};
	struct iovec in[6][1] = {{{buf[2], 8}}, {{buf[3], 8}}, {{buf[4], 8}}, {{buf[5], 8}}};
	long got = pread(fd, buf[0], 4, 0) + pread64(fd, buf[1], 4, 4) + preadv(fd, in[0], 1, 8) +
		   preadv64(fd, in[1], 1, 16) + preadv2(fd, in[2], 1, 24, 0) +
		   preadv64v2(fd, in[3], 1, 32, 0) + __pread_chk(fd, buf[6], 4, 0, 9) +
		   __pread64_chk(fd, buf[7], 4, 4, 9);
	printf("wrote %ld, read %ld:", written, got);
	for (int i = 0; i < 8; i++)
		printf(" %s", buf[i]);
	printf("\n");
	return close(fd) == 0 ? 0 : 1;
}
