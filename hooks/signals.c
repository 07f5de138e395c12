/* Services are stopped, and pipelines cut short (`cmd | head`), by signals
 * left at their default action, which kills the process without running
 * exit handlers. While the program has no handler of its own for one of the
 * signals below, ours ends the interrupted thread's frames, has the exporter
 * flush within OTLPAUTO_EXIT_TIMEOUT, then lets the process die of the same
 * signal (core dump included) so the parent sees the same status. The
 * handler calls no allocator and waits for no lock: atomics, futex wake and
 * wait, nanosleep, sigaction, sigprocmask, raise, write; a process without
 * an exporter thread also encodes its spans on memory of its own (src/mem.h)
 * and sends them with system calls (sendmsg, write). Once it runs, a second
 * terminating signal ends the process at once. As soon as the program
 * installs a handler (signal or sigaction) we step aside, and the program
 * keeps seeing SIG_DFL where it would have. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "family.h"
#include "lifecycle.h"
#include "process_span.h"
#include "real.h"
#include "runtime.h"

#define OA_EXPORT __attribute__((visibility("default")))

OA_REAL(int, sigaction, (int a0, const struct sigaction *a1, struct sigaction *a2), -1)

/* Every standard signal whose default action ends the process, but those
 * that report a fault or an abort (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
 * SIGSYS, SIGABRT): the process may be corrupt, and its other threads would
 * go on running in it during the flush. Real-time signals are left to the
 * libraries that reserve them. See DESIGN.md. */
static const int flushed_signals[] = {
    SIGHUP,  SIGINT,	SIGQUIT, SIGPIPE, SIGALRM,   SIGTERM, SIGUSR1, SIGUSR2,
    SIGPROF, SIGVTALRM, SIGIO,	 SIGPWR,  SIGSTKFLT, SIGXCPU, SIGXFSZ,
};
#define N_FLUSHED (sizeof flushed_signals / sizeof flushed_signals[0])

/* Whether our handler is the one installed for sig (never both with the
 * program's own). */
static volatile sig_atomic_t ours_installed[NSIG];

static bool is_flushed_signal(int sig)
{
	for (size_t i = 0; i < N_FLUSHED; i++)
		if (flushed_signals[i] == sig)
			return true;
	return false;
}

static void flush_and_die(int sig)
{
	int saved_errno = errno;
	oa_process_span_signal(sig);
	/* The default actions come back, unblocked while the flush runs: a
	 * second terminating signal (or this one again) ends it at once. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigset_t defaults;
	sigemptyset(&defaults);
	sigaddset(&defaults, sig);
	for (size_t i = 0; i < N_FLUSHED; i++) {
		int s = flushed_signals[i];
		if (ours_installed[s]) {
			oa_real_sigaction()(s, &dfl, NULL);
			ours_installed[s] = 0;
			sigaddset(&defaults, s);
		}
	}
	pthread_sigmask(SIG_UNBLOCK, &defaults, NULL);
	oa_process_exit_async();
	/* Pending, and blocked until the handler returns: the process dies
	 * where the signal interrupted it (the core shows that place, not
	 * this handler). */
	sigset_t self;
	sigemptyset(&self);
	sigaddset(&self, sig);
	pthread_sigmask(SIG_BLOCK, &self, NULL);
	raise(sig);
	errno = saved_errno;
}

static int install_ours(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = flush_and_die;
	sigfillset(&sa.sa_mask);
	int r = oa_real_sigaction()(sig, &sa, NULL);
	if (r == 0)
		ours_installed[sig] = 1;
	return r;
}

/* Signals that end the process by default flush before it dies. */
static void signals_init(void)
{
	if (!(oa_rt.cfg.hooks & OA_HOOK_PROCESS))
		return;
	/* Ours first, the previous one back when it was not the default (a
	 * program starts with the default for nearly all of these): one system
	 * call per signal instead of two. Nothing runs in between that the
	 * signal could reach: start-up precedes the program's own code. */
	struct sigaction ours;
	memset(&ours, 0, sizeof ours);
	ours.sa_handler = flush_and_die;
	sigfillset(&ours.sa_mask);
	for (size_t i = 0; i < N_FLUSHED; i++) {
		int sig = flushed_signals[i];
		struct sigaction previous;
		if (oa_real_sigaction()(sig, &ours, &previous) != 0)
			continue;
		if ((previous.sa_flags & SA_SIGINFO) || previous.sa_handler != SIG_DFL)
			oa_real_sigaction()(sig, &previous, NULL);
		else
			ours_installed[sig] = 1;
	}
}

