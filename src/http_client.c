#include "http_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fdguard.h"
#include "sys.h"

/* A response head longer than this is not a collector's answer. */
#define MAX_HEAD_BYTES (64u << 10)
#define READ_CHUNK     4096
#define NS_PER_MS      1000000ull

/* ---- URL ---- */

bool oa_http_url_parse(const char *url, struct oa_http_url *out)
{
	if (strncasecmp(url, "http://", 7) != 0)
		return false;
	const char *authority = url + 7;
	size_t authority_len = strcspn(authority, "/?#");
	if (memchr(authority, '@', authority_len))
		return false;
	const char *host = authority, *host_end, *port = NULL;
	if (*host == '[') {
		host++;
		host_end = memchr(host, ']', authority_len);
		if (!host_end)
			return false;
		if (host_end + 1 < authority + authority_len) {
			if (host_end[1] != ':')
				return false;
			port = host_end + 2;
		}
	} else {
		host_end = memchr(host, ':', authority_len);
		if (host_end)
			port = host_end + 1;
		else
			host_end = authority + authority_len;
	}
	size_t host_len = (size_t)(host_end - host);
	if (host_len == 0 || host_len >= sizeof out->host)
		return false;
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	unsigned long port_number = 80;
	if (port) {
		size_t digits = (size_t)(authority + authority_len - port);
		if (digits == 0 || digits > 5 || strspn(port, "0123456789") < digits)
			return false;
		port_number = strtoul(port, NULL, 10);
		if (port_number == 0 || port_number > 65535)
			return false;
	}
	snprintf(out->port, sizeof out->port, "%lu", port_number);
	out->authority = authority;
	out->authority_len = authority_len;
	out->target = authority + authority_len;
	out->target_len = strcspn(out->target, "#");
	return true;
}

/* ---- response ---- */

enum read_state {
	STATUS_LINE,
	HEADER_LINE,
	FIXED_BODY,
	CHUNK_SIZE_LINE,
	CHUNK_DATA,
	CHUNK_DATA_END, /* the CRLF after a chunk's data */
	TRAILER_LINE,
	UNTIL_CLOSE,
	READ_DONE,
	READ_BAD,
};

void oa_http_response_init(struct oa_http_response *r, char *body, size_t body_cap)
{
	memset(r, 0, sizeof *r);
	r->retry_after_s = -1;
	r->body = body;
	r->body_cap = body_cap;
	r->state = STATUS_LINE;
}

bool oa_http_response_started(const struct oa_http_response *r)
{
	return r->head_bytes > 0 || r->line_len > 0;
}

static void keep_body(struct oa_http_response *r, const char *data, size_t len)
{
	size_t room = r->body_cap - r->body_len;
	size_t kept = len < room ? len : room;
	memcpy(r->body + r->body_len, data, kept);
	r->body_len += kept;
}

/* Whether a comma-separated header value lists token (any case). */
static bool lists_token(const char *value, const char *token)
{
	size_t token_len = strlen(token);
	for (const char *p = value; *p;) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, ",");
		size_t trimmed = len;
		while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
			trimmed--;
		if (trimmed == token_len && strncasecmp(p, token, token_len) == 0)
			return true;
		p += len;
	}
	return false;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the form RFC 9110 has
 * senders use; -1 when it is not one. Month names are English whatever the
 * program's locale. */
static int64_t parse_http_date(const char *value)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *comma = strchr(value, ',');
	if (!comma)
		return -1;
	unsigned day, year, hour, minute, second;
	char month[4];
	if (sscanf(comma + 1, " %2u %3s %4u %2u:%2u:%2u GMT", &day, month, &year, &hour, &minute,
		   &second) != 6)
		return -1;
	const char *found = strlen(month) == 3 ? strstr(months, month) : NULL;
	if (!found || (found - months) % 3 != 0 || day < 1 || day > 31 || hour > 23 ||
	    minute > 59 || second > 60)
		return -1;
	unsigned m = (unsigned)(found - months) / 3 + 1;
	return days_from_civil(year, m, day) * 86400 + hour * 3600 + minute * 60 + second;
}

static int64_t parse_retry_after(const char *value)
{
	if (*value >= '0' && *value <= '9') {
		if (value[strspn(value, "0123456789")] != '\0')
			return -1;
		unsigned long long seconds = strtoull(value, NULL, 10);
		return seconds > INT32_MAX ? INT32_MAX : (int64_t)seconds;
	}
	int64_t when = parse_http_date(value);
	if (when < 0)
		return -1;
	int64_t now = (int64_t)time(NULL);
	return when > now ? when - now : 0;
}

