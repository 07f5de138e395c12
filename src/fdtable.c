#include "fdtable.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

struct oa_fdtable oa_fdtable;

/* init_state: one of these, or while the table is being built, the
 * builder's pid. */
enum { INIT_NONE = 0, INIT_DONE = -1, INIT_FAILED = -2 };

/* A lock holder does a few hundred instructions; a thread waiting longer has
 * met a holder that was preempted or interrupted by a signal. */
#define LOCK_SPINS 2000

static uint32_t table_limit(void)
{
	struct rlimit rl;
	rlim_t max = OA_FDTABLE_MAX_FDS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < max)
		max = rl.rlim_max;
	/* a whole number of chunks */
	uint32_t chunk = 1u << OA_FDTABLE_CHUNK_SHIFT;
	return ((uint32_t)max + chunk - 1) & ~(chunk - 1);
}

static void *map_zeroed(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Only the forking thread lives on in the child: locks others held stay
 * held forever unless released here. */
void oa_fdtable_atfork_child(void)
{
	struct oa_fd_cell *cells = oa_fdtable.cells;
	for (uint32_t fd = 0; cells && fd < oa_fdtable.end; fd++) {
		if (cells[fd].lock) {
			cells[fd].lock = 0;
			cells[fd].kind |= oa_fdtable.held_at_fork;
		}
	}
}

static bool build(size_t slot_size, uint8_t held_at_fork)
{
	uint32_t limit = table_limit();
	size_t cells_bytes = limit * sizeof(struct oa_fd_cell);
	size_t chunk_ptrs = limit >> OA_FDTABLE_CHUNK_SHIFT;
	/* one mapping; untouched pages cost nothing */
	uint8_t *mem = map_zeroed(cells_bytes + chunk_ptrs * sizeof(void *));
	if (!mem)
		return false;
	oa_fdtable.chunks = (void **)(mem + cells_bytes);
	oa_fdtable.limit = limit;
	oa_fdtable.slot_size = (uint32_t)((slot_size + 15) & ~(size_t)15);
	oa_fdtable.held_at_fork = held_at_fork;
	__atomic_store_n(&oa_fdtable.cells, (struct oa_fd_cell *)mem, __ATOMIC_RELEASE);
	pthread_atfork(NULL, NULL, oa_fdtable_atfork_child);
	return true;
}

bool oa_fdtable_init(size_t slot_size, uint8_t held_at_fork)
{
	for (;;) {
		int state = __atomic_load_n(&oa_fdtable.init_state, __ATOMIC_ACQUIRE);
		if (state == INIT_DONE || state == INIT_FAILED)
			return state == INIT_DONE;
		int self = (int)getpid();
		if (state == INIT_NONE) {
			if (!__atomic_compare_exchange_n(&oa_fdtable.init_state, &state, self,
							 false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				continue;
			state = build(slot_size, held_at_fork) ? INIT_DONE : INIT_FAILED;
			__atomic_store_n(&oa_fdtable.init_state, state, __ATOMIC_RELEASE);
			return state == INIT_DONE;
		}
		/* Another thread is building it: a few microseconds. A fork that
		 * landed meanwhile left this child a builder that is not here
		 * (its pid is the parent's): build anew (the half-made mapping
		 * leaks). */
		if (state != self)
			__atomic_compare_exchange_n(&oa_fdtable.init_state, &state, INIT_NONE,
						    false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
		else
			sched_yield();
	}
}

static bool in_range(int fd)
{
	return __atomic_load_n(&oa_fdtable.cells, __ATOMIC_ACQUIRE) &&
	       (unsigned)fd < oa_fdtable.limit;
}

void *oa_fdtable_slot(int fd)
{
	if (!in_range(fd))
		return NULL;
	void **ref = &oa_fdtable.chunks[fd >> OA_FDTABLE_CHUNK_SHIFT];
	char *chunk = __atomic_load_n(ref, __ATOMIC_ACQUIRE);
	size_t chunk_bytes = (size_t)oa_fdtable.slot_size << OA_FDTABLE_CHUNK_SHIFT;
	if (!chunk) {
		char *fresh = map_zeroed(chunk_bytes);
		if (!fresh)
			return NULL;
		void *expected = NULL;
		if (__atomic_compare_exchange_n(ref, &expected, fresh, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			chunk = fresh;
		} else {
			munmap(fresh, chunk_bytes);
			chunk = expected;
		}
	}
	size_t index = (size_t)fd & ((1u << OA_FDTABLE_CHUNK_SHIFT) - 1);
	return chunk + index * oa_fdtable.slot_size;
}

uint8_t oa_fd_kind_set(int fd, uint8_t bits)
{
	if (!in_range(fd))
		return 0;
	uint32_t end = __atomic_load_n(&oa_fdtable.end, __ATOMIC_RELAXED);
	while (end <= (uint32_t)fd &&
	       !__atomic_compare_exchange_n(&oa_fdtable.end, &end, (uint32_t)fd + 1, true,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return __atomic_fetch_or(&oa_fdtable.cells[fd].kind, bits, __ATOMIC_ACQ_REL);
}

uint8_t oa_fd_kind_clear(int fd, uint8_t bits)
{
	if (!in_range(fd))
		return 0;
	return __atomic_fetch_and(&oa_fdtable.cells[fd].kind, (uint8_t)~bits, __ATOMIC_ACQ_REL);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

bool oa_fd_lock(int fd)
{
	if (!in_range(fd))
		return false;
	uint8_t *lock = &oa_fdtable.cells[fd].lock;
	for (int spin = 0; spin < LOCK_SPINS; spin++) {
		if (!__atomic_load_n(lock, __ATOMIC_RELAXED) &&
		    !__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
			return true;
		cpu_relax();
	}
	return false;
}

void oa_fd_unlock(int fd)
{
	if (in_range(fd))
		__atomic_store_n(&oa_fdtable.cells[fd].lock, 0, __ATOMIC_RELEASE);
}

void oa_fdtable_forget_range(unsigned int first, unsigned int last)
{
	if (!__atomic_load_n(&oa_fdtable.cells, __ATOMIC_ACQUIRE))
		return;
	uint32_t end = __atomic_load_n(&oa_fdtable.end, __ATOMIC_RELAXED);
	if (last >= end)
		last = end - 1;
	for (uint64_t fd = first; end && fd <= last; fd++)
		if (__atomic_load_n(&oa_fdtable.cells[fd].kind, __ATOMIC_RELAXED))
			__atomic_fetch_and(&oa_fdtable.cells[fd].kind, 0, __ATOMIC_RELEASE);
}
