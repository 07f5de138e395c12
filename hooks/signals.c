/* Services are usually stopped with SIGTERM, SIGINT or SIGHUP left at their
 * default action, which kills the process without running exit handlers.
 * While the program has no handler of its own for one of these, ours ends
 * the interrupted thread's frames, flushes within OTEL_BSP_EXPORT_TIMEOUT,
 * then dies of the same signal so the parent sees the same status. As soon
 * as the program installs a handler (signal or sigaction) we step aside,
 * and the program keeps seeing SIG_DFL where it would have. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "lifecycle.h"
#include "process_span.h"
#include "real.h"
#include "runtime.h"

#define OA_EXPORT __attribute__((visibility("default")))

OA_REAL(int, sigaction, (int, const struct sigaction *, struct sigaction *))

static const int flushed_signals[] = {SIGTERM, SIGINT, SIGHUP};

/* Whether our handler is the one installed for sig (never both with the
 * program's own). */
static volatile sig_atomic_t ours_installed[NSIG];

static bool is_flushed_signal(int sig)
{
	for (size_t i = 0; i < sizeof flushed_signals / sizeof flushed_signals[0]; i++)
		if (flushed_signals[i] == sig)
			return true;
	return false;
}

static void flush_and_die(int sig)
{
	int saved_errno = errno;
	oa_process_span_signal(sig);
	/* A signal that interrupted one of our hooks on this thread: the ring
	 * may be mid-write, so only flush what is already committed. */
	if (!oa_tls.guard)
		oa_process_exit();
	else
		oa_exporter_flush(oa_rt.cfg.export_timeout_ms);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	oa_real_sigaction()(sig, &dfl, NULL);
	ours_installed[sig] = 0;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	errno = saved_errno; /* only reached if the signal is blocked elsewhere */
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

void oa_signals_init(void)
{
	for (size_t i = 0; i < sizeof flushed_signals / sizeof flushed_signals[0]; i++) {
		struct sigaction current;
		if (oa_real_sigaction()(flushed_signals[i], NULL, &current) == 0 &&
		    !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_DFL)
			install_ours(flushed_signals[i]);
	}
}

OA_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
	if (sig <= 0 || sig >= NSIG || !is_flushed_signal(sig) || oa_tls.internal ||
	    __atomic_load_n(&oa_rt.state, __ATOMIC_ACQUIRE) != OA_STATE_ACTIVE ||
	    !(oa_rt.cfg.hooks & OA_HOOK_PROCESS))
		return oa_real_sigaction()(sig, act, oldact);
	bool ours = ours_installed[sig];
	struct sigaction previous;
	int r = oa_real_sigaction()(sig, NULL, &previous);
	if (r != 0)
		return r;
	if (act) {
		bool wants_default = !(act->sa_flags & SA_SIGINFO) && act->sa_handler == SIG_DFL;
		if (wants_default) {
			if (!ours)
				r = install_ours(sig);
		} else {
			r = oa_real_sigaction()(sig, act, NULL);
			if (r == 0)
				ours_installed[sig] = 0;
		}
		if (r != 0)
			return r;
	}
	if (oldact) {
		*oldact = previous;
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
