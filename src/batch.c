#include "batch.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr_text.h"
#include "copy.h"
#include "ids.h"
#include "mem.h"
#include "utf8.h"

/* The well-known attribute keys' names, with their lengths. */
static const struct oa_str key_strs[OA_KEY_COUNT] = {
#define OA_KEY_STR(id, str) [OA_KEY_##id] = {str, sizeof(str) - 1},
    OA_WELL_KNOWN_KEYS(OA_KEY_STR)
#undef OA_KEY_STR
};

const char *const oa_scope_names[] = {
    [OA_SCOPE_FUNCTIONS] = "otlpauto.functions",
    [OA_SCOPE_PROCESS] = "otlpauto.process",
    [OA_SCOPE_SOCKETS] = "otlpauto.sockets",
    [OA_SCOPE_DNS] = "otlpauto.dns",
    [OA_SCOPE_HTTP] = "otlpauto.http",
    [OA_SCOPE_FILES] = "otlpauto.files",
    [OA_SCOPE_MANUAL] = "otlpauto.manual",
    [OA_SCOPE_REDIS] = "otlpauto.redis",
    [OA_SCOPE_POSTGRESQL] = "otlpauto.postgresql",
    [OA_SCOPE_MYSQL] = "otlpauto.mysql",
};

/* Strings live in fixed chunks so pointers stay valid while the batch grows.
 * The first chunks are small, doubling up to the largest: a short process
 * (a forked child sending one span) touches, and copies from its parent, a
 * page or two instead of 64 KiB. */
#define ARENA_FIRST_CHUNK 512
#define ARENA_CHUNK	  (64 * 1024)
/* Arrays start this small, for the same reason, and double. */
#define ARRAY_FIRST_CAP 4

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t size;
	char data[];
};

/* A span as it is collected: its attributes and events are index ranges into
 * the batch-wide arrays, turned into pointers by oa_batch_view. */
struct pending_span {
	struct oa_export_span span;
	uint8_t scope;
	uint32_t first_attr;
	uint32_t first_event;
	uint32_t first_link;
	bool custom_keys; /* keys may repeat: only the manual API sets custom keys */
};

struct oa_batch {
	const struct oa_config *cfg;
	struct oa_symbols *syms;
	oa_ticks_to_unix_fn to_unix;
	struct arena_chunk *chunks; /* current first */
	struct pending_span *spans;
	size_t n_spans, cap_spans;
	struct oa_attr *attrs;
	size_t n_attrs, cap_attrs;
	struct oa_event *events;
	size_t n_events, cap_events;
	struct oa_link *links;
	size_t n_links, cap_links;
	/* the view: spans regrouped by scope */
	struct oa_export_span *by_scope;
	size_t cap_by_scope;
	struct oa_export_scope scopes[OA_SCOPE_COUNT];
	struct oa_export_batch view;
	struct oa_batch_process process;
};

static char *arena_alloc(struct oa_batch *b, size_t n)
{
	struct arena_chunk *c = b->chunks;
	if (!c || c->size - c->used < n) {
		size_t size = !c		      ? ARENA_FIRST_CHUNK
			      : c->size < ARENA_CHUNK ? c->size * 2
						      : ARENA_CHUNK;
		if (size < n)
			size = n;
		struct arena_chunk *fresh = oa_malloc(sizeof *fresh + size);
		if (!fresh)
			return NULL;
		fresh->size = size;
		fresh->used = 0;
		fresh->next = c;
		b->chunks = c = fresh;
	}
	char *p = c->data + c->used;
	c->used += n;
	return p;
}

/* Room for n elements of an array of strings, aligned for them. */
static struct oa_str *arena_str_array(struct oa_batch *b, size_t n)
{
	struct arena_chunk *c = b->chunks;
	size_t align = _Alignof(struct oa_str);
	if (c) {
		size_t aligned = (c->used + align - 1) & ~(align - 1);
		c->used = aligned < c->size ? aligned : c->size;
	}
	return (struct oa_str *)(void *)arena_alloc(b, n * sizeof(struct oa_str));
}

