"""Process and thread lifecycle at scale, with exact span counts: hundreds of
forked children (exit and _exit), hundreds of short threads, 32 threads at
full speed (every span arrives with backpressure=block; with drop, exported +
dropped = produced); forks while other threads are inside hooks; a storm of
signals whose handler calls instrumented and hooked functions; detached
threads still running at exit. Every process also sends its process span
(named after the program; a forked child's under the frame open at the
fork), which the programs' own span counts do not include."""

import collections
import os
import re
import time

from harness import (DROP_REASONS, Receiver, assert_single_trace, assert_tree_whole, check,
                     check_equal, check_holds, main, parent_pairs, process_spans, program,
                     run_traced, spans_summary)

EVERY_CALL = {'OTLPAUTO_FUNCTION_THRESHOLD': '0', 'OTEL_LOG_LEVEL': 'debug'}
SANITIZED = bool(os.environ.get('OTLPAUTO_SANITIZER'))  # set by meson in sanitized builds


def run(argv, expected, env=None, timeout=120, requests=None):
    """Runs argv under the shim; returns (result, spans) once `expected`
    spans arrived, plus any extra that come within half a second. The
    receiver's requests are appended to `requests` when given."""
    with Receiver() as receiver:
        result = run_traced(argv, receiver, env={**EVERY_CALL, **(env or {})},
                            timeout=timeout)
        spans = receiver.wait_for_spans(expected, timeout=30)
        spans = receiver.wait_for_spans(len(spans) + 1, timeout=0.5)
        if requests is not None:
            requests.extend(receiver.requests)
    return result, spans


def names(spans):
    return dict(collections.Counter(s['name'] for s in spans))


def check_exit(result, what, stdout=None):
    check(result.returncode == 0 and not result.timed_out, f'{what}: exits 0 in time',
          f'status {result.returncode}, timed out {result.timed_out}: {result.stderr[-2000:]}')
    if stdout is not None:
        check_equal(result.stdout, stdout, f'{what}: program output')


def test_forks(children, how):
    what = f'{children} forks ({how})'
    result, spans = run([program('workload'), 'fork', str(children), how], 3 + 3 * children)
    check_exit(result, what)
    print(f'# {what}: {result.elapsed:.1f} s', flush=True)
    check(result.elapsed < 60, f'{what}: run time stays reasonable', f'{result.elapsed:.1f} s')
    check_equal(names(spans), {'workload': children + 1, 'main': 1, 'run_forks': 1,
                               'child_work': children, 'leaf': children},
                f'{what}: every child span arrives, once')
    check_equal(parent_pairs(spans).get(('workload', 'run_forks')), children,
                f'{what}: each child\'s process span under the frame open at the fork')
    check_holds(f'{what}: one whole trace', assert_single_trace, spans)
    check_holds(f'{what}: no duplicate or orphan', assert_tree_whole, spans)
    pids = collections.Counter(s['resource']['process.pid'] for s in spans)
    check_equal(sorted(collections.Counter(pids.values()).items()), [(3, children + 1)],
                f'{what}: three spans from each process (its process span included)')
    # Each child's 3 spans go through the relay the parent hosts; each
    # process's summary counts its own spans as exported.
    lines = result.stderr.splitlines()
    check_equal(collections.Counter(re.sub(r'\d+', 'N', l) for l in lines
                                    if l.startswith('otlpauto: ')
                                    and not l.startswith('otlpauto: clock: ')),
                {'otlpauto: spans: exported N, sampled out N, dropped: ring full N, '
                 'queue full N, export failed N, rejected N, unsent at exit N, '
                 'ended after exit N, connection full N': children + 1,
                 'otlpauto: relay: N of the exported spans went through the relay': children,
                 'otlpauto: relay host: N spans from other processes: exported N, '
                 'failed N, unsent at exit N': 1}, f'{what}: the debug summaries')
    check_equal(sorted(collections.Counter(
        l for l in lines if l.startswith('otlpauto: relay: ')).items()),
                [('otlpauto: relay: 3 of the exported spans went through the relay', children)],
                f'{what}: each child relays its 3 spans')
    check_equal([l for l in lines if l.startswith('otlpauto: relay host: ')],
                [f'otlpauto: relay host: {3 * children} spans from other processes: '
                 f'exported {3 * children}, failed 0, unsent at exit 0'],
                f'{what}: the parent hosts the relay and exports the children\'s spans')
    check_equal(sorted(s['exported'] for s in map(spans_summary, lines) if s),
                [3] * (children + 1), f'{what}: every process exported its 3 spans')


def test_sequential_threads(n):
    what = f'{n} sequential threads'
    result, spans = run([program('stress'), 'threads-seq', str(n)], 3 + 2 * n,
                        env={'OTLPAUTO_BACKPRESSURE': 'block'})
    check_exit(result, what)
    check_equal(names(spans), {'stress': 1, 'main': 1, 'run_threads_seq': 1, 'seq_worker': n,
                               'seq_leaf': n},
                f'{what}: every span arrives, once')
    check_holds(f'{what}: whole tree', assert_tree_whole, spans)
    tids = {s['attributes'].get('thread.id') for s in spans if s['name'] == 'seq_worker'}
    # Thread ids are reused once a thread is joined; at least they differ from main's.
    main_tid = [s['attributes'].get('thread.id') for s in spans if s['name'] == 'main']
    check(main_tid and main_tid[0] not in tids, f'{what}: spans carry their own thread id')


