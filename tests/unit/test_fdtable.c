/* The fd table: lazy creation, kinds start at 0, slots are zeroed and stay
 * put, out-of-range fds are untracked, the try-lock excludes, forgetting a
 * range keeps a held lock, threads setting bits concurrently lose none, and a
 * forked child gets the locks other threads held released. */
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fdtable.h"

struct slot {
	uint64_t words[40];
};

static void test_before_init(void)
{
	CHECK_EQ_INT(oa_fd_kind(3), 0);
	CHECK(oa_fdtable_slot(3) == NULL);
	CHECK(!oa_fd_lock(3));
	CHECK_EQ_INT(oa_fd_kind_set(3, 1), 0);
	CHECK_EQ_INT(oa_fd_kind(3), 0); /* no table: nothing was stored */
}

static void test_init_and_slots(void)
{
	CHECK(oa_fdtable_init(sizeof(struct slot), 0x08));
	CHECK(oa_fdtable_init(sizeof(struct slot), 0x08)); /* once */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	uint64_t expected = rl.rlim_max < OA_FDTABLE_MAX_FDS ? rl.rlim_max : OA_FDTABLE_MAX_FDS;
	CHECK(oa_fdtable.limit >= expected && oa_fdtable.limit < expected + 16);
	CHECK_EQ_INT(oa_fdtable.slot_size % 16, 0);
	CHECK(oa_fdtable.slot_size >= sizeof(struct slot));

	for (int fd = 0; fd < 64; fd++)
		CHECK_EQ_INT(oa_fd_kind(fd), 0);
	struct slot *a = oa_fdtable_slot(5);
	CHECK(a != NULL);
	for (size_t i = 0; i < 40; i++)
		CHECK_EQ_INT(a->words[i], 0);
	a->words[0] = 42;
	CHECK(oa_fdtable_slot(5) == a);
	struct slot *b = oa_fdtable_slot(6);
	CHECK((char *)b - (char *)a == oa_fdtable.slot_size);
	/* another chunk */
	struct slot *far = oa_fdtable_slot(1000);
	CHECK(far != NULL && far != a);
	CHECK_EQ_INT(((struct slot *)oa_fdtable_slot(5))->words[0], 42);

	CHECK(oa_fdtable_slot(-1) == NULL);
	CHECK(oa_fdtable_slot((int)oa_fdtable.limit) == NULL);
	CHECK_EQ_INT(oa_fd_kind(-1), 0);
	CHECK_EQ_INT(oa_fd_kind((int)oa_fdtable.limit), 0);
	CHECK_EQ_INT(oa_fd_kind_set((int)oa_fdtable.limit, 1), 0);
}

static void test_bits_and_lock(void)
{
	CHECK_EQ_INT(oa_fd_kind_set(7, 0x05), 0);
	CHECK_EQ_INT(oa_fd_kind(7), 0x05);
	CHECK_EQ_INT(oa_fd_kind_clear(7, 0x01), 0x05);
	CHECK_EQ_INT(oa_fd_kind(7), 0x04);

	CHECK(oa_fd_lock(7));
	CHECK_EQ_INT(oa_fd_kind(7), 0x04); /* the lock is not a kind bit */
	CHECK(!oa_fd_lock(7));		   /* held: bounded wait, then false */
	CHECK(oa_fd_lock(8));		   /* another fd's lock is independent */
	oa_fd_unlock(8);
	/* forgetting clears the bits but not a held lock */
	oa_fdtable_forget_range(0, 100);
	CHECK_EQ_INT(oa_fd_kind(7), 0);
	CHECK(!oa_fd_lock(7));
	oa_fd_unlock(7);
	CHECK_EQ_INT(oa_fd_kind(7), 0);
	CHECK(oa_fd_lock(7));
	oa_fd_unlock(7);

	oa_fd_kind_set(20, 1);
	oa_fd_kind_set(30, 1);
	oa_fdtable_forget_range(25, ~0u);
	CHECK_EQ_INT(oa_fd_kind(20), 1);
	CHECK_EQ_INT(oa_fd_kind(30), 0);
	oa_fdtable_forget_range(21, 19); /* empty range */
	CHECK_EQ_INT(oa_fd_kind(20), 1);
}

#define THREADS 4
#define ROUNDS	20000

static void *hammer(void *arg)
{
	int bit = (int)(intptr_t)arg;
	for (int i = 0; i < ROUNDS; i++) {
		oa_fd_kind_set(40, (uint8_t)(1 << bit));
		while (!oa_fd_lock(41))
			;
		struct slot *s = oa_fdtable_slot(41);
		s->words[1]++; /* not atomic: the lock must exclude */
		oa_fd_unlock(41);
		oa_fd_kind_clear(40, (uint8_t)(1 << bit));
		oa_fd_kind_set(40, (uint8_t)(1 << bit));
	}
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t threads[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, hammer, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	CHECK_EQ_INT(oa_fd_kind(40), (1 << THREADS) - 1);
	CHECK_EQ_INT(((struct slot *)oa_fdtable_slot(41))->words[1], THREADS * ROUNDS);
	CHECK_EQ_INT(oa_fd_kind(41), 0);
}

/* A lock held at fork by a thread the child does not have is released in
 * the child, and the fd marked. */
static void test_fork(void)
{
	oa_fd_kind_set(50, 0x01);
	CHECK(oa_fd_lock(50));
	pid_t pid = fork();
	if (pid == 0) {
		bool released = oa_fd_kind(50) == (0x01 | 0x08) && oa_fd_lock(50);
		_exit(released ? 0 : 1);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(!oa_fd_lock(50)); /* still held in the parent */
	oa_fd_unlock(50);
}

int main(void)
{
	test_before_init();
	test_init_and_slots();
	test_bits_and_lock();
	test_concurrent();
	test_fork();
	CHECK_DONE();
}