/* A copy that is valid UTF-8 and within the value length limit. */
static struct oa_str arena_text(struct oa_batch *b, const char *s, size_t len, uint32_t limit)
{
	struct oa_str out = {"", 0};
	if (!len)
		return out;
	if (oa_utf8_valid(s, len)) {
		if (len > limit)
			len = oa_utf8_truncate(s, len, limit);
		char *p = arena_alloc(b, len);
		if (!p)
			return out;
		oa_copy(p, s, len);
		out.ptr = p;
		out.len = (uint32_t)len;
		return out;
	}
	char *p = arena_alloc(b, 3 * len);
	if (!p)
		return out;
	size_t n = oa_utf8_sanitize(s, len, p);
	if (n > limit)
		n = oa_utf8_truncate(p, n, limit);
	out.ptr = p;
	out.len = (uint32_t)n;
	return out;
}

static bool grow(void **array, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t cap2 = *cap ? *cap * 2 : ARRAY_FIRST_CAP;
	while (cap2 < need)
		cap2 *= 2;
	void *p = oa_realloc(*array, cap2 * elem);
	if (!p)
		return false;
	*array = p;
	*cap = cap2;
	return true;
}

struct oa_batch *oa_batch_create(const struct oa_config *cfg, struct oa_symbols *syms,
				 oa_ticks_to_unix_fn to_unix)
{
	struct oa_batch *b = oa_calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->cfg = cfg;
	b->syms = syms;
	b->to_unix = to_unix;
	return b;
}

void oa_batch_set_process(struct oa_batch *b, const struct oa_batch_process *process)
{
	b->process = *process;
}

/* The link a root gets to the process span it would have been a child of. */
static void link_process(struct oa_batch *b, struct pending_span *ps)
{
	if (ps->span.n_links >= b->cfg->link_count_limit ||
	    !grow((void **)&b->links, &b->cap_links, b->n_links + 1, sizeof *b->links)) {
		ps->span.dropped_links++;
		return;
	}
	struct oa_link *l = &b->links[b->n_links++];
	memset(l, 0, sizeof *l);
	memcpy(l->trace_id, b->process.trace_id, 16);
	oa_span_id_to_bytes(b->process.span_id, l->span_id);
	l->flags = b->process.flags;
	ps->span.n_links++;
}

void oa_batch_reset(struct oa_batch *b)
{
	/* Keep the newest chunk for reuse; free the others. */
	struct arena_chunk *c = b->chunks;
	if (c) {
		struct arena_chunk *rest = c->next;
		while (rest) {
			struct arena_chunk *next = rest->next;
			oa_free(rest);
			rest = next;
		}
		c->next = NULL;
		c->used = 0;
	}
	b->n_spans = b->n_attrs = b->n_events = b->n_links = 0;
}

void oa_batch_destroy(struct oa_batch *b)
{
	if (!b)
		return;
	oa_batch_reset(b);
	oa_free(b->chunks);
	oa_free(b->spans);
	oa_free(b->attrs);
	oa_free(b->events);
	oa_free(b->links);
	oa_free(b->by_scope);
	oa_free(b);
}

size_t oa_batch_count(const struct oa_batch *b)
{
	return b->n_spans;
}

static struct oa_str cstr(const char *s)
{
	return (struct oa_str){s, (uint32_t)strlen(s)};
}

/* Adds an attribute unless the count limit is reached; NULL when dropped. A
 * key the span already has gets the new value in place: receivers reject
 * duplicate keys, and a value set again replaces the old one. */
static struct oa_attr *add_attr(struct oa_batch *b, struct pending_span *ps, struct oa_str key)
{
	for (uint32_t i = 0; ps->custom_keys && i < ps->span.n_attrs; i++) {
		struct oa_attr *a = &b->attrs[ps->first_attr + i];
		if (a->key.len == key.len && memcmp(a->key.ptr, key.ptr, key.len) == 0)
			return a;
	}
	if (ps->span.n_attrs >= b->cfg->attribute_count_limit) {
		ps->span.dropped_attrs++;
		return NULL;
	}
	if (!grow((void **)&b->attrs, &b->cap_attrs, b->n_attrs + 1, sizeof *b->attrs)) {
		ps->span.dropped_attrs++;
		return NULL;
	}
	struct oa_attr *a = &b->attrs[b->n_attrs++];
	ps->span.n_attrs++;
	a->key = key;
	return a;
}

/* A socket address as the payload carries it, aligned and zero-padded. */
union raw_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_un un;
};

static socklen_t copy_sockaddr(union raw_sockaddr *out, const uint8_t *raw, size_t len)
{
	memset(out, 0, sizeof *out);
	if (len > sizeof *out)
		len = sizeof *out;
	memcpy(out, raw, len);
	return (socklen_t)len;
}

