/* The exit's debug summary (OTEL_LOG_LEVEL=debug): this process's span
 * counts by outcome, and what it relayed, commented or hosted. */
#ifndef OTLPAUTO_SUMMARY_H
#define OTLPAUTO_SUMMARY_H

/* Formatted by hand, without allocating: called from signal handlers and
 * _exit too, with debug lines on only. */
void oa_shutdown_summary(void);

#endif
