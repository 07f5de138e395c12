/* otlpauto: run a program with libotlpauto.so preloaded, view the spans it
 * wrote, or check whether a program can be traced at all. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: otlpauto COMMAND [OPTIONS] [ARGS...]\n"
    "Traces unmodified programs with OpenTelemetry, through LD_PRELOAD.\n"
    "\n"
    "Commands:\n"
    "  run [OPTIONS] [--] PROGRAM [ARGS...]   run PROGRAM traced\n"
    "  view [OPTIONS] [FILE...]               show the spans of OTLP JSON lines files\n"
    "  doctor PROGRAM                         tell whether PROGRAM can be traced\n"
    "\n"
    "Options:\n"
    "  -h, --help      show this help\n"
    "  -V, --version   show the version\n"
    "\n"
    "'otlpauto COMMAND --help' shows a command's options; man otlpauto has them all,\n"
    "with every environment variable.\n";

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
    {"run", cmd_run},
    {"view", cmd_view},
    {"doctor", cmd_doctor},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *word = argv[1];
	if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(word, "-V") == 0 || strcmp(word, "--version") == 0) {
		printf("otlpauto %s\n", OTLPAUTO_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(word, commands[i].name) == 0) {
			/* The command's argv[0], which its getopt messages start with. */
			static char full_name[32];
			snprintf(full_name, sizeof full_name, "otlpauto %s", word);
			argv[1] = full_name;
			return commands[i].run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "otlpauto: unknown %s '%s'\nTry 'otlpauto --help'.\n",
		word[0] == '-' ? "option" : "command", word);
	return EXIT_USAGE;
}
