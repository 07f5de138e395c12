/* The span record hooks write into a thread's ring. Fixed-size slots of
 * OA_SLOT_SIZE bytes: the header below and the start of a payload of typed
 * items (attributes, events, status message) that continues into following
 * slots when one is not enough. Everything that needs formatting (function
 * names, socket addresses, errno names) is stored raw and formatted by the
 * exporter. */
#ifndef OTLPAUTO_RECORD_H
#define OTLPAUTO_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define OA_SLOT_SIZE		128
#define OA_MAX_SLOTS_PER_RECORD 255

enum oa_record_type {
	OA_REC_SPAN = 1,
	OA_REC_PAD = 2, /* skipped: fills the ring's end so records never wrap */
};

/* Where the span name comes from. */
enum oa_name_source {
	OA_NAME_FUNCTION = 1, /* subject is a function address: symbol name */
	OA_NAME_STATIC = 2,   /* subject is a string with static lifetime */
	OA_NAME_PAYLOAD = 3,  /* the payload's OA_ITEM_NAME item */
};

/* Instrumentation scopes: one per hook family. */
enum oa_scope {
	OA_SCOPE_FUNCTIONS,
	OA_SCOPE_PROCESS,
	OA_SCOPE_SOCKETS,
	OA_SCOPE_DNS,
	OA_SCOPE_HTTP,
	OA_SCOPE_FILES,
	OA_SCOPE_MANUAL,
	OA_SCOPE_REDIS,
	OA_SCOPE_POSTGRESQL,
	OA_SCOPE_MYSQL,
	OA_SCOPE_COUNT,
};

/* Why a span ended, when it is not a normal return. */
enum oa_end_reason {
	OA_END_NORMAL,
	OA_END_PROCESS_EXIT,
	OA_END_THREAD_EXIT,
	OA_END_EXEC,
	OA_END_UNWOUND, /* longjmp or exception: its exit never came */
};

#define OA_REC_F_HAS_PARENT    0x01
#define OA_REC_F_PARENT_REMOTE 0x02
/* A root that would have been a child of the process span, had the process
 * been young: the exporter links it to the process span. */
#define OA_REC_F_LINK_PROCESS 0x04
/* The span of the process's lifetime: the exporter adds the process's
 * command line from its resource. */
#define OA_REC_F_PROCESS_SPAN 0x08

struct oa_record {
	uint8_t type;	 /* enum oa_record_type */
	uint8_t n_slots; /* slots this record takes, header included */
	uint8_t kind;	 /* enum oa_span_kind */
	uint8_t status;	 /* enum oa_status_code */
	uint8_t scope;	 /* enum oa_scope */
	uint8_t name_source;
	uint8_t trace_flags; /* W3C flags */
	uint8_t rec_flags;   /* OA_REC_F_* */
	uint16_t payload_len;
	uint8_t end_reason;
	uint8_t reserved;
	uint32_t tid;
	uint8_t trace_id[16];
	uint64_t span_id;
	uint64_t parent_span_id;
	uint64_t start; /* clock ticks, see clock.h */
	uint64_t end;
	uintptr_t subject; /* function address or static name */
	uint8_t payload[];
};

#define OA_RECORD_HEADER_SIZE offsetof(struct oa_record, payload)
_Static_assert(OA_RECORD_HEADER_SIZE == 72, "record header layout");

/* Payload items: a tag byte, then the item. */
enum oa_item_tag {
	OA_ITEM_ATTR = 1,	   /* key, value */
	OA_ITEM_EVENT = 2,	   /* u64 time ticks, u16 len, name bytes */
	OA_ITEM_STATUS_MSG = 3,	   /* u16 len, bytes */
	OA_ITEM_NAME = 4,	   /* u16 len, bytes */
	OA_ITEM_STACK = 5,	   /* u8 count, count * u64 return addresses */
	OA_ITEM_DROPPED = 6,	   /* u16 attributes, u16 events dropped by the producer */
	OA_ITEM_LINK = 7,	   /* 16-byte trace id, u64 span id, u8 W3C flags */
	OA_ITEM_DROPPED_LINKS = 8, /* u16 links dropped by the producer */
	OA_ITEM_TRACE_STATE = 9,   /* u16 len, bytes: the W3C tracestate of the span */
	/* u16 len, prefix bytes, u8 socket family, u8 len, struct sockaddr
	 * bytes: the name is the prefix and the peer (oa_sockaddr_peer_text;
	 * family AF_UNSPEC: the address alone). */
	OA_ITEM_NAME_PEER = 10,
};