static void format_sockaddr(struct oa_batch *b, struct oa_attr *a, const uint8_t *raw, size_t len)
{
	union raw_sockaddr addr;
	socklen_t addr_len = copy_sockaddr(&addr, raw, len);
	char text[OA_SOCKADDR_TEXT_MAX] = "";
	if (!oa_sockaddr_text(&addr.sa, addr_len, text, sizeof text))
		text[0] = '\0';
	a->type = OA_VALUE_STRING;
	a->v.s = arena_text(b, text, strlen(text), b->cfg->attribute_value_length_limit);
}

/* code.stacktrace: one line per return address, innermost first. */
static void add_stacktrace(struct oa_batch *b, struct pending_span *ps, const uint8_t *raw,
			   uint8_t count)
{
	struct oa_attr *a = add_attr(b, ps, cstr("code.stacktrace"));
	if (!a)
		return;
	char text[8192];
	size_t len = 0;
	for (uint8_t i = 0; i < count && len < sizeof text - 64; i++) {
		uintptr_t addr;
		memcpy(&addr, raw + 8 * (size_t)i, 8);
		size_t name_len = 0;
		/* A return address points after the call: look up the call itself. */
		const char *name = b->syms ? oa_symbols_name(b->syms, addr - 1, &name_len) : NULL;
		int n =
		    snprintf(text + len, sizeof text - len, "%s%.*s (0x%lx)", i ? "\n" : "",
			     (int)(name ? name_len : 1), name ? name : "?", (unsigned long)addr);
		if (n < 0)
			break;
		len += (size_t)n < sizeof text - len ? (size_t)n : sizeof text - len - 1;
	}
	a->type = OA_VALUE_STRING;
	a->v.s = arena_text(b, text, len, b->cfg->attribute_value_length_limit);
}

/* Reads a u16-length-prefixed string at p; false when it would overrun. */
static bool read_text(const uint8_t **p, const uint8_t *end, const char **s, uint16_t *len)
{
	if (end - *p < 2)
		return false;
	memcpy(len, *p, 2);
	*p += 2;
	if (end - *p < *len)
		return false;
	*s = (const char *)*p;
	*p += *len;
	return true;
}

/* An array of strings from NUL-ended items; the value length limit applies
 * to each (as the specification says for arrays). Bytes after the last NUL
 * are not an item. */
static void decode_str_list(struct oa_batch *b, struct oa_attr *a, const char *s, size_t len,
			    uint32_t limit)
{
	uint32_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\0';
	struct oa_str *items = n ? arena_str_array(b, n) : NULL;
	a->type = OA_VALUE_STRING_ARRAY;
	a->v.array.items = items;
	a->v.array.n = items ? n : 0;
	for (uint32_t i = 0; items && i < n; i++) {
		size_t item_len = strlen(s);
		items[i] = arena_text(b, s, item_len, limit);
		s += item_len + 1;
	}
}

/* The size of one raw address of a list (a family byte, its bytes); 0 for
 * an unknown family, which ends the list. */
static size_t addr_entry_size(uint8_t family)
{
	return family == AF_INET ? 1 + 4 : family == AF_INET6 ? 1 + 16 : 0;
}

/* An array of strings from raw addresses (OA_VAL_ADDR_LIST), formatted here
 * rather than on the application's thread. An entry cut short is none. */
static void decode_addr_list(struct oa_batch *b, struct oa_attr *a, const uint8_t *s, size_t len,
			     uint32_t limit)
{
	uint32_t n = 0;
	for (size_t at = 0, size; at < len && (size = addr_entry_size(s[at])) && size <= len - at;
	     at += size)
		n++;
	struct oa_str *items = n ? arena_str_array(b, n) : NULL;
	a->type = OA_VALUE_STRING_ARRAY;
	a->v.array.items = items;
	a->v.array.n = items ? n : 0;
	for (uint32_t i = 0; items && i < n; i++) {
		char text[INET6_ADDRSTRLEN] = "";
		oa_addr_bytes_text(s[0], s + 1, text, sizeof text);
		items[i] = arena_text(b, text, strlen(text), limit);
		s += addr_entry_size(s[0]);
	}
}

