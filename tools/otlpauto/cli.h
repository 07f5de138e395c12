/* The otlpauto command: shared pieces of its subcommands. */
#ifndef OTLPAUTO_CLI_H
#define OTLPAUTO_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses besides a program's own. */
enum {
	EXIT_USAGE = 2,		/* bad options or arguments */
	EXIT_RUN_FAILED = 125,	/* run: otlpauto itself failed before the program started */
	EXIT_CANNOT_EXEC = 127, /* run: the program could not be executed */
};

int cmd_run(int argc, char **argv);
int cmd_view(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

/* "otlpauto COMMAND: message" and a pointer to --help on stderr; returns EXIT_USAGE. */
int usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 250ns, 100us, 1.5ms, 2s or 0, as the OTLPAUTO_*_THRESHOLD variables take them. */
bool parse_duration(const char *text, uint64_t *ns);
/* A duration for people: 850ns, 12.345us, 1.500ms, 2.000s. */
const char *format_duration(uint64_t ns, char buf[static 32]);

/* Set and not empty (the OpenTelemetry rule: empty means unset). */
bool env_is_set(const char *name);
/* Whether OTEL_TRACES_EXPORTER or an OTEL_EXPORTER_OTLP_* variable says where spans go. */
bool destination_in_environment(void);

/* A program name as execvp finds it: as is with a '/', else in PATH. */
bool find_program(const char *name, char *out, size_t size);
/* getenv, as an oa_getenv_fn for the library's configuration parser. */
const char *env_get(const char *name, void *ctx);

/* Where libotlpauto.so is: OTLPAUTO_LIB when set, else beside this executable
 * (a build tree), else in the lib directory of the prefix this executable is
 * installed in, else in the libdir configured at build time. */
struct library_search {
	char path[4096];  /* the library found, resolved */
	char tried[4096]; /* the places looked at, for a message when none has it */
};
bool find_library(struct library_search *search);

#endif
