#include "mysql_parse.h"

#include <string.h>

_Static_assert(sizeof(struct oa_mysql_parser) <= 720, "parser state must stay small");

enum state {
	ST_HEADER, /* the 3-byte length and the sequence id */
	ST_PAYLOAD,
	ST_DEAD,
};

enum phase {
	PH_LOGIN,      /* client: the handshake response comes next */
	PH_GREETING,   /* server: the initial handshake comes next */
	PH_AUTH,       /* server: authentication until an OK or ERR */
	PH_COMMANDS,   /* commands and their responses */
	PH_COMPRESSED, /* the compressed protocol was negotiated: give up */
};

/* What the bytes of the current payload are. */
enum field {
	F_SKIP,
	F_HEAD,		  /* the first bytes of a server packet, into head */
	F_GREETING,	  /* the first byte of the server's first packet */
	F_VERSION,	  /* the initial handshake's server version */
	F_LOGIN_FIXED,	  /* the handshake response's fixed part, into head */
	F_USER,		  /* its user name */
	F_AUTH_LENENC,	  /* the length of the auth response, length-encoded */
	F_AUTH_LEN1,	  /* ... in one byte */
	F_AUTH_NUL,	  /* an auth response ending with a NUL */
	F_AUTH_SKIP,	  /* an auth response of a known length */
	F_DATABASE,	  /* the handshake response's database */
	F_COMMAND,	  /* the command byte */
	F_ATTRIBUTES,	  /* COM_QUERY with query attributes: their count */
	F_ATTRIBUTE_SETS, /* ... and the count of their sets */
	F_TEXT,		  /* the rest of the payload, into text */
	F_STATEMENT_ID,	  /* four bytes after the command byte */
};

/* Where the server is in a response. */
enum response {
	RS_NEW,		   /* the next packet answers the next command */
	RS_FIRST,	   /* the next packet starts (another result of) the response */
	RS_COLUMNS,	   /* a result set: column definitions, then rows */
	RS_ROWS,	   /* rows without definitions (COM_STMT_FETCH) */
	RS_PREPARE_DEFS,   /* parameter and column definitions after a COM_STMT_PREPARE_OK */
	RS_FIELD_LIST,	   /* column definitions until an EOF */
	RS_AUTHENTICATING, /* COM_CHANGE_USER: until an OK or ERR */
};

#define MAX_PACKET	     0xffffffu /* a longer payload continues in the next packet */
#define SERVER_STATUS_CURSOR 0x0040u
#define SERVER_MORE_RESULTS  0x0008u
#define HANDSHAKE_CAPS_LOW   13 /* offsets after the initial handshake's version */
#define HANDSHAKE_CAPS_HIGH  18
#define LOGIN_FIXED_41	     32 /* capabilities, max packet, charset, filler */
#define LOGIN_FIXED_320	     5

void oa_mysql_parser_init(struct oa_mysql_parser *p, enum oa_mysql_role role)
{
	memset(p, 0, sizeof *p);
	p->role = (uint8_t)role;
	p->phase = role == OA_MYSQL_CLIENT ? PH_LOGIN : PH_GREETING;
}

static bool has_response(uint8_t command)
{
	return command != OA_MYSQL_COM_QUIT && command != OA_MYSQL_COM_STMT_CLOSE &&
	       command != OA_MYSQL_COM_STMT_SEND_LONG_DATA;
}

bool oa_mysql_expect_response(struct oa_mysql_parser *p, uint8_t command)
{
	if (p->role != OA_MYSQL_SERVER || !has_response(command) ||
	    p->pending_count == OA_MYSQL_PENDING_MAX)
		return false;
	p->pending[(p->pending_first + p->pending_count++) % OA_MYSQL_PENDING_MAX] = command;
	return true;
}

void oa_mysql_set_client_capabilities(struct oa_mysql_parser *p, uint32_t capabilities)
{
	p->client_capabilities = capabilities;
	p->client_known = true;
}

