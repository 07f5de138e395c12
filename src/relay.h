/* The relay: the processes of one tree hand their encoded export requests to
 * one exporter, the relay host (`otlpauto run`, or the first traced process of
 * the tree), over a Unix stream socket in the abstract namespace. A process
 * that relays never loads libcurl and never waits for the collector on its
 * exec or exit path: sending is a write to a local socket.
 *
 * A child learns the relay from OTLPAUTO_RELAY ("FINGERPRINTS@NAME"); it uses
 * it only when its own export settings have the same fingerprint (the same
 * destination, protocol and credentials, or no credentials of its own: those
 * are never put back into an environment a program scrubbed), else it
 * exports itself. Each
 * process has a connection of its own (a forked child reconnects), made at
 * start-up and kept, so that a later chroot, setuid or network namespace
 * change does not cut it off. The host accepts peers of its own uid or root.
 *
 * Wire format, client to host: frames of a 12-byte header (u32 payload
 * length, u8 type, u8 parcel format, u16 zero, u32 span count) and the
 * payload. A tentative parcel (an exec span sent before execve) is held by
 * the host until the same connection commits it (any later frame, or its
 * end: the exec succeeded) or cancels it (the exec failed). */
#ifndef OTLPAUTO_RELAY_H
#define OTLPAUTO_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define OA_RELAY_ENV "OTLPAUTO_RELAY"
/* A host that execs hands its listener and connections to its next image:
 * "LISTENER_FD[,CONNECTION_FD...]". */
#define OA_RELAY_HOST_ENV "OTLPAUTO_RELAY_HOST"

enum oa_relay_frame {
	OA_RELAY_HELLO = 1,	/* payload: u32 protocol version, i32 pid */
	OA_RELAY_PARCEL = 2,	/* payload: an encoded request */
	OA_RELAY_TENTATIVE = 3, /* the same, held until committed */
	OA_RELAY_COMMIT = 4,	/* no payload */
	OA_RELAY_CANCEL = 5,	/* no payload: drop the tentative parcels */
	OA_RELAY_STATS = 6,	/* payload: struct oa_relay_stats, counts since the last;
				 * format byte 1: the process's last (it exits) */
	OA_RELAY_METRICS = 7,	/* payload: an encoded metrics request */
};

/* What a process did with its spans, for the host's summary (`otlpauto run`
 * prints it). Sent at exit and before an exec, as the change since the last
 * report. */
struct oa_relay_stats {
	uint64_t exported; /* delivered (to the relay, or sent by the process itself) */
	uint64_t sampled_out;
	/* ring full, queue full, export failed, rejected, unsent at exit, ended
	 * after exit, connection full (enum oa_drop_reason; a host reads the
	 * reasons an older client sent, the rest stay 0) */
	uint64_t lost[7];
};

/* Everything a relay host learnt (otlpauto_relay_v1.finish). */
struct oa_relay_totals {
	uint64_t processes;		/* connections that said hello */
	uint64_t unreported;		/* of those, ended without a report */
	uint64_t spans_in;		/* spans relayed to the host */
	uint64_t exported;		/* of those, exported by the host */
	uint64_t failed;		/* of those, lost by the host */
	uint64_t unsent_at_exit;	/* of those, not sent by the exit's deadline */
	struct oa_relay_stats reported; /* the sum of the processes' reports */
};

/* The relay host of `otlpauto run`: the command dlopens the library and hosts
 * the relay for the program it starts, in a process that traces nothing. */
struct otlpauto_relay_v1 {
	/* Writes the OTLPAUTO_RELAY value; false when no relay can be hosted. */
	bool (*host)(char *value, size_t size);
	/* Ends the relay (what clients sent is taken in; they send what
	 * follows themselves), exports it within timeout_ms. */
	void (*finish)(uint32_t timeout_ms, struct oa_relay_totals *totals);
};