/* The program's own handlers run inside ours, which marks the thread as in
 * a signal handler: an _exit made there takes the async-signal-safe exit
 * path (exit_hook in hooks/process.c), one made elsewhere (a shell, a forked
 * child) the full one. The program sees its handler in oldact. */
static void *program_handlers[NSIG];
static volatile sig_atomic_t program_siginfo[NSIG];

static void run_program_handler(int sig, siginfo_t *info, void *context)
{
	int saved_errno = errno;
	void *handler = __atomic_load_n(&program_handlers[sig], __ATOMIC_ACQUIRE);
	oa_tls.in_signal++;
	errno = saved_errno;
	if (program_siginfo[sig])
		((void (*)(int, siginfo_t *, void *))handler)(sig, info, context);
	else
		((void (*)(int))handler)(sig);
	saved_errno = errno;
	oa_tls.in_signal--;
	errno = saved_errno;
}

static bool is_handler(const struct sigaction *act)
{
	return (act->sa_flags & SA_SIGINFO) ||
	       (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN);
}

/* act as installed: a handler of the program's goes through ours. */
static int install_program_action(int sig, const struct sigaction *act)
{
	if (!is_handler(act) || sig == SIGKILL || sig == SIGSTOP)
		return oa_real_sigaction()(sig, act, NULL);
	struct sigaction wrapped = *act;
	wrapped.sa_flags |= SA_SIGINFO;
	wrapped.sa_sigaction = run_program_handler;
	program_siginfo[sig] = (act->sa_flags & SA_SIGINFO) != 0;
	__atomic_store_n(&program_handlers[sig],
			 (act->sa_flags & SA_SIGINFO) ? (void *)act->sa_sigaction
						      : (void *)act->sa_handler,
			 __ATOMIC_RELEASE);
	return oa_real_sigaction()(sig, &wrapped, NULL);
}

/* What the program installed, as it installed it. */
static void as_the_program_sees(int sig, struct sigaction *old)
{
	if (old->sa_sigaction != run_program_handler)
		return;
	old->sa_flags &= ~SA_SIGINFO;
	if (program_siginfo[sig]) {
		old->sa_flags |= SA_SIGINFO;
		old->sa_sigaction = __atomic_load_n(&program_handlers[sig], __ATOMIC_ACQUIRE);
	} else {
		old->sa_handler = __atomic_load_n(&program_handlers[sig], __ATOMIC_ACQUIRE);
	}
}

OA_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
	if (sig <= 0 || sig >= NSIG || oa_tls.internal ||
	    __atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE ||
	    !(oa_rt.cfg.hooks & OA_HOOK_PROCESS))
		return oa_real_sigaction()(sig, act, oldact);
	bool flushed = is_flushed_signal(sig);
	bool ours = flushed && ours_installed[sig];
	struct sigaction previous;
	int r = oa_real_sigaction()(sig, NULL, &previous);
	if (r != 0)
		return r;
	if (act) {
		bool wants_default = !(act->sa_flags & SA_SIGINFO) && act->sa_handler == SIG_DFL;
		if (flushed && wants_default) {
			if (!ours)
				r = install_ours(sig);
		} else {
			r = install_program_action(sig, act);
			if (r == 0 && flushed)
				ours_installed[sig] = 0;
		}
		if (r != 0)
			return r;
	}
	if (oldact) {
		*oldact = previous;
		as_the_program_sees(sig, oldact);
		if (ours) { /* the program never installed ours: it sees SIG_DFL */
			oldact->sa_handler = SIG_DFL;
			oldact->sa_flags &= ~SA_SIGINFO;
			sigemptyset(&oldact->sa_mask);
		}
	}
	return 0;
}

/* glibc's signal() reaches sigaction internally, past our hook. */
OA_EXPORT __sighandler_t signal(int sig, __sighandler_t handler)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART; /* BSD semantics, as glibc's signal() */
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, sig > 0 && sig < NSIG ? sig : SIGTERM);
	if (sigaction(sig, &sa, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}

OA_FAMILY(signals) = {
    .name = "signals",
    .init = signals_init,
};
