/* Writing and reading a record's payload items (see record.h). Writers never
 * overrun: an item that does not fit is skipped and counted as dropped. */
#ifndef OTLPAUTO_PAYLOAD_H
#define OTLPAUTO_PAYLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "record.h"

/* Bytes kept back for the OA_ITEM_DROPPED item a writer may need at finish. */
#define OA_PAYLOAD_DROPPED_ITEM 5

struct oa_payload {
	uint8_t *p;
	uint8_t *end;
	struct oa_record *rec;
	uint16_t dropped_attrs;
	uint16_t dropped_events;
};

/* Slots a record with payload_max payload bytes needs. */
static inline uint32_t oa_record_slots(uint32_t payload_max)
{
	uint32_t bytes = (uint32_t)OA_RECORD_HEADER_SIZE + payload_max;
	if (payload_max)
		bytes += OA_PAYLOAD_DROPPED_ITEM;
	uint32_t slots = (bytes + OA_SLOT_SIZE - 1) / OA_SLOT_SIZE;
	return slots > OA_MAX_SLOTS_PER_RECORD ? OA_MAX_SLOTS_PER_RECORD : slots;
}

static inline void oa_payload_init(struct oa_payload *w, struct oa_record *rec)
{
	w->rec = rec;
	w->p = rec->payload;
	w->end = (uint8_t *)rec + (size_t)rec->n_slots * OA_SLOT_SIZE - OA_PAYLOAD_DROPPED_ITEM;
	w->dropped_attrs = w->dropped_events = 0;
}

static inline bool oa_payload_room(struct oa_payload *w, size_t n)
{
	return w->p + n <= w->end;
}

static inline void oa_payload_put(struct oa_payload *w, const void *src, size_t n)
{
	/* A variable n goes to libc's memcpy: knowing n bounded (a strnlen, a
	 * u16), GCC expands memcpy inline as rep movsq, which takes tens of
	 * cycles to start, most of a short string's copy. */
	if (!__builtin_constant_p(n))
		__asm__("" : "+r"(n));
	memcpy(w->p, src, n);
	w->p += n;
}

static inline void oa_payload_u8(struct oa_payload *w, uint8_t v)
{
	*w->p++ = v;
}

static inline void oa_payload_u16(struct oa_payload *w, uint16_t v)
{
	oa_payload_put(w, &v, 2);
}

/* Attribute header: tag, key (custom keys inline), value type. */
static inline bool oa_payload_attr_head(struct oa_payload *w, enum oa_key key, const char *custom,
					size_t custom_len, enum oa_item_value type,
					size_t value_len)
{
	if (custom_len > 255)
		custom_len = 255;
	size_t need = 3 + (key == OA_KEY_CUSTOM ? 1 + custom_len : 0) + value_len;
	if (!oa_payload_room(w, need)) {
		w->dropped_attrs++;
		return false;
	}
	oa_payload_u8(w, OA_ITEM_ATTR);
	oa_payload_u8(w, (uint8_t)key);
	if (key == OA_KEY_CUSTOM) {
		oa_payload_u8(w, (uint8_t)custom_len);
		oa_payload_put(w, custom, custom_len);
	}
	oa_payload_u8(w, (uint8_t)type);
	return true;
}

static inline void oa_payload_attr_str_k(struct oa_payload *w, enum oa_key key, const char *custom,
					 size_t custom_len, const char *s, size_t len)
{
	if (len > UINT16_MAX)
		len = UINT16_MAX;
	if (oa_payload_attr_head(w, key, custom, custom_len, OA_VAL_STR, 2 + len)) {
		oa_payload_u16(w, (uint16_t)len);
		oa_payload_put(w, s, len);
	}
}

static inline void oa_payload_attr_str(struct oa_payload *w, enum oa_key key, const char *s,
				       size_t len)
{
	oa_payload_attr_str_k(w, key, 0, 0, s, len);
}

/* An attribute of type `type` whose value is a u16 length and its bytes. */
static inline void oa_payload_attr_bytes(struct oa_payload *w, enum oa_key key,
					 enum oa_item_value type, const void *bytes, size_t len)
{
	if (len > UINT16_MAX)
		len = UINT16_MAX;
	if (oa_payload_attr_head(w, key, 0, 0, type, 2 + len)) {
		oa_payload_u16(w, (uint16_t)len);
		oa_payload_put(w, bytes, len);
	}
}