#define OA_RELAY_HEADER_SIZE 12
#define OA_RELAY_VERSION     1
/* Larger payloads are refused: the exporter splits requests far below it. */
#define OA_RELAY_MAX_PAYLOAD (64u << 20)

/* Whether this configuration can use a relay at all (OTLP or file export). */
bool oa_relay_applies(const struct oa_config *cfg);

/* Export settings, hashed (oa_config_export_fingerprint): all of them, and
 * all but the headers. */
struct oa_relay_fingerprint {
	uint64_t full, without_headers;
};

/* At start-up: connects to the relay named by value (OTLPAUTO_RELAY, may be
 * NULL) when it sends where we would (same full fingerprint, or the same but
 * for the headers when we have none: they were kept out of our environment),
 * adopting the connection a previous image of this process kept open across
 * execve ("#FD"). False when there is no relay to use. */
bool oa_relay_init(const char *value, const struct oa_relay_fingerprint *ours, bool has_headers);
bool oa_relay_connected(void);
/* Sends one frame; waits at most until deadline_ns for room in the socket.
 * False when the relay is gone: the connection is dropped and the caller
 * exports by itself from now on. */
bool oa_relay_send(enum oa_relay_frame type, const void *payload, uint32_t len, uint32_t spans,
		   uint8_t format, uint64_t deadline_ns);
/* Before execve: the connection is inherited by the new program (a new image
 * of this process) instead of closed; after a failed exec, closed again on
 * exec. Returns the fd number to name in the new program's environment. */
int oa_relay_keep_across_exec(bool keep);

/* The OTLPAUTO_RELAY value for a child that is about to be created, or NULL:
 * the relay this process uses, or one this process hosts (started now when
 * it can host one: `own_ok`, it exports by itself with a relayable exporter).
 * Written into buf. */
const char *oa_relay_for_child(char *buf, size_t size, bool own_ok);

/* Host, before this process execs: reads, now, everything clients have
 * written, into the parcel queue; waits at most until deadline_ns. What
 * clients sent tentatively is taken as committed, since the relay may end
 * with this image: those clients are most likely in an exec that succeeds. */
void oa_relay_host_drain(uint64_t deadline_ns);
/* Host, before its final flush (its exit, or an exec of a program that will
 * not run the shim): ends the relay. Refuses every connect and
 * every later frame (those clients export by themselves), then reads what
 * clients wrote before, to its end, and commits it; waits until deadline_ns
 * (at least a few milliseconds: the reading is bounded). Children started
 * later are given no relay. */
void oa_relay_host_end(uint64_t deadline_ns);
/* Before this process execs a program that will load the shim: the relay
 * goes on in it. Writes the OTLPAUTO_RELAY_HOST entry, with every connection
 * between frames and its tentative parcels committed (for the exec's flush
 * to send), the descriptors left open across the exec, the relay thread
 * stopped. False when this process hosts no relay. exec_failed undoes it. */
bool oa_relay_host_keep_across_exec(char *entry, size_t size, uint64_t deadline_ns);
void oa_relay_host_exec_failed(void);
/* In the next image: hosts the relay the previous one handed over. */
bool oa_relay_host_adopt(const char *value);
/* Spans the host took in from other processes (for the exit summary). */
uint64_t oa_relay_host_spans_in(void);
/* Whether this process hosts (or hosted) a relay. */
bool oa_relay_hosting(void);
/* What the host learnt so far (the exporter fills in exported and failed). */
void oa_relay_host_totals(struct oa_relay_totals *totals);
/* A client's report: what changed since its last one; `last` at exit.
 * `async`: from a signal handler or _exit, where the connection is used only
 * if no other thread is using it. */
void oa_relay_report(bool last, bool async, uint64_t deadline_ns);

/* Fork: the relay thread's round of work ends first (boundedly); the child
 * reconnects on its own connection and hosts nothing. */
void oa_relay_atfork_prepare(void);
void oa_relay_atfork_parent(void);
void oa_relay_atfork_child(void);

#endif