static bool status_line(struct oa_http_response *r, const char *line)
{
	/* HTTP/1.x SP 3DIGIT [SP reason] */
	if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
	    line[8] != ' ' || line[9] < '1' || line[9] > '9' || line[10] < '0' || line[10] > '9' ||
	    line[11] < '0' || line[11] > '9' || (line[12] != '\0' && line[12] != ' '))
		return false;
	r->http10 = line[7] == '0';
	r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	r->chunked = r->has_length = r->keep_alive = false;
	r->retry_after_s = -1;
	r->close = false;
	return true;
}

static bool header_line(struct oa_http_response *r, char *line)
{
	char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return false;
	*colon = '\0';
	char *value = colon + 1;
	value += strspn(value, " \t");
	size_t value_len = strlen(value);
	while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
		value[--value_len] = '\0';
	if (strcasecmp(line, "Content-Length") == 0) {
		if (value_len == 0 || value[strspn(value, "0123456789")] != '\0')
			return false;
		uint64_t length = strtoull(value, NULL, 10);
		if (r->has_length && length != r->remaining)
			return false;
		r->has_length = true;
		r->remaining = length;
	} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
		r->chunked = lists_token(value, "chunked");
	} else if (strcasecmp(line, "Connection") == 0) {
		if (lists_token(value, "close"))
			r->close = true;
		if (lists_token(value, "keep-alive"))
			r->keep_alive = true;
	} else if (strcasecmp(line, "Retry-After") == 0) {
		r->retry_after_s = parse_retry_after(value);
	}
	return true;
}

/* The head is complete: what frames the body. */
static enum read_state body_state(struct oa_http_response *r)
{
	if (r->http10 && !r->keep_alive)
		r->close = true;
	if (r->status < 200)
		return STATUS_LINE; /* interim: the final response follows */
	if (r->status == 204 || r->status == 304)
		return READ_DONE;
	if (r->chunked)
		return CHUNK_SIZE_LINE;
	if (r->has_length)
		return r->remaining ? FIXED_BODY : READ_DONE;
	r->close = true;
	return UNTIL_CLOSE;
}

static bool chunk_size_line(struct oa_http_response *r, const char *line)
{
	size_t digits = strspn(line, "0123456789abcdefABCDEF");
	if (digits == 0 || digits > 15 ||
	    (line[digits] && line[digits] != ';' && line[digits] != ' ' && line[digits] != '\t'))
		return false;
	r->remaining = strtoull(line, NULL, 16);
	return true;
}

/* One complete line (CRLF or LF removed) in the state that reads lines. */
static enum read_state on_line(struct oa_http_response *r)
{
	char *line = r->line;
	switch (r->state) {
	case STATUS_LINE:
		return !r->line_cut && status_line(r, line) ? HEADER_LINE : READ_BAD;
	case HEADER_LINE:
		if (line[0] == '\0')
			return body_state(r);
		if (line[0] == ' ' || line[0] == '\t') /* obsolete folding */
			return READ_BAD;
		/* a cut line is one we do not read (a long cookie, a long
		 * reason): only its name must look like one */
		if (r->line_cut)
			return strchr(line, ':') ? HEADER_LINE : READ_BAD;
		return header_line(r, line) ? HEADER_LINE : READ_BAD;
	case CHUNK_SIZE_LINE:
		if (!chunk_size_line(r, line))
			return READ_BAD;
		return r->remaining ? CHUNK_DATA : TRAILER_LINE;
	case TRAILER_LINE:
		return line[0] == '\0' ? READ_DONE : TRAILER_LINE;
	default:
		return READ_BAD;
	}
}

enum oa_http_read oa_http_response_feed(struct oa_http_response *r, const char *data, size_t len,
					size_t *used)
{
	size_t i = 0;
	while (i < len && r->state != READ_DONE && r->state != READ_BAD) {
		switch (r->state) {
		case FIXED_BODY:
		case CHUNK_DATA:
		case UNTIL_CLOSE: {
			size_t n = len - i;
			if (r->state != UNTIL_CLOSE && n > r->remaining)
				n = (size_t)r->remaining;
			keep_body(r, data + i, n);
			i += n;
			if (r->state == UNTIL_CLOSE)
				break;
			r->remaining -= n;
			if (r->remaining == 0)
				r->state = r->state == FIXED_BODY ? READ_DONE : CHUNK_DATA_END;
			break;
		}
		case CHUNK_DATA_END:
			/* CRLF (or a bare LF) */
			if (data[i] == '\r' && r->line_len == 0) {
				r->line_len = 1;
			} else if (data[i] == '\n') {
				r->line_len = 0;
				r->state = CHUNK_SIZE_LINE;
			} else {
				r->state = READ_BAD;
			}
			i++;
			break;
		default: {
			/* a line: the head's, a chunk size's or a trailer's */
			const char *nl = memchr(data + i, '\n', len - i);
			size_t n = nl ? (size_t)(nl - (data + i)) : len - i;
			size_t room = sizeof r->line - 1 - r->line_len;
			size_t copied = n < room ? n : room;
			memcpy(r->line + r->line_len, data + i, copied);
			r->line_len += copied;
			r->line_cut |= copied < n;
			r->head_bytes += n + (nl != NULL);
			i += n + (nl != NULL);
			if (r->head_bytes > MAX_HEAD_BYTES) {
				r->state = READ_BAD;
				break;
			}
			if (!nl)
				break;
			if (r->line_len && r->line[r->line_len - 1] == '\r' && !r->line_cut)
				r->line_len--;
			r->line[r->line_len] = '\0';
			r->state = on_line(r);
			r->line_len = 0;
			r->line_cut = false;
			break;
		}
		}
	}
	*used = i;
	if (r->state == READ_DONE)
		return OA_HTTP_READ_DONE;
	return r->state == READ_BAD ? OA_HTTP_READ_BAD : OA_HTTP_READ_MORE;
}