/* Decodes one attribute item at p (after its tag). False on a malformed item. */
static bool decode_attr(struct oa_batch *b, struct pending_span *ps, const uint8_t **pp,
			const uint8_t *end)
{
	const uint8_t *p = *pp;
	if (end - p < 2)
		return false;
	uint8_t key = *p++;
	struct oa_str key_str;
	if (key == OA_KEY_CUSTOM) {
		ps->custom_keys = true;
		uint8_t klen = *p++;
		if (end - p < klen + 1)
			return false;
		key_str = arena_text(b, (const char *)p, klen, UINT32_MAX);
		p += klen;
	} else if (key < OA_KEY_COUNT) {
		key_str = key_strs[key];
	} else {
		return false;
	}
	uint8_t type = *p++;
	uint32_t limit = b->cfg->attribute_value_length_limit;
	/* Values go straight into the attribute: through a local struct oa_attr,
	 * its 16-byte copy stalled on the narrower stores that filled it. */
	struct oa_attr *a;
	switch (type) {
	case OA_VAL_STR: {
		const char *s;
		uint16_t len;
		if (!read_text(&p, end, &s, &len))
			return false;
		if ((a = add_attr(b, ps, key_str)) != NULL) {
			a->type = OA_VALUE_STRING;
			a->v.s = arena_text(b, s, len, limit);
		}
		break;
	}
	case OA_VAL_STR_LIST: {
		const char *s;
		uint16_t len;
		if (!read_text(&p, end, &s, &len))
			return false;
		if ((a = add_attr(b, ps, key_str)) != NULL)
			decode_str_list(b, a, s, len, limit);
		break;
	}
	case OA_VAL_ADDR_LIST: {
		const char *s;
		uint16_t len;
		if (!read_text(&p, end, &s, &len))
			return false;
		if ((a = add_attr(b, ps, key_str)) != NULL)
			decode_addr_list(b, a, (const uint8_t *)s, len, limit);
		break;
	}
	case OA_VAL_INT:
	case OA_VAL_DOUBLE:
		if (end - p < 8)
			return false;
		if ((a = add_attr(b, ps, key_str)) != NULL) {
			a->type = type == OA_VAL_INT ? OA_VALUE_INT : OA_VALUE_DOUBLE;
			memcpy(type == OA_VAL_INT ? (void *)&a->v.i : (void *)&a->v.d, p, 8);
		}
		p += 8;
		break;
	case OA_VAL_BOOL:
		if (end - p < 1)
			return false;
		if ((a = add_attr(b, ps, key_str)) != NULL) {
			a->type = OA_VALUE_BOOL;
			a->v.b = *p != 0;
		}
		p++;
		break;
	case OA_VAL_STATIC: {
		const char *s;
		if (end - p < (long)sizeof s)
			return false;
		memcpy(&s, p, sizeof s);
		p += sizeof s;
		if ((a = add_attr(b, ps, key_str)) != NULL) {
			a->type = OA_VALUE_STRING;
			a->v.s = cstr(s);
		}
		break;
	}
	case OA_VAL_ERRNO: {
		int32_t err;
		if (end - p < 4)
			return false;
		memcpy(&err, p, 4);
		p += 4;
		const char *name = strerrorname_np(err);
		char fallback[16];
		if (!name) {
			snprintf(fallback, sizeof fallback, "errno %d", err);
			name = fallback;
		}
		if ((a = add_attr(b, ps, key_str)) != NULL) {
			a->type = OA_VALUE_STRING;
			a->v.s = arena_text(b, name, strlen(name), limit);
		}
		break;
	}
	case OA_VAL_SOCKADDR: {
		if (end - p < 1)
			return false;
		uint8_t len = *p++;
		if (end - p < len)
			return false;
		if ((a = add_attr(b, ps, key_str)) != NULL)
			format_sockaddr(b, a, p, len);
		p += len;
		break;
	}
	default:
		return false;
	}
	*pp = p;
	return true;
}

