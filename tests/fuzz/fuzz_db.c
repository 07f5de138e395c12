/* libFuzzer: a database client's stream through the comment rewrite
 * (src/db_inject.c with the parsers' positions), as tests/unit/db_stream.h
 * runs it. Beyond "no crash" and "the walk ends", whatever the bytes and
 * however they are cut into writes and kernel takes: every call takes
 * application bytes, nothing is left owed at the end, and the wire is the
 * program's bytes with exactly the rewrites that went out applied.
 *
 * Input: byte 0 = bit 0 MySQL; byte 1 = the kernel's take per call (0: all);
 * byte 2 = how many cuts (up to 8), then one byte per cut (the gap to the
 * previous); then the client's bytes after its login, which the harness
 * puts first. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/db_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A PostgreSQL StartupMessage; a MySQL 8.0 client's login and password. */
static const char pg_login[] = "\0\0\0\x17\0\3\0\0user\0postgres\0\0";
static const char mysql_login[] =
    "a\000\000\001\010\252\n\000\377\377\377\000\340\000\000\000\000\000\000\000\000\000"
    "\000\000\000\000\000\000\000\000\000\000\000\000\000\000root\000 8$\224\267u0\tOz"
    "\2405\036\356\241>\262\345\376E\177\033\264\331@rT\323\251\223\332\353Utest\000cach"
    "ing_sha2_password\000\005\000\000\003test\000";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct db_client c;
	static uint8_t stream[DB_STREAM_MAX];
	if (size < 3)
		return 0;
	bool mysql = data[0] & 1;
	size_t kernel_max = data[1] ? data[1] : DB_STREAM_MAX, n_cuts = data[2] % 9;
	if (size < 3 + n_cuts)
		return 0;
	const uint8_t *gaps = data + 3, *bytes = data + 3 + n_cuts;
	size_t n = size - 3 - n_cuts;
	const char *login = mysql ? mysql_login : pg_login;
	size_t prefix = mysql ? sizeof mysql_login - 1 : sizeof pg_login - 1;
	if (prefix + n > sizeof stream)
		return 0;
	memcpy(stream, login, prefix);
	memcpy(stream + prefix, bytes, n);
	size_t cuts[8], at = prefix;
	for (size_t i = 0; i < n_cuts; i++) {
		at += gaps[i];
		cuts[i] = at < prefix + n ? at : prefix + n;
	}
	if (db_client_run(&c, mysql, stream, prefix + n, prefix, cuts, (int)n_cuts, kernel_max) < 0)
		abort();
	return 0;
}