static uint8_t pop_pending(struct oa_mysql_parser *p)
{
	if (!p->pending_count)
		return OA_MYSQL_COM_QUERY;
	uint8_t command = p->pending[p->pending_first];
	p->pending_first = (p->pending_first + 1) % OA_MYSQL_PENDING_MAX;
	p->pending_count--;
	return command;
}

/* What both sides use: the server's offer and the client's choice (taken to
 * be everything offered but compression when the caller did not say). */
static uint32_t negotiated(const struct oa_mysql_parser *p)
{
	uint32_t client = p->client_known
			      ? p->client_capabilities
			      : ~(OA_MYSQL_CLIENT_COMPRESS | OA_MYSQL_CLIENT_ZSTD_COMPRESSION);
	return p->capabilities & client;
}

static void clear_event(struct oa_mysql_event *ev, enum oa_mysql_event_kind kind)
{
	memset(ev, 0, sizeof *ev);
	ev->kind = (uint8_t)kind;
}

static void give_up(struct oa_mysql_parser *p, struct oa_mysql_event *ev,
		    enum oa_mysql_gave_up_reason reason)
{
	clear_event(ev, OA_MYSQL_GAVE_UP);
	/* Before the first event, whatever went wrong says this is not MySQL. */
	ev->reason =
	    (uint8_t)(p->started || reason == OA_MYSQL_COMPRESSED ? reason : OA_MYSQL_NOT_MYSQL);
	p->state = ST_DEAD;
}