static void decode_payload(struct oa_batch *b, struct pending_span *ps, const struct oa_record *rec)
{
	const uint8_t *p = rec->payload;
	const uint8_t *end = p + rec->payload_len;
	while (p < end) {
		uint8_t tag = *p++;
		const char *s;
		uint16_t len;
		switch (tag) {
		case OA_ITEM_ATTR:
			if (!decode_attr(b, ps, &p, end))
				return;
			break;
		case OA_ITEM_EVENT: {
			uint64_t ticks;
			if (end - p < 8)
				return;
			memcpy(&ticks, p, 8);
			p += 8;
			if (!read_text(&p, end, &s, &len))
				return;
			if (ps->span.n_events >= b->cfg->event_count_limit ||
			    !grow((void **)&b->events, &b->cap_events, b->n_events + 1,
				  sizeof *b->events)) {
				ps->span.dropped_events++;
				break;
			}
			struct oa_event *e = &b->events[b->n_events++];
			memset(e, 0, sizeof *e);
			e->time_unix_nano = b->to_unix(ticks);
			e->name = arena_text(b, s, len, UINT32_MAX);
			ps->span.n_events++;
			break;
		}
		case OA_ITEM_STATUS_MSG:
			if (!read_text(&p, end, &s, &len))
				return;
			ps->span.status_message = arena_text(b, s, len, UINT32_MAX);
			break;
		case OA_ITEM_TRACE_STATE:
			if (!read_text(&p, end, &s, &len))
				return;
			ps->span.trace_state = arena_text(b, s, len, UINT32_MAX);
			break;
		case OA_ITEM_NAME:
			if (!read_text(&p, end, &s, &len))
				return;
			ps->span.name = arena_text(b, s, len, UINT32_MAX);
			break;
		case OA_ITEM_NAME_PEER: {
			if (!read_text(&p, end, &s, &len) || end - p < 2 || end - p - 2 < p[1])
				return;
			int family = p[0];
			union raw_sockaddr peer;
			socklen_t peer_len = copy_sockaddr(&peer, p + 2, p[1]);
			p += 2 + p[1];
			char name[64 + OA_SOCKADDR_TEXT_MAX + 8];
			size_t prefix_len = len < 64 ? len : 64;
			memcpy(name, s, prefix_len);
			size_t n = prefix_len + oa_sockaddr_peer_text(family, &peer.sa, peer_len,
								      name + prefix_len,
								      sizeof name - prefix_len);
			ps->span.name = arena_text(b, name, n, UINT32_MAX);
			break;
		}
		case OA_ITEM_STACK: {
			if (end - p < 1)
				return;
			uint8_t count = *p++;
			if (end - p < 8 * count)
				return;
			add_stacktrace(b, ps, p, count);
			p += 8 * count;
			break;
		}
		case OA_ITEM_LINK: {
			if (end - p < 16 + 8 + 1)
				return;
			if (ps->span.n_links >= b->cfg->link_count_limit ||
			    !grow((void **)&b->links, &b->cap_links, b->n_links + 1,
				  sizeof *b->links)) {
				ps->span.dropped_links++;
				p += 16 + 8 + 1;
				break;
			}
			struct oa_link *l = &b->links[b->n_links++];
			memset(l, 0, sizeof *l);
			memcpy(l->trace_id, p, 16);
			uint64_t span_id;
			memcpy(&span_id, p + 16, 8);
			oa_span_id_to_bytes(span_id, l->span_id);
			l->flags = p[24];
			p += 16 + 8 + 1;
			ps->span.n_links++;
			break;
		}
		case OA_ITEM_DROPPED_LINKS: {
			uint16_t links;
			if (end - p < 2)
				return;
			memcpy(&links, p, 2);
			p += 2;
			ps->span.dropped_links += links;
			break;
		}
		case OA_ITEM_DROPPED: {
			uint16_t attrs, events;
			if (end - p < 4)
				return;
			memcpy(&attrs, p, 2);
			memcpy(&events, p + 2, 2);
			p += 4;
			ps->span.dropped_attrs += attrs;
			ps->span.dropped_events += events;
			break;
		}
		default:
			return;
		}
	}
}

