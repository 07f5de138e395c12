/* Stack traces for slow or failed spans (OTLPAUTO_STACKTRACE): raw return
 * addresses captured with libunwind on the hot path, only in those cases,
 * and resolved to names on the exporter thread. */
#ifndef OTLPAUTO_STACK_H
#define OTLPAUTO_STACK_H

#include "payload.h"

#define OA_STACK_MAX_FRAMES 32
/* Payload bytes an OA_ITEM_STACK item can take. */
#define OA_STACK_PAYLOAD (2 + 8 * OA_STACK_MAX_FRAMES)

/* Opens libunwind and notes the address range of our own code so traces
 * start at the caller; false (after a warning) without libunwind. */
bool oa_stack_init(void);
/* Appends the calling thread's stack, our own frames skipped. Only after
 * oa_stack_init returned true. */
void oa_payload_stack(struct oa_payload *w);

#endif
