/* A strict JSON (RFC 8259) parser into a tree held by an arena: no comments,
 * no trailing commas, no leading zeros, no raw control characters in
 * strings, valid UTF-8 only, unpaired surrogate escapes rejected, one value
 * and nothing after it. The arena's limit bounds the memory one document may
 * take; nesting is bounded too. */
#ifndef OTLPAUTO_CLI_JSON_H
#define OTLPAUTO_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_value {
	enum json_type type;
	const char *key; /* the member name inside an object, else NULL */
	size_t key_len;
	const char *text; /* JSON_STRING: decoded, NUL-terminated; JSON_NUMBER: as written */
	size_t len;
	struct json_value *first; /* JSON_ARRAY elements, JSON_OBJECT members, in order */
	struct json_value *next;  /* the next sibling */
	size_t count;		  /* number of elements or members */
};

#define JSON_MAX_DEPTH 100

struct json_error {
	size_t offset; /* byte offset into the input */
	const char *message;
};

/* Parses text[0..len); NULL with *err filled on invalid input or when the
 * arena refuses memory. Strings point into the arena, not into text. */
struct json_value *json_parse(const char *text, size_t len, struct arena *arena,
			      struct json_error *err);

/* The first member named key of an object; NULL if absent or not an object. */
const struct json_value *json_get(const struct json_value *object, const char *key);
/* An integer written as a JSON number or, as proto3 JSON writes 64-bit ones,
 * as a decimal string; no fraction, exponent or '+'. False if out of range. */
bool json_uint64(const struct json_value *v, uint64_t *out);
bool json_int64(const struct json_value *v, int64_t *out);

#endif