static uint16_t le16(const uint8_t *b)
{
	return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* One byte of a length-encoded integer; true when it is complete. */
static bool lenenc_byte(struct oa_mysql_parser *p, uint8_t c)
{
	if (!p->lenenc_left && !p->lenenc_shift) {
		p->number = c < 0xfb ? c : 0;
		p->lenenc_left = c == 0xfc ? 2 : c == 0xfd ? 3 : c == 0xfe ? 8 : 0;
		p->lenenc_shift = p->lenenc_left ? 1 : 0;
		return !p->lenenc_left;
	}
	p->number |= (uint64_t)c << (8 * (p->lenenc_shift++ - 1));
	if (--p->lenenc_left)
		return false;
	p->lenenc_shift = 0;
	return true;
}

/* A length-encoded integer inside head at *pos; false when head ends first. */
static bool head_lenenc(const struct oa_mysql_parser *p, unsigned *pos, uint64_t *value)
{
	if (*pos >= p->head_len)
		return false;
	uint8_t c = p->head[*pos];
	unsigned size = c == 0xfc ? 2 : c == 0xfd ? 3 : c == 0xfe ? 8 : 0;
	if (*pos + 1 + size > p->head_len)
		return false;
	*value = c < 0xfb ? c : 0;
	for (unsigned k = 0; k < size; k++)
		*value |= (uint64_t)p->head[*pos + 1 + k] << (8 * k);
	*pos += 1 + size;
	return true;
}

/* Copies a string's bytes into buf up to cap - 1, stopping at a NUL (which
 * ends it); returns the bytes taken, *ended when the NUL was among them. */
static size_t string_bytes(struct oa_mysql_parser *p, char *buf, uint16_t *len, size_t cap,
			   const uint8_t *data, size_t n, bool *ended)
{
	const uint8_t *nul = memchr(data, '\0', n);
	size_t part = nul ? (size_t)(nul - data) : n;
	size_t room = cap - 1 - *len, take = part < room ? part : room;
	memcpy(buf + *len, data, take);
	*len = (uint16_t)(*len + take);
	buf[*len] = '\0';
	if (take < part)
		p->flags |= OA_MYSQL_TRUNCATED;
	*ended = nul != NULL;
	return nul ? part + 1 : n;
}

static void after_auth_response(struct oa_mysql_parser *p)
{
	p->field = le32(p->head) & OA_MYSQL_CLIENT_CONNECT_WITH_DB ? F_DATABASE : F_SKIP;
}

static void after_user(struct oa_mysql_parser *p)
{
	uint32_t caps = p->login_fixed == LOGIN_FIXED_41 ? le32(p->head) : le16(p->head);
	if (!(caps & OA_MYSQL_CLIENT_PROTOCOL_41)) /* HandshakeResponse320 */
		p->field = caps & OA_MYSQL_CLIENT_CONNECT_WITH_DB ? F_AUTH_NUL : F_SKIP;
	else if (caps & OA_MYSQL_CLIENT_PLUGIN_AUTH_LENENC_DATA)
		p->field = F_AUTH_LENENC;
	else if (caps & OA_MYSQL_CLIENT_SECURE_CONNECTION)
		p->field = F_AUTH_LEN1;
	else
		p->field = F_AUTH_NUL;
}

static void after_command_byte(struct oa_mysql_parser *p, uint8_t c)
{
	p->command = c;
	switch (c) {
	case OA_MYSQL_COM_QUERY:
		p->field =
		    p->capabilities & OA_MYSQL_CLIENT_QUERY_ATTRIBUTES ? F_ATTRIBUTES : F_TEXT;
		break;
	case OA_MYSQL_COM_STMT_PREPARE:
	case OA_MYSQL_COM_INIT_DB:
		p->field = F_TEXT;
		break;
	case OA_MYSQL_COM_STMT_EXECUTE:
	case OA_MYSQL_COM_STMT_SEND_LONG_DATA:
	case OA_MYSQL_COM_STMT_CLOSE:
	case OA_MYSQL_COM_STMT_RESET:
	case OA_MYSQL_COM_STMT_FETCH:
		p->field = F_STATEMENT_ID;
		break;
	default:
		p->field = F_SKIP;
		break;
	}
}

/* Bytes of a payload (n > 0); returns how many it took, at least one. p->total
 * is the position in the logical payload of data[0]. */
static size_t payload_bytes(struct oa_mysql_parser *p, const uint8_t *data, size_t n, bool *ok)
{
	uint8_t c = data[0];
	bool ended;
	size_t used;
	*ok = true;
	switch (p->field) {
	case F_HEAD: {
		size_t take = sizeof p->head - p->head_len;
		take = take < n ? take : n;
		memcpy(p->head + p->head_len, data, take);
		p->head_len = (uint8_t)(p->head_len + take);
		if (p->head_len == sizeof p->head)
			p->field = F_SKIP;
		return take;
	}
	case F_GREETING:
		p->head[0] = c;
		p->head_len = 1;
		/* Protocol version 10, or an ERR ("Host ... is not allowed to connect"). */
		if (c == 0x0a)
			p->field = F_VERSION;
		else if (c == 0xff)
			p->field = F_HEAD;
		else
			*ok = false;
		return 1;
	case F_VERSION:
		used = string_bytes(p, p->text, &p->text_len, sizeof p->text, data, n, &ended);
		if (ended) {
			p->head_len = 0; /* head takes the fixed fields after it */
			p->field = F_HEAD;
		}
		return used;
	case F_LOGIN_FIXED:
		p->head[p->head_len++] = c;
		/* Without CLIENT_PROTOCOL_41 the fixed part is the old, short one. */
		if (p->head_len == 2 && !(le16(p->head) & OA_MYSQL_CLIENT_PROTOCOL_41))
			p->login_fixed = LOGIN_FIXED_320;
		if (p->head_len == p->login_fixed)
			p->field = F_USER;
		return 1;
	case F_USER:
		used = string_bytes(p, p->text, &p->text_len, sizeof p->text, data, n, &ended);
		if (ended)
			after_user(p);
		return used;
	case F_AUTH_LENENC:
		if (lenenc_byte(p, c)) {
			p->number_left = p->number;
			if (p->number_left)
				p->field = F_AUTH_SKIP;
			else
				after_auth_response(p);
		}
		return 1;
	case F_AUTH_LEN1:
		p->number_left = c;
		if (c)
			p->field = F_AUTH_SKIP;
		else
			after_auth_response(p);
		return 1;
	case F_AUTH_SKIP:
		used = p->number_left < n ? (size_t)p->number_left : n;
		p->number_left -= used;
		if (!p->number_left)
			after_auth_response(p);
		return used;
	case F_AUTH_NUL: {
		const uint8_t *nul = memchr(data, '\0', n);
		if (!nul)
			return n;
		after_auth_response(p);
		return (size_t)(nul - data) + 1;
	}
	case F_DATABASE:
		used = string_bytes(p, p->name, &p->name_len, sizeof p->name, data, n, &ended);
		if (ended)
			p->field = F_SKIP;
		return used;
	case F_COMMAND:
		after_command_byte(p, c);
		return 1;
	case F_ATTRIBUTES:
		if (lenenc_byte(p, c)) {
			if (p->number) {
				p->flags |= OA_MYSQL_ATTRIBUTES; /* values before the text */
				p->field = F_SKIP;
			} else {
				p->field = F_ATTRIBUTE_SETS;
			}
		}
		return 1;
	case F_ATTRIBUTE_SETS:
		if (lenenc_byte(p, c))
			p->field = F_TEXT;
		return 1;
	case F_TEXT:
		used = string_bytes(p, p->text, &p->text_len, sizeof p->text, data, n, &ended);
		/* A NUL inside the text (a binary literal) ends what is captured. */
		if (ended || p->text_len == sizeof p->text - 1) {
			if (ended)
				p->flags |= OA_MYSQL_TRUNCATED;
			p->field = F_SKIP;
		}
		return used;
	case F_STATEMENT_ID:
		p->statement_id |= (uint32_t)c << (8 * (p->total - 1));
		if (p->total == 4)
			p->field = F_SKIP;
		return 1;
	default:
		return n;
	}
}

/* A packet header is complete: check it and set up its payload. */
static bool packet_start(struct oa_mysql_parser *p)
{
	p->state = ST_PAYLOAD;
	p->remaining = p->length;
	if (p->continued)
		return true;
	p->total = 0;
	p->head_len = 0;
	p->lenenc_left = p->lenenc_shift = 0;
	if (p->role == OA_MYSQL_CLIENT) {
		p->flags = 0;
		p->text_len = p->name_len = 0;
		p->text[0] = p->name[0] = '\0';
		p->statement_id = 0;
		p->command_packet = false;
		if (p->phase == PH_LOGIN) {
			p->field = F_LOGIN_FIXED;
			p->login_fixed = LOGIN_FIXED_41;
			return p->seq == (p->secured ? 2 : 1) && p->length >= LOGIN_FIXED_320;
		}
		/* Commands start a sequence; other packets continue one (more
		 * authentication, a LOCAL INFILE's contents). */
		p->command_packet = p->seq == 0;
		p->field = p->command_packet ? F_COMMAND : F_SKIP;
		return !p->command_packet || p->length > 0;
	}
	if (p->phase == PH_GREETING) {
		p->field = F_GREETING;
		p->text_len = 0;
		p->text[0] = '\0';
		return p->seq == 0 && p->length > 0;
	}
	p->field = F_HEAD;
	return true;
}

/* Returns 1 when an event came, 0 when none, -1 to give up. */
static int client_packet_done(struct oa_mysql_parser *p, struct oa_mysql_event *ev)
{
	if (p->phase == PH_LOGIN) {
		uint32_t caps = p->login_fixed == LOGIN_FIXED_41 ? le32(p->head) : le16(p->head);
		if (p->head_len < p->login_fixed)
			return -1;
		p->capabilities = caps;
		if (p->total == LOGIN_FIXED_41 && (caps & OA_MYSQL_CLIENT_SSL) && !p->secured) {
			clear_event(ev, OA_MYSQL_SSL_REQUEST);
			p->secured = true;
		} else {
			clear_event(ev, OA_MYSQL_HANDSHAKE_RESPONSE);
			ev->text = p->text;
			ev->database = p->name;
			p->phase =
			    caps & (OA_MYSQL_CLIENT_COMPRESS | OA_MYSQL_CLIENT_ZSTD_COMPRESSION)
				? PH_COMPRESSED
				: PH_COMMANDS;
		}
		ev->capabilities = caps;
		ev->flags = p->flags;
		return 1;
	}
	if (!p->command_packet)
		return 0;
	clear_event(ev, OA_MYSQL_COMMAND);
	ev->command = p->command;
	ev->flags = p->flags;
	ev->length = p->total;
	ev->statement_id = p->statement_id;
	if (p->command == OA_MYSQL_COM_QUERY || p->command == OA_MYSQL_COM_STMT_PREPARE ||
	    p->command == OA_MYSQL_COM_INIT_DB)
		ev->text = p->text;
	return 1;
}

/* An ERR packet in head: its code (UINT16_MAX when it has none) and SQLSTATE. */
static void read_error(struct oa_mysql_parser *p)
{
	p->error_code = p->head_len >= 3 && le16(p->head + 1) ? le16(p->head + 1) : UINT16_MAX;
	if (p->head_len >= 9 && p->head[3] == '#') {
		memcpy(p->sqlstate, p->head + 4, 5);
		p->sqlstate[5] = '\0';
		/* Only the SQLSTATE alphabet: the field is copied into spans. */
		for (int k = 0; k < 5; k++)
			if (!((p->sqlstate[k] >= '0' && p->sqlstate[k] <= '9') ||
			      (p->sqlstate[k] >= 'A' && p->sqlstate[k] <= 'Z')))
				p->sqlstate[0] = '\0';
	}
}

/* An OK packet in head (0x00 or, ending a result set, 0xfe): adds its
 * affected rows unless counting rows; returns its status flags. */
static uint16_t read_ok(struct oa_mysql_parser *p, bool count_affected)
{
	unsigned pos = 1;
	uint64_t affected = 0, insert_id;
	if (!head_lenenc(p, &pos, &affected) || !head_lenenc(p, &pos, &insert_id) ||
	    pos + 2 > p->head_len)
		return 0;
	if (count_affected)
		p->rows += affected;
	return le16(p->head + pos);
}

static bool finish_response(struct oa_mysql_parser *p, struct oa_mysql_event *ev)
{
	clear_event(ev, OA_MYSQL_RESPONSE);
	ev->command = p->command;
	ev->flags = p->flags;
	ev->error_code = p->error_code;
	ev->statement_id = p->statement_id;
	ev->rows = p->rows;
	ev->sqlstate = p->sqlstate;
	p->response = RS_NEW;
	return true;
}

/* The EOF or OK that ends a result: another may follow for the same command. */
static bool end_of_result(struct oa_mysql_parser *p, struct oa_mysql_event *ev)
{
	uint16_t status =
	    p->total < 7 ? (p->head_len >= 5 ? le16(p->head + 3) : 0) : read_ok(p, false);
	if (status & SERVER_MORE_RESULTS) {
		p->response = RS_FIRST;
		return false;
	}
	return finish_response(p, ev);
}

/* The first packet of a response, or of another result of it. */
static bool first_response_packet(struct oa_mysql_parser *p, struct oa_mysql_event *ev)
{
	uint8_t first = p->head[0];
	switch (p->command) {
	case OA_MYSQL_COM_CHANGE_USER:
		if (first == 0x00)
			return finish_response(p, ev);
		p->response = RS_AUTHENTICATING;
		return false;
	case OA_MYSQL_COM_STMT_PREPARE:
		if (first != 0x00 || p->head_len < 9)
			return finish_response(p, ev);
		p->statement_id = le32(p->head + 1);
		uint16_t columns = le16(p->head + 5), params = le16(p->head + 7);
		bool eofs = !(negotiated(p) & OA_MYSQL_CLIENT_DEPRECATE_EOF);
		p->defs_left = columns + params + (eofs ? (columns > 0) + (params > 0) : 0);
		if (!p->defs_left)
			return finish_response(p, ev);
		p->response = RS_PREPARE_DEFS;
		return false;
	case OA_MYSQL_COM_STMT_FETCH:
		p->response = RS_ROWS;
		p->flags |= OA_MYSQL_RESULT_SET;
		if (first == 0xfe && p->total < MAX_PACKET)
			return end_of_result(p, ev);
		p->rows++;
		return false;
	case OA_MYSQL_COM_FIELD_LIST:
		if (first == 0xfe && p->total < MAX_PACKET)
			return finish_response(p, ev);
		p->response = RS_FIELD_LIST;
		return false;
	case OA_MYSQL_COM_QUERY:
	case OA_MYSQL_COM_STMT_EXECUTE:
		if (first == 0x00) {
			if (read_ok(p, true) & SERVER_MORE_RESULTS)
				return false; /* stays RS_FIRST */
			return finish_response(p, ev);
		}
		if (first == 0xfb && p->command == OA_MYSQL_COM_QUERY)
			return false; /* LOCAL INFILE: the client sends a file, then OK or ERR */
		if (first == 0xfe && p->total < MAX_PACKET)
			return end_of_result(p, ev);
		unsigned pos = 0;
		if (!head_lenenc(p, &pos, &p->defs_left))
			p->defs_left = 0;
		/* MariaDB's metadata cache: a 0 after the count, no definitions. */
		if (pos < p->head_len && p->head[pos] == 0)
			p->defs_left = 0;
		p->eofs = 0;
		p->flags |= OA_MYSQL_RESULT_SET;
		p->response = RS_COLUMNS;
		return false;
	default:
		/* OK, EOF (COM_SET_OPTION) or a string (COM_STATISTICS): one packet. */
		if (first == 0x00)
			read_ok(p, true);
		return finish_response(p, ev);
	}
}

static bool server_packet_done(struct oa_mysql_parser *p, struct oa_mysql_event *ev)
{
	uint8_t first = p->total ? p->head[0] : 0;
	/* Shorter than MAX_PACKET: not a row whose first column is 16 MB or more. */
	bool eof_or_ok = first == 0xfe && p->total < MAX_PACKET;
	if (p->phase == PH_GREETING) {
		p->phase = PH_AUTH;
		if (first == 0xff) {
			p->command = OA_MYSQL_CONNECT;
			read_error(p);
			return finish_response(p, ev);
		}
		clear_event(ev, OA_MYSQL_HANDSHAKE);
		if (p->head_len >= HANDSHAKE_CAPS_LOW + 2)
			p->capabilities = le16(p->head + HANDSHAKE_CAPS_LOW);
		if (p->head_len >= HANDSHAKE_CAPS_HIGH + 2)
			p->capabilities |= (uint32_t)le16(p->head + HANDSHAKE_CAPS_HIGH) << 16;
		ev->capabilities = p->capabilities;
		ev->text = p->text;
		ev->flags = p->flags;
		return true;
	}
	if (p->response == RS_NEW) {
		p->command = p->phase == PH_AUTH ? OA_MYSQL_CONNECT : pop_pending(p);
		p->rows = 0;
		p->flags = 0;
		p->error_code = 0;
		p->sqlstate[0] = '\0';
		p->statement_id = 0;
		p->response = p->phase == PH_AUTH ? RS_AUTHENTICATING : RS_FIRST;
	}
	/* An ERR ends any response: no definition or row starts with 0xff. */
	if (first == 0xff) {
		read_error(p);
		return finish_response(p, ev);
	}
	switch (p->response) {
	case RS_FIRST:
		return first_response_packet(p, ev);
	case RS_COLUMNS:
		if (eof_or_ok && p->total < 7 && !p->eofs) {
			/* The EOF after the definitions (without CLIENT_DEPRECATE_EOF);
			 * a cursor opened by COM_STMT_EXECUTE sends no rows. */
			p->eofs = 1;
			p->defs_left = 0;
			if (p->head_len >= 5 && (le16(p->head + 3) & SERVER_STATUS_CURSOR))
				return finish_response(p, ev);
			return false;
		}
		if (eof_or_ok)
			return end_of_result(p, ev);
		if (p->defs_left)
			p->defs_left--;
		else
			p->rows++;
		return false;
	case RS_ROWS:
		if (eof_or_ok)
			return end_of_result(p, ev);
		p->rows++;
		return false;
	case RS_PREPARE_DEFS:
		if (--p->defs_left)
			return false;
		return finish_response(p, ev);
	case RS_FIELD_LIST:
		return eof_or_ok ? finish_response(p, ev) : false;
	case RS_AUTHENTICATING:
		if (first != 0x00)
			return false; /* AuthSwitchRequest, AuthMoreData */
		if (p->phase == PH_AUTH) {
			uint32_t compression =
			    OA_MYSQL_CLIENT_COMPRESS | OA_MYSQL_CLIENT_ZSTD_COMPRESSION;
			p->phase = negotiated(p) & compression ? PH_COMPRESSED : PH_COMMANDS;
		}
		read_ok(p, true);
		return finish_response(p, ev);
	default:
		return false;
	}
}

/* A physical packet ended; returns 1 when an event came, 0 when none, -1 to
 * give up. */
static int packet_done(struct oa_mysql_parser *p, struct oa_mysql_event *ev)
{
	p->state = ST_HEADER;
	p->header_len = 0;
	p->length = 0;
	p->continued = p->length_was_max;
	if (p->continued)
		return 0;
	int done =
	    p->role == OA_MYSQL_CLIENT ? client_packet_done(p, ev) : server_packet_done(p, ev);
	if (done > 0)
		p->started = true;
	return done;
}

size_t oa_mysql_feed(struct oa_mysql_parser *p, const uint8_t *data, size_t len,
		     struct oa_mysql_event *ev)
{
	enum oa_mysql_gave_up_reason reason = OA_MYSQL_MALFORMED;
	size_t i = 0;
	ev->kind = OA_MYSQL_NONE;
	if (p->state == ST_DEAD)
		return len;
	while (i < len) {
		uint8_t c = data[i];
		switch (p->state) {
		case ST_HEADER:
			i++;
			if (p->phase == PH_COMPRESSED) {
				reason = OA_MYSQL_COMPRESSED;
				goto fail;
			}
			if (p->header_len < 3) {
				p->length |= (uint32_t)c << (8 * p->header_len++);
				break;
			}
			p->seq = c;
			p->header_len++;
			p->length_was_max = p->length == MAX_PACKET;
			if (!packet_start(p))
				goto fail;
			if (!p->remaining) {
				int done = packet_done(p, ev);
				if (done < 0)
					goto fail;
				if (done)
					return i;
			}
			break;
		case ST_PAYLOAD: {
			size_t n = len - i < p->remaining ? len - i : p->remaining;
			bool ok;
			size_t used = payload_bytes(p, data + i, n, &ok);
			i += used;
			p->remaining -= (uint32_t)used;
			p->total += (uint32_t)used;
			if (!ok)
				goto fail;
			if (!p->remaining) {
				int done = packet_done(p, ev);
				if (done < 0)
					goto fail;
				if (done)
					return i;
			}
			break;
		}
		default:
			return len;
		}
	}
	return i;
fail:
	give_up(p, ev, reason);
	return i;
}

bool oa_mysql_greeting_start(const uint8_t *head, size_t len)
{
	return len >= 5 && head[2] == 0 && head[3] == 0 && head[4] == 10 && (head[0] || head[1]);
}

bool oa_mysql_command_gap(const struct oa_mysql_parser *p, struct oa_mysql_gap *gap)
{
	if (p->role != OA_MYSQL_CLIENT || p->phase != PH_COMMANDS || p->length_was_max ||
	    (p->state == ST_HEADER && p->header_len) ||
	    (p->state != ST_HEADER && p->state != ST_PAYLOAD))
		return false;
	gap->bytes = p->state == ST_PAYLOAD ? p->remaining : 0;
	gap->in_command = p->state == ST_PAYLOAD && p->command_packet;
	gap->attributes = (p->capabilities & OA_MYSQL_CLIENT_QUERY_ATTRIBUTES) != 0;
	return true;
}