bool oa_batch_add(struct oa_batch *b, const struct oa_record *rec, const char *thread_name)
{
	if (!grow((void **)&b->spans, &b->cap_spans, b->n_spans + 1, sizeof *b->spans))
		return false;
	struct pending_span *ps = &b->spans[b->n_spans];
	memset(ps, 0, sizeof *ps);
	ps->scope = rec->scope < OA_SCOPE_COUNT ? rec->scope : OA_SCOPE_MANUAL;
	ps->first_attr = (uint32_t)b->n_attrs;
	ps->first_event = (uint32_t)b->n_events;
	ps->first_link = (uint32_t)b->n_links;
	struct oa_export_span *sp = &ps->span;
	memcpy(sp->trace_id, rec->trace_id, 16);
	oa_span_id_to_bytes(rec->span_id, sp->span_id);
	sp->has_parent = rec->rec_flags & OA_REC_F_HAS_PARENT;
	if (sp->has_parent)
		oa_span_id_to_bytes(rec->parent_span_id, sp->parent_span_id);
	sp->kind = rec->kind;
	sp->start_unix_nano = b->to_unix(rec->start);
	sp->end_unix_nano = b->to_unix(rec->end);
	if (sp->end_unix_nano < sp->start_unix_nano)
		sp->end_unix_nano = sp->start_unix_nano;
	sp->status_code = rec->status;
	sp->flags = rec->trace_flags | OA_SPAN_FLAGS_HAS_IS_REMOTE |
		    ((rec->rec_flags & OA_REC_F_PARENT_REMOTE) ? OA_SPAN_FLAGS_IS_REMOTE : 0);

	if (rec->name_source == OA_NAME_FUNCTION) {
		size_t len = 0;
		const char *name = b->syms ? oa_symbols_name(b->syms, rec->subject, &len) : NULL;
		char raw[2 + 16 + 1];
		if (!name) {
			len =
			    (size_t)snprintf(raw, sizeof raw, "0x%lx", (unsigned long)rec->subject);
			name = raw;
		}
		sp->name = arena_text(b, name, len, UINT32_MAX);
		struct oa_attr *a = add_attr(b, ps, cstr("code.function.name"));
		if (a) {
			a->type = OA_VALUE_STRING;
			a->v.s = sp->name;
		}
	} else if (rec->name_source == OA_NAME_STATIC) {
		sp->name = cstr((const char *)rec->subject);
	}
	decode_payload(b, ps, rec);
	if ((rec->rec_flags & OA_REC_F_LINK_PROCESS) && b->process.span_id)
		link_process(b, ps);
	if (rec->rec_flags & OA_REC_F_PROCESS_SPAN) {
		for (size_t i = 0; i < b->process.n_attrs; i++) {
			struct oa_attr *a = add_attr(b, ps, b->process.attrs[i].key);
			if (a)
				*a = b->process.attrs[i];
		}
	}
	if (rec->tid) {
		struct oa_attr *a = add_attr(b, ps, cstr("thread.id"));
		if (a) {
			a->type = OA_VALUE_INT;
			a->v.i = rec->tid;
		}
		if (thread_name && (a = add_attr(b, ps, cstr("thread.name")))) {
			a->type = OA_VALUE_STRING;
			a->v.s = arena_text(b, thread_name, strlen(thread_name), UINT32_MAX);
		}
	}
	b->n_spans++;
	return true;
}

const struct oa_export_batch *oa_batch_view_range(struct oa_batch *b,
						  const struct oa_attr *resource, size_t n_resource,
						  size_t first, size_t count)
{
	if (!grow((void **)&b->by_scope, &b->cap_by_scope, count ? count : 1, sizeof *b->by_scope))
		count = 0;
	size_t per_scope[OA_SCOPE_COUNT] = {0};
	for (size_t i = first; i < first + count; i++)
		per_scope[b->spans[i].scope]++;
	size_t offset[OA_SCOPE_COUNT], at = 0;
	for (int s = 0; s < OA_SCOPE_COUNT; s++) {
		offset[s] = at;
		at += per_scope[s];
	}
	size_t n_scopes = 0;
	for (int s = 0; s < OA_SCOPE_COUNT; s++) {
		if (!per_scope[s])
			continue;
		struct oa_export_scope *sc = &b->scopes[n_scopes++];
		sc->name = cstr(oa_scope_names[s]);
		sc->version = cstr(OTLPAUTO_VERSION);
		sc->spans = b->by_scope + offset[s];
		sc->n_spans = per_scope[s];
	}
	for (size_t i = first; i < first + count; i++) {
		struct pending_span *ps = &b->spans[i];
		struct oa_export_span *out = &b->by_scope[offset[ps->scope]++];
		*out = ps->span;
		out->attrs = out->n_attrs ? b->attrs + ps->first_attr : NULL;
		out->events = out->n_events ? b->events + ps->first_event : NULL;
		out->links = out->n_links ? b->links + ps->first_link : NULL;
	}
	b->view.resource_attrs = resource;
	b->view.n_resource_attrs = n_resource;
	b->view.scopes = b->scopes;
	b->view.n_scopes = n_scopes;
	return &b->view;
}

const struct oa_export_batch *oa_batch_view(struct oa_batch *b, const struct oa_attr *resource,
					    size_t n_resource)
{
	return oa_batch_view_range(b, resource, n_resource, 0, b->n_spans);
}
