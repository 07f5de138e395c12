/* Chrome/Perfetto trace-event JSON for otlpauto view --chrome. */
#ifndef OTLPAUTO_CLI_CHROME_H
#define OTLPAUTO_CLI_CHROME_H

#include <stdio.h>

#include "spans.h"

/* Chrome/Perfetto trace-event JSON of the given traces' spans. False on a write error. */
bool write_chrome(FILE *out, const struct trace *const *traces, size_t n_traces);

#endif