def test_parallel_threads_block(n_threads, calls):
    what = f'{n_threads} threads x {calls} calls, block'
    produced = 2 + n_threads * (calls + 1)  # as the program counts: its process span aside
    # A small ring makes the producers wait for the exporter.
    result, spans = run([program('stress'), 'threads-par', str(n_threads), str(calls)],
                        produced + 1, env={'OTLPAUTO_BACKPRESSURE': 'block',
                                           'OTLPAUTO_BUFFER_SPANS': '256'})
    check_exit(result, what, f'produced {produced}\n')
    check_equal(names(spans), {'stress': 1, 'main': 1, 'run_threads_par': 1,
                               'par_worker': n_threads, 'par_leaf': n_threads * calls},
                f'{what}: every span arrives')
    check_holds(f'{what}: whole tree', assert_tree_whole, spans)
    summary = spans_summary(result.stderr)
    check(summary and summary['exported'] == produced + 1 and summary['ring_full'] == 0
          and summary['queue_full'] == 0, f'{what}: nothing dropped', summary)


def test_small_ring_full_requests(calls):
    """A ring far smaller than a batch passes its mark many times per batch:
    it is drained into the batch each time, and requests still carry full
    batches (the default maximum, 512 spans): most requests are full; the
    exit flush sends less, and so do the first ones, while the arrival rate
    is learnt (a slow, sanitized build learns a lower one: a batch holds 50 ms
    of spans). Sending at each drain would give requests of 64 to 192. The
    schedule delay is set far beyond the run."""
    what = f'one thread x {calls} calls, 256-slot ring'
    produced = 2 + calls + 1  # as the program counts: its process span aside
    requests = []
    result, spans = run([program('stress'), 'threads-par', '1', str(calls)], produced + 1,
                        env={'OTLPAUTO_BACKPRESSURE': 'block', 'OTLPAUTO_BUFFER_SPANS': '256',
                             'OTEL_BSP_SCHEDULE_DELAY': '600000'},
                        requests=requests)
    check_exit(result, what, f'produced {produced}\n')
    check_equal(len(spans), produced + 1, f'{what}: every span arrives (and the process span)')
    sizes = [len(r.spans) for r in requests]
    partial = [n for n in sizes if n != 512]
    check(2 * len(partial) <= len(sizes) and max(sizes, default=0) == 512,
          f'{what}: requests carry full batches', f'{len(partial)} of {len(sizes)}: {partial}')


def test_parallel_threads_drop(n_threads, calls):
    what = f'{n_threads} threads x {calls} calls, drop'
    produced = 2 + n_threads * (calls + 1)  # as the program counts: its process span aside
    result, spans = run([program('stress'), 'threads-par', str(n_threads), str(calls)],
                        1, env={'OTLPAUTO_BACKPRESSURE': 'drop', 'OTLPAUTO_BUFFER_SPANS': '64',
                                'OTEL_BSP_MAX_QUEUE_SIZE': '512'})
    check_exit(result, what, f'produced {produced}\n')
    summary = spans_summary(result.stderr)
    if not check(summary is not None, f'{what}: exit summary printed', result.stderr[-500:]):
        return
    dropped = sum(summary[reason] for reason in DROP_REASONS) + summary['sampled_out']
    print(f'# {what}: {summary}', flush=True)
    check_equal(summary['exported'] + dropped, produced + 1,
                f'{what}: exported + dropped = produced (and the process span)')
    check(dropped > 0, f'{what}: the small ring did drop', summary)
    check_equal(len(spans), summary['exported'], f'{what}: the receiver got every exported span')


def test_fork_while_threads_in_hooks(n_threads, forks):
    what = f'{forks} forks while {n_threads} threads are in hooks'
    if SANITIZED:
        # gcc 12's ASan and TSan do not lock their allocators around fork:
        # a child forked while another thread allocates can hang in malloc.
        print(f'# {what}: skipped under a sanitizer (its allocator is not fork-safe)',
              flush=True)
        return
    result, spans = run([program('stress'), 'fork-busy', str(n_threads), str(forks)], 3 * forks,
                        env={'OTLPAUTO_FUNCTION_EXCLUDE': 'busy_tiny',
                             'OTLPAUTO_BACKPRESSURE': 'block'}, timeout=90)
    check_exit(result, what, f'forked {forks}\n')
    counts = names(spans)
    check_equal((counts.get('fork_child_work'), counts.get('fork_child_leaf')), (forks, forks),
                f'{what}: no child deadlocks, each child\'s spans arrive once')
    child_pids = {s['resource']['process.pid'] for s in spans
                  if s['name'].startswith('fork_child')}
    check_equal(len(child_pids), forks, f'{what}: one pid per child')
    check_equal(len(process_spans(spans)), forks + 1,
                f'{what}: a process span per child, and the parent\'s')
    check_holds(f'{what}: whole tree', assert_tree_whole, spans)


