/* A daemon that confines itself before its first span, then makes spans:
 *   confine chroot DIR PORT   chroot(DIR), then connect to 127.0.0.1:PORT
 *   confine setuid UID PORT   setgid/setuid(UID), then the same
 * Built with -finstrument-functions: after_confinement is a function span
 * whose name must still resolve (the symbol tables are read before). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void after_confinement(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	connect(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
	usleep(200000); /* past the threshold: a function span */
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	if (strcmp(argv[1], "chroot") == 0) {
		if (chroot(argv[2]) != 0 || chdir("/") != 0) {
			perror("chroot");
			return 1;
		}
	} else if (strcmp(argv[1], "setuid") == 0) {
		uid_t uid = (uid_t)atoi(argv[2]);
		if (setgid(uid) != 0 || setuid(uid) != 0) {
			perror("setuid");
			return 1;
		}
	} else {
		return 2;
	}
	after_confinement(atoi(argv[3]));
	return 0;
}
