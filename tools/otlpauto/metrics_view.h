/* otlpauto view --metrics: the HTTP request-duration and database
 * operation-duration histograms of OTLP JSON lines files as tables. */
#ifndef OTLPAUTO_CLI_METRICS_VIEW_H
#define OTLPAUTO_CLI_METRICS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Reads the metrics lines of the files (other lines are passed over) and
 * prints one row per service and HTTP metric: requests, rate, error %, p50,
 * p90 and p99; then one per service, db.system.name and db.operation.name
 * of db.client.operation.duration, the same; then the span counts. False
 * when a file cannot be read or memory is short. */
bool print_metrics(FILE *out, char *const *paths, size_t n_paths);

#endif
