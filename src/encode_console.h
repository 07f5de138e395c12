/* The console exporter's format: one readable line per span. */
#ifndef OTLPAUTO_ENCODE_CONSOLE_H
#define OTLPAUTO_ENCODE_CONSOLE_H

#include <stdbool.h>

#include "buf.h"
#include "export_model.h"

/* Appends one '\n'-terminated line per span to out. */
bool oa_console_batch_encode(const struct oa_export_batch *batch, struct oa_buf *out);

#endif
