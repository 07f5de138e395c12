/* The per-fd table of the socket and file hooks: one byte of kind bits per
 * fd, the only load a read or write on an fd we know nothing about costs, and
 * a slot of state per fd, mapped in chunks on first use and never unmapped: a
 * number's slot is reset and reused with the number. Lock-free: kind bits
 * change atomically, and a slot is used under a try-lock byte next to its
 * kind byte (a contended slot is waited for a bounded moment, then skipped):
 * only its holder writes it, so unlocking is a plain store, where a lock bit
 * among the kind bits, which other threads set, took a locked instruction.
 * Sized from RLIMIT_NOFILE's hard limit (capped); higher fds are untracked. */
#ifndef OTLPAUTO_FDTABLE_H
#define OTLPAUTO_FDTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OA_FDTABLE_MAX_FDS (1u << 20)
/* Slots per chunk: 1 << OA_FDTABLE_CHUNK_SHIFT. */
#define OA_FDTABLE_CHUNK_SHIFT 4
/* An fd's kind bits (the users') and its slot's lock (nonzero: held). */
struct oa_fd_cell {
	uint8_t kind, lock;
};

struct oa_fdtable {
	struct oa_fd_cell *cells; /* published last: non-NULL means the table is ready */
	void **chunks;
	uint32_t limit; /* fds below this are tracked */
	uint32_t slot_size;
	uint32_t end; /* one past the highest fd that ever had kind bits */
	uint8_t held_at_fork;
	int init_state;
};

extern struct oa_fdtable oa_fdtable;

/* Creates the table once (later calls return whether it exists). slot_size
 * must be the same on every call. A forked child finds the locks other
 * threads held at fork released, and held_at_fork set in those fds' kinds:
 * their slots may be half-updated. */
bool oa_fdtable_init(size_t slot_size, uint8_t held_at_fork);
/* What that takes in a forked child: the socket family's atfork_child
 * (family.h). Idempotent. */
void oa_fdtable_atfork_child(void);

/* The kind bits of fd; 0 when untracked. */
static inline uint8_t oa_fd_kind(int fd)
{
	struct oa_fd_cell *cells = __atomic_load_n(&oa_fdtable.cells, __ATOMIC_ACQUIRE);
	if (!cells || (unsigned)fd >= oa_fdtable.limit)
		return 0;
	return __atomic_load_n(&cells[fd].kind, __ATOMIC_ACQUIRE);
}

/* The slot of fd, its chunk mapped now if needed; NULL when fd is out of
 * range, the table is not initialised, or memory is short. Zeroed at first. */
void *oa_fdtable_slot(int fd);

/* Atomically sets / clears kind bits; return the bits before. */
uint8_t oa_fd_kind_set(int fd, uint8_t bits);
uint8_t oa_fd_kind_clear(int fd, uint8_t bits);

/* Takes the slot's lock, spinning at most a short bounded time; false when
 * another thread keeps it (or fd is untracked by range). */
bool oa_fd_lock(int fd);
void oa_fd_unlock(int fd);

/* Clears the kind bits of every fd in [first, last] (not their locks). */
void oa_fdtable_forget_range(unsigned int first, unsigned int last);

#endif
