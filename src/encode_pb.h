/* OTLP protobuf encoding of a batch, written straight into one buffer: sizes
 * are computed first, then every varint and length-delimited field is written
 * in place. No allocation; protobuf-c is the reference the tests compare with. */
#ifndef OTLPAUTO_ENCODE_PB_H
#define OTLPAUTO_ENCODE_PB_H

#include <stddef.h>
#include <stdint.h>

#include "export_model.h"

/* Bytes of the encoded ExportTraceServiceRequest. */
size_t oa_pb_batch_size(const struct oa_export_batch *batch);
/* Writes the size = oa_pb_batch_size(batch) bytes to out (the caller has the
 * size already: it allocated out) and returns that count. */
size_t oa_pb_batch_encode(const struct oa_export_batch *batch, uint8_t *out, size_t size);

#endif