/* An array of strings: list holds each one followed by a NUL, len bytes in
 * all (a list cut short by the u16 length loses its last item). */
static inline void oa_payload_attr_str_list(struct oa_payload *w, enum oa_key key, const char *list,
					    size_t len)
{
	oa_payload_attr_bytes(w, key, OA_VAL_STR_LIST, list, len);
}

/* An array of addresses, raw (OA_VAL_ADDR_LIST): the exporter formats them. */
static inline void oa_payload_attr_addr_list(struct oa_payload *w, enum oa_key key,
					     const uint8_t *list, size_t len)
{
	oa_payload_attr_bytes(w, key, OA_VAL_ADDR_LIST, list, len);
}

static inline void oa_payload_attr_int(struct oa_payload *w, enum oa_key key, int64_t v)
{
	if (oa_payload_attr_head(w, key, 0, 0, OA_VAL_INT, 8))
		oa_payload_put(w, &v, 8);
}

static inline void oa_payload_attr_static(struct oa_payload *w, enum oa_key key, const char *s)
{
	if (oa_payload_attr_head(w, key, 0, 0, OA_VAL_STATIC, sizeof s))
		oa_payload_put(w, &s, sizeof s);
}

static inline void oa_payload_attr_errno(struct oa_payload *w, enum oa_key key, int err)
{
	int32_t v = err;
	if (oa_payload_attr_head(w, key, 0, 0, OA_VAL_ERRNO, 4))
		oa_payload_put(w, &v, 4);
}

static inline void oa_payload_attr_sockaddr(struct oa_payload *w, enum oa_key key,
					    const struct sockaddr *sa, socklen_t len)
{
	if (len > 255)
		len = 255;
	if (oa_payload_attr_head(w, key, 0, 0, OA_VAL_SOCKADDR, 1 + (size_t)len)) {
		oa_payload_u8(w, (uint8_t)len);
		oa_payload_put(w, sa, len);
	}
}

static inline void oa_payload_text(struct oa_payload *w, enum oa_item_tag tag, const char *s,
				   size_t len)
{
	if (len > UINT16_MAX)
		len = UINT16_MAX;
	if (!oa_payload_room(w, 3 + len))
		return;
	oa_payload_u8(w, (uint8_t)tag);
	oa_payload_u16(w, (uint16_t)len);
	oa_payload_put(w, s, len);
}

/* The span's name: prefix and then the peer sa of a socket of the given
 * family (AF_UNSPEC: the address alone), formatted by the exporter. */
static inline void oa_payload_name_peer(struct oa_payload *w, const char *prefix, size_t prefix_len,
					int family, const struct sockaddr *sa, socklen_t len)
{
	if (len > 255)
		len = 255;
	if (!oa_payload_room(w, 3 + prefix_len + 2 + (size_t)len))
		return;
	oa_payload_u8(w, OA_ITEM_NAME_PEER);
	oa_payload_u16(w, (uint16_t)prefix_len);
	oa_payload_put(w, prefix, prefix_len);
	oa_payload_u8(w, (uint8_t)family);
	oa_payload_u8(w, (uint8_t)len);
	oa_payload_put(w, sa, len);
}

static inline void oa_payload_event(struct oa_payload *w, uint64_t ticks, const char *name,
				    size_t len)
{
	if (len > UINT16_MAX)
		len = UINT16_MAX;
	if (!oa_payload_room(w, 11 + len)) {
		w->dropped_events++;
		return;
	}
	oa_payload_u8(w, OA_ITEM_EVENT);
	oa_payload_put(w, &ticks, 8);
	oa_payload_u16(w, (uint16_t)len);
	oa_payload_put(w, name, len);
}

static inline void oa_payload_finish(struct oa_payload *w)
{
	if (w->dropped_attrs || w->dropped_events) {
		w->end += OA_PAYLOAD_DROPPED_ITEM;
		oa_payload_u8(w, OA_ITEM_DROPPED);
		oa_payload_u16(w, w->dropped_attrs);
		oa_payload_u16(w, w->dropped_events);
	}
	w->rec->payload_len = (uint16_t)(w->p - w->rec->payload);
}

#endif