def test_signal_storm(backpressure):
    """SIGALRM and SIGPROF at up to 20 kHz; a handler that interrupts a hook
    passes through it, one that interrupts the program records its spans
    under the interrupted frame. Exact counts are impossible; the tree must
    be whole (block) or the accounting exact (drop), and the program finish."""
    what = f'signal storm ({backpressure})'
    with Receiver() as receiver:
        result = run_traced([program('stress'), 'sigstorm', '1500', '50'], receiver,
                            env={**EVERY_CALL, 'OTLPAUTO_BACKPRESSURE': backpressure},
                            timeout=60)
        summary = spans_summary(result.stderr) or {}
        spans = receiver.wait_for_spans(summary.get('exported', 1), timeout=20)
    check_exit(result, what)
    ticks = int(result.stdout.split()[-1]) if result.stdout.startswith('ticks ') else -1
    counts = names(spans)
    handled = counts.get('on_prof', 0)
    print(f'# {what}: {ticks} ticks, {len(spans)} spans, {handled} handler spans, {summary}',
          flush=True)
    check(ticks > 1000, f'{what}: the timers fired often', ticks)
    check(0 < handled <= ticks, f'{what}: handler spans recorded, at most one per tick',
          (handled, ticks))
    check_equal(len(spans), summary.get('exported'), f'{what}: every exported span arrived')
    if backpressure == 'block':
        check_equal((counts.get('tick_work'), counts.get('tick_leaf')), (handled, handled),
                    f'{what}: each recorded handler has its whole subtree')
        check_holds(f'{what}: one trace', assert_single_trace, spans)
        check_holds(f'{what}: whole tree, no duplicates', assert_tree_whole, spans)
        check_equal(summary.get('ring_full', 0) + summary.get('queue_full', 0), 0,
                    f'{what}: nothing dropped')


def test_detached_threads(backpressure, collector):
    """Exit while 8 detached threads run flat out: the flush is bounded by
    OTLPAUTO_EXIT_TIMEOUT whether the collector keeps up or is down (and
    with block, how long the program waits for room by the export timeout)."""
    what = f'detached threads at exit ({backpressure}, collector {collector})'
    timeout_s = 5 if collector == 'up' else 1
    env = {**EVERY_CALL, 'OTLPAUTO_BACKPRESSURE': backpressure,
           'OTEL_BSP_EXPORT_TIMEOUT': str(timeout_s * 1000),
           'OTLPAUTO_EXIT_TIMEOUT': f'{timeout_s}s'}
    argv = [program('stress'), 'detached', '8', '200']
    if collector == 'down':
        result = run_traced(argv, None, env=env, timeout=30)
        spans = []
    else:
        with Receiver() as receiver:
            result = run_traced(argv, receiver, env=env, timeout=30)
            summary = spans_summary(result.stderr) or {}
            spans = receiver.wait_for_spans(summary.get('exported', 1), timeout=10)
    check_exit(result, what, 'leaving\n')
    # 200 ms of run time, then a flush bounded by the exit timeout (a
    # sanitizer's start-up alone takes more than a second).
    slack = 4 if SANITIZED else 2
    check(result.elapsed < 0.2 + timeout_s + slack, f'{what}: exit is bounded',
          f'{result.elapsed:.2f} s')
    summary = spans_summary(result.stderr)
    check(summary is not None, f'{what}: the exit path ran to its end', result.stderr[-500:])
    # With drop, the running threads keep the queue full: the exiting
    # thread's frames may be dropped (and counted) like any other span.
    if collector == 'up' and backpressure == 'block':
        counts = names(spans)
        check_equal((counts.get('main'), counts.get('run_detached')), (1, 1),
                    f'{what}: the exiting thread\'s frames arrive')
        # More may arrive: a request answered after the deadline counts as
        # failed, and the exporter goes on after the summary until the
        # process is gone. None twice.
        check(summary and len(spans) >= summary['exported'],
              f'{what}: every exported span arrived', (len(spans), summary))
        check_equal(len({s['span_id'] for s in spans}), len(spans),
                    f'{what}: no span arrives twice')


def test():
    started = time.monotonic()
    # A fork costs about half a second under ThreadSanitizer: fewer there.
    forks = 20 if SANITIZED else 200
    test_forks(forks, 'exit')
    test_forks(forks // 2, '_exit')
    test_sequential_threads(500)
    test_parallel_threads_block(32, 1000)
    test_small_ring_full_requests(5000)
    test_parallel_threads_drop(32, 20000)
    test_fork_while_threads_in_hooks(4, 50)
    test_signal_storm('block')
    test_signal_storm('drop')
    for backpressure in ('drop', 'block'):
        for collector in ('up', 'down'):
            test_detached_threads(backpressure, collector)
    print(f'# total {time.monotonic() - started:.1f} s', flush=True)


main(test)
