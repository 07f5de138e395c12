/* Per-thread state: ring, id generator, context stack and function shadow
 * stack, all in one mapping made on the thread's first span. A thread that
 * exits hands its ring to the exporter, which drains it and unmaps it once
 * the thread is gone. */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "family.h"
#include "rings.h"
#include "runtime.h"

__thread struct oa_tls oa_tls __attribute__((tls_model("initial-exec")));

static pthread_key_t exit_key;

static void thread_exit(void *arg);

void oa_thread_system_init(void)
{
	/* Never deleted: uftrace saw other threads crash when its key was. */
	pthread_key_create(&exit_key, thread_exit);
}

static size_t state_bytes(void)
{
	return (sizeof(struct oa_thread) + 63) & ~(size_t)63;
}

static struct oa_thread *thread_create(const struct oa_span_ctx *inherited)
{
	oa_fork_check(); /* before registering a ring in the parent's registry */
	size_t ring_offset = state_bytes();
	size_t size = ring_offset + oa_ring_bytes(oa_rt.cfg.buffer_spans);
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	struct oa_thread *t = mem;
	t->tid = (uint32_t)syscall(SYS_gettid);
	t->ring =
	    oa_ring_place((char *)mem + ring_offset, oa_rt.cfg.buffer_spans, t->tid, mem, size);
	oa_rng_seed(&t->rng);
	/* The name, from here on kept current by our rename hooks: the exporter
	 * opens no /proc file for it while the program runs. */
	t->ring->renames_seen = __atomic_load_n(&oa_thread_renames, __ATOMIC_ACQUIRE);
	char name[16] = "";
	syscall(SYS_prctl, PR_GET_NAME, name);
	oa_ring_set_name(t->ring, name);
	t->ctx[0] = inherited ? *inherited : oa_rt.process_ctx;
	oa_tls.state = t;
	pthread_setspecific(exit_key, t);
	oa_rings_register(t->ring);
	return t;
}

struct oa_thread *oa_thread_slow(void)
{
	return thread_create(NULL);
}

void oa_thread_start(const struct oa_span_ctx *inherited, bool internal)
{
	if (internal) {
		oa_tls.internal = 1;
		return;
	}
	if (oa_hook_enter()) {
		if (!oa_tls.state)
			thread_create(inherited);
		oa_hook_leave();
	}
}

static void thread_exit(void *arg)
{
	struct oa_thread *t = arg;
	if (oa_tls.state != t)
		return;
	oa_tls.guard++;
	oa_families_thread_exit(t, OA_END_THREAD_EXIT);
	syscall(SYS_prctl, PR_GET_NAME, t->ring->exit_name);
	/* The state stays: destructors of keys the program created after ours
	 * run later and still record spans. The exporter frees it once the
	 * thread is gone. */
	__atomic_store_n(&t->ring->orphaned, 1, __ATOMIC_RELEASE);
	oa_exporter_wake();
	oa_tls.guard--;
}

uint32_t oa_thread_renames;

void oa_thread_renamed(bool self, const char *name)
{
	if (oa_tls.internal)
		return;
	if (self && oa_hook_enter()) {
		struct oa_thread *t = oa_tls.state;
		if ((uintptr_t)t > 1) /* else the ring, when made, reads the name */
			oa_ring_set_name(t->ring, name);
		oa_hook_leave();
		return;
	}
	/* Another thread's name, or a rename inside one of our hooks (by a
	 * signal handler, while the ring's name may be half written): only
	 * /proc can tell. */
	__atomic_fetch_add(&oa_thread_renames, 1, __ATOMIC_RELEASE);
}

void oa_thread_atfork_child(void)
{
	struct oa_thread *t = oa_tls.state;
	if ((uintptr_t)t <= 1)
		return;
	/* The parent exports what this ring held; frames open at the fork are
	 * the parent's: never sent here. Only those with an id can be parents
	 * here (the parent sends them under it; prepare fixed the id of the
	 * frame the child parents on): one without would get an id the parent
	 * never uses, so it is passed over like a frame excluded by name. */
	oa_ring_reset(t->ring);
	t->ring->tid = t->tid = (uint32_t)syscall(SYS_gettid);
	oa_rng_seed(&t->rng);
	uint32_t stored = t->depth < OA_MAX_FRAMES ? t->depth : OA_MAX_FRAMES;
	for (uint32_t i = 0; i < stored; i++) {
		t->frames[i].foreign = 1;
		if (!t->frames[i].span_id)
			t->frames[i].filter = OA_FILTER_EXCLUDED;
	}
	oa_rings_register(t->ring);
}