enum oa_http_read oa_http_response_end(struct oa_http_response *r)
{
	if (r->state == UNTIL_CLOSE)
		r->state = READ_DONE;
	if (r->state == READ_DONE)
		return OA_HTTP_READ_DONE;
	return OA_HTTP_READ_BAD;
}

/* ---- the client ---- */

struct oa_http_client {
	char host[OA_HTTP_URL_HOST_MAX];
	char port[6];
	int fd;	     /* -1: not connected */
	bool reused; /* fd has carried an exchange before */
	char buf[READ_CHUNK];
};

struct oa_http_client *oa_http_client_create(const struct oa_http_url *url)
{
	struct oa_http_client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	memcpy(c->host, url->host, sizeof c->host);
	memcpy(c->port, url->port, sizeof c->port);
	c->fd = -1;
	return c;
}

static void disconnect(struct oa_http_client *c)
{
	if (c->fd >= 0)
		oa_fd_release(c->fd);
	c->fd = -1;
	c->reused = false;
}

void oa_http_client_destroy(struct oa_http_client *c)
{
	if (!c)
		return;
	disconnect(c);
	free(c);
}

void oa_http_client_abandon(struct oa_http_client *c)
{
	if (c && c->fd >= 0) {
		oa_fd_release(c->fd);
		c->fd = -1;
	}
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits for events on fd until until_ns, without the caller's working lock.
 * 1: ready, 0: time is up, -1: poll failed. */
static int wait_for(int fd, short events, uint64_t until_ns, pthread_mutex_t *lock)
{
	for (;;) {
		uint64_t now = monotonic_ns();
		if (now >= until_ns)
			return 0;
		uint64_t ms = (until_ns - now + NS_PER_MS - 1) / NS_PER_MS;
		struct pollfd p = {.fd = fd, .events = events};
		if (lock)
			pthread_mutex_unlock(lock);
		int n = poll(&p, 1, ms > 1000 ? 1000 : (int)ms);
		if (lock)
			pthread_mutex_lock(lock);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* One address: a non-blocking connect, bounded by until_ns. */
static int connect_one(const struct addrinfo *ai, uint64_t until_ns, pthread_mutex_t *lock,
		       int *os_errno)
{
	oa_fd_make_begin();
	int made = (int)syscall(SYS_socket, ai->ai_family,
				ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	int made_errno = errno;
	int fd = made < 0 ? -1 : oa_fd_own(made);
	oa_fd_make_end();
	if (fd < 0) {
		*os_errno = made < 0 ? made_errno : EBADF;
		return -1;
	}
	if (syscall(SYS_connect, fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			*os_errno = errno;
			oa_fd_release(fd);
			return -1;
		}
		int ready = wait_for(fd, POLLOUT, until_ns, lock);
		int error = 0;
		socklen_t size = sizeof error;
		if (ready <= 0)
			error = ready == 0 ? ETIMEDOUT : errno;
		else if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0)
			error = errno;
		if (error) {
			*os_errno = error;
			oa_fd_release(fd);
			return -1;
		}
	}
	/* head and body go in one sendmsg; the answer must not wait for an
	 * ACK the server delays */
	int one = 1;
	syscall(SYS_setsockopt, fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static enum oa_http_outcome connect_to_server(struct oa_http_client *c, struct oa_http_post *p)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *found = NULL;
	/* A name lookup may take a while (and may fork nothing): a fork does
	 * not wait for it. */
	if (p->released_while_waiting)
		pthread_mutex_unlock(p->released_while_waiting);
	int error = oa_sys_getaddrinfo(c->host, c->port, &hints, &found);
	if (p->released_while_waiting)
		pthread_mutex_lock(p->released_while_waiting);
	if (error) {
		p->os_errno = error == EAI_SYSTEM ? errno : EHOSTUNREACH;
		return OA_HTTP_CANNOT_CONNECT;
	}
	for (const struct addrinfo *ai = found; ai && c->fd < 0; ai = ai->ai_next) {
		if (monotonic_ns() >= p->until_ns) {
			p->os_errno = ETIMEDOUT;
			break;
		}
		c->fd = connect_one(ai, p->until_ns, p->released_while_waiting, &p->os_errno);
	}
	freeaddrinfo(found);
	if (c->fd >= 0) {
		p->os_errno = 0;
		return OA_HTTP_ANSWERED;
	}
	return p->os_errno == ETIMEDOUT ? OA_HTTP_TIMED_OUT : OA_HTTP_CANNOT_CONNECT;
}

static enum oa_http_outcome send_request(struct oa_http_client *c, struct oa_http_post *p)
{
	struct iovec iov[2] = {{(void *)p->head, p->head_len}, {(void *)p->body, p->body_len}};
	size_t first = 0;
	while (first < 2) {
		struct msghdr msg = {.msg_iov = iov + first, .msg_iovlen = 2 - first};
		ssize_t n = syscall(SYS_sendmsg, c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int ready =
			    wait_for(c->fd, POLLOUT, p->until_ns, p->released_while_waiting);
			if (ready == 0)
				return OA_HTTP_TIMED_OUT;
			if (ready < 0) {
				p->os_errno = errno;
				return OA_HTTP_BROKEN;
			}
			continue;
		}
		if (n < 0) {
			p->os_errno = errno;
			return OA_HTTP_BROKEN;
		}
		size_t left = (size_t)n;
		while (first < 2 && left >= iov[first].iov_len)
			left -= iov[first++].iov_len;
		if (first < 2) {
			iov[first].iov_base = (char *)iov[first].iov_base + left;
			iov[first].iov_len -= left;
		}
	}
	return OA_HTTP_ANSWERED;
}

static enum oa_http_outcome read_response(struct oa_http_client *c, struct oa_http_post *p)
{
	for (;;) {
		ssize_t n =
		    syscall(SYS_recvfrom, c->fd, c->buf, sizeof c->buf, MSG_DONTWAIT, NULL, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int ready = wait_for(c->fd, POLLIN, p->until_ns, p->released_while_waiting);
			if (ready == 0)
				return OA_HTTP_TIMED_OUT;
			if (ready < 0) {
				p->os_errno = errno;
				return OA_HTTP_BROKEN;
			}
			continue;
		}
		if (n < 0) {
			p->os_errno = errno;
			return OA_HTTP_BROKEN;
		}
		if (n == 0) /* closed: an answer only if its body ran to the close */
			return oa_http_response_end(p->response) == OA_HTTP_READ_DONE
				   ? OA_HTTP_ANSWERED
				   : OA_HTTP_BROKEN;
		size_t used;
		enum oa_http_read r = oa_http_response_feed(p->response, c->buf, (size_t)n, &used);
		if (r == OA_HTTP_READ_BAD)
			return OA_HTTP_BAD_REPLY;
		if (r == OA_HTTP_READ_DONE) {
			/* bytes past the response: not an answer to anything */
			if (used < (size_t)n)
				p->response->close = true;
			return OA_HTTP_ANSWERED;
		}
	}
}

/* A kept-alive connection the server has closed (or sent anything on
 * unasked) is not used again. */
static bool still_open(int fd)
{
	struct pollfd q = {.fd = fd, .events = POLLIN | POLLRDHUP};
	return poll(&q, 1, 0) == 0;
}

enum oa_http_outcome oa_http_client_post(struct oa_http_client *c, struct oa_http_post *p)
{
	p->os_errno = 0;
	p->hijacked = false;
	if (c->fd >= 0 && oa_fd_take_hijacked(c->fd)) {
		c->fd = -1; /* the application's now: not closed */
		c->reused = false;
		p->hijacked = true;
	}
	if (c->fd >= 0 && !still_open(c->fd))
		disconnect(c);
	for (int tries = 0;; tries++) {
		bool fresh = c->fd < 0;
		if (fresh) {
			enum oa_http_outcome o = connect_to_server(c, p);
			if (o != OA_HTTP_ANSWERED)
				return o;
		}
		oa_http_response_init(p->response, p->response->body, p->response->body_cap);
		enum oa_http_outcome o = send_request(c, p);
		if (o == OA_HTTP_ANSWERED)
			o = read_response(c, p);
		if (o == OA_HTTP_ANSWERED) {
			c->reused = true;
			if (p->response->close)
				disconnect(c);
			return o;
		}
		bool was_reused = c->reused;
		disconnect(c);
		/* The server may close an idle connection just as we reuse it:
		 * nothing was answered, so the request goes again, once, on a
		 * new connection (libcurl does the same). */
		if (o != OA_HTTP_BROKEN || !was_reused || tries > 0 ||
		    oa_http_response_started(p->response))
			return o;
	}
}