/* Attribute keys: well-known keys are one byte; OA_KEY_CUSTOM is followed by
 * u8 len and the key bytes. */
#define OA_WELL_KNOWN_KEYS(X)                                                                      \
	X(CODE_FUNCTION_NAME, "code.function.name")                                                \
	X(CODE_STACKTRACE, "code.stacktrace")                                                      \
	X(THREAD_ID, "thread.id")                                                                  \
	X(THREAD_NAME, "thread.name")                                                              \
	X(OTLPAUTO_END_REASON, "otlpauto.end_reason")                                              \
	X(PROCESS_PID, "process.pid")                                                              \
	X(PROCESS_EXECUTABLE_PATH, "process.executable.path")                                      \
	X(PROCESS_COMMAND_ARGS, "process.command_args")                                            \
	X(PROCESS_EXIT_CODE, "process.exit.code")                                                  \
	X(ERROR_TYPE, "error.type")                                                                \
	X(NETWORK_PEER_ADDRESS, "network.peer.address")                                            \
	X(NETWORK_PEER_PORT, "network.peer.port")                                                  \
	X(NETWORK_TRANSPORT, "network.transport")                                                  \
	X(NETWORK_TYPE, "network.type")                                                            \
	X(NETWORK_PROTOCOL_VERSION, "network.protocol.version")                                    \
	X(SERVER_ADDRESS, "server.address")                                                        \
	X(SERVER_PORT, "server.port")                                                              \
	X(CLIENT_ADDRESS, "client.address")                                                        \
	X(CLIENT_PORT, "client.port")                                                              \
	X(DNS_QUESTION_NAME, "dns.question.name")                                                  \
	X(DNS_ANSWERS, "dns.answers")                                                              \
	X(HTTP_REQUEST_METHOD, "http.request.method")                                              \
	X(HTTP_RESPONSE_STATUS_CODE, "http.response.status_code")                                  \
	X(URL_FULL, "url.full")                                                                    \
	X(URL_PATH, "url.path")                                                                    \
	X(URL_QUERY, "url.query")                                                                  \
	X(URL_SCHEME, "url.scheme")                                                                \
	X(USER_AGENT_ORIGINAL, "user_agent.original")                                              \
	X(FILE_PATH, "file.path")                                                                  \
	X(PROCESS_PARENT_PID, "process.parent_pid")                                                \
	X(PROCESS_EXECUTABLE_NAME, "process.executable.name")                                      \
	X(DB_SYSTEM_NAME, "db.system.name")                                                        \
	X(DB_NAMESPACE, "db.namespace")                                                            \
	X(DB_OPERATION_NAME, "db.operation.name")                                                  \
	X(DB_COLLECTION_NAME, "db.collection.name")                                                \
	X(DB_QUERY_TEXT, "db.query.text")                                                          \
	X(DB_QUERY_SUMMARY, "db.query.summary")                                                    \
	X(DB_RESPONSE_STATUS_CODE, "db.response.status_code")

enum oa_key {
	OA_KEY_CUSTOM = 0,
#define OA_KEY_ENUM(id, str) OA_KEY_##id,
	OA_WELL_KNOWN_KEYS(OA_KEY_ENUM)
#undef OA_KEY_ENUM
	    OA_KEY_COUNT,
};

enum oa_item_value {
	OA_VAL_STR = 1,	     /* u16 len, bytes */
	OA_VAL_INT = 2,	     /* i64 */
	OA_VAL_DOUBLE = 3,   /* f64 */
	OA_VAL_BOOL = 4,     /* u8 */
	OA_VAL_SOCKADDR = 5, /* u8 len, struct sockaddr bytes: formatted as an address */
	OA_VAL_ERRNO = 6,    /* i32: formatted as its name (ECONNREFUSED) */
	OA_VAL_STATIC = 7,   /* const char * with static lifetime */
	OA_VAL_STR_LIST = 8, /* u16 len, bytes: strings, each ended by a NUL: an array */
	/* u16 len, bytes: addresses, each a u8 family (AF_INET, AF_INET6) and
	 * its 4 or 16 bytes: an array of strings, formatted by the exporter */
	OA_VAL_ADDR_LIST = 9,
};

#endif
