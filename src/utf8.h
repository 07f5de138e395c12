/* OTLP receivers reject a whole request when one string is not UTF-8. */
#ifndef OTLPAUTO_UTF8_H
#define OTLPAUTO_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool oa_utf8_valid(const char *s, size_t len);
/* Length of the well-formed UTF-8 character at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when the avail bytes
 * there do not start one. */
size_t oa_utf8_char_len(const char *s, size_t avail);
/* Copies in to out replacing each invalid byte with U+FFFD; out holds 3*len
 * bytes. Returns the bytes written. */
size_t oa_utf8_sanitize(const char *in, size_t len, char *out);
/* The longest prefix of valid UTF-8 s that is at most max bytes and ends on a
 * character boundary. */
size_t oa_utf8_truncate(const char *s, size_t len, size_t max);

#endif
