#include "utf8.h"

#include <stdint.h>
#include <string.h>

size_t oa_utf8_char_len(const char *text, size_t avail)
{
	const unsigned char *s = (const unsigned char *)text;
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	/* The second byte's range depends on the lead byte: that is what excludes
	 * overlong forms, surrogates and code points past U+10FFFF. */
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

/* Bytes of s before its first non-ASCII byte, eight at a time. */
static size_t ascii_prefix(const unsigned char *s, size_t len)
{
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t word;
		memcpy(&word, s + i, sizeof(word));
		if (word & 0x8080808080808080ull)
			break;
	}
	while (i < len && s[i] < 0x80)
		i++;
	return i;
}

bool oa_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		i += ascii_prefix(u + i, len - i);
		if (i == len)
			break;
		size_t n = oa_utf8_char_len(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

size_t oa_utf8_sanitize(const char *in, size_t len, char *out)
{
	static const char replacement[3] = {'\xEF', '\xBF', '\xBD'};
	const unsigned char *u = (const unsigned char *)in;
	size_t i = 0, o = 0;
	while (i < len) {
		size_t ascii = ascii_prefix(u + i, len - i);
		memcpy(out + o, in + i, ascii);
		i += ascii;
		o += ascii;
		if (i == len)
			break;
		size_t n = oa_utf8_char_len(in + i, len - i);
		if (n == 0) {
			memcpy(out + o, replacement, sizeof(replacement));
			o += sizeof(replacement);
			i++;
		} else {
			memcpy(out + o, in + i, n);
			o += n;
			i += n;
		}
	}
	return o;
}

size_t oa_utf8_truncate(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	/* s is valid, so backing off continuation bytes lands on a lead byte. */
	size_t cut = max;
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	return cut;
}
