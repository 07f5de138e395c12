"""The end of a process. A collector that accepts connections and never
answers holds an exit for OTLPAUTO_EXIT_TIMEOUT (default 2 s), not 30 s; a
second SIGINT or SIGTERM during that flush ends the process at once with the
signal's status; spans not sent are counted by reason in the debug summary.
The exit path of a signal is async-signal-safe (a signal that lands inside
malloc does not deadlock it); errno survives frames ended as unwound; spans
made by thread-specific data destructors that run after the library's
thread-exit handler are sent."""

import collections
import os
import signal
import socket
import subprocess
import threading
import time

from harness import (Receiver, assert_tree_whole, check, check_equal, check_holds,
                     children_of, main, one, preload_value, program, run_traced, spans_summary)

SANITIZER = os.environ.get('OTLPAUTO_SANITIZER', '')
DEBUG = {'OTEL_LOG_LEVEL': 'debug'}


class BlackHole:
    """A collector that accepts TCP connections and never reads or answers."""

    def __init__(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(('127.0.0.1', 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self._connections = []
        self._stopping = threading.Event()
        self.connected = threading.Event()  # a first connection came
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                continue
            self._connections.append(connection)
            self.connected.set()

    @property
    def url(self):
        return f'http://127.0.0.1:{self._listener.getsockname()[1]}'

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stopping.set()
        self._thread.join(timeout=5)
        for connection in self._connections:
            connection.close()
        self._listener.close()


def lost(summary):
    """Spans the summary counts as not sent for want of a collector."""
    return summary['export_failed'] + summary['unsent_at_exit']


def test_stalled_collector_curl():
    """curl, a real program, against a collector that never answers."""
    if 'thread' in SANITIZER:
        print('# curl: skipped under ThreadSanitizer (it cannot be preloaded)', flush=True)
        return
    with Receiver() as target:
        curl = ['curl', '-s', '-o', '/dev/null', '--max-time', '20', target.url + '/']
        untraced = run_traced(curl, preload=False, timeout=30)
        with Receiver() as collector:
            live = run_traced(curl, collector, env=DEBUG, timeout=60)
            produced = (spans_summary(live.stderr) or {}).get('exported', 0)
            spans = collector.wait_for_spans(produced, timeout=10)
        check(produced > 0 and len(spans) == produced,
              'curl, live collector: every span counted as exported arrives',
              (produced, len(spans), live.stderr[-500:]))
        # A flush cannot end before its timeout when nothing answers: the
        # lower bounds hold under any load; the upper ones are generous.
        for timeout_setting, bound in ((None, 2.0), ('300ms', 0.3), ('4s', 4.0)):
            what = f'curl, collector never answers, OTLPAUTO_EXIT_TIMEOUT={timeout_setting}'
            with BlackHole() as hole:
                result = run_traced(curl, hole, timeout=60,
                                    env={**DEBUG, 'OTLPAUTO_EXIT_TIMEOUT': timeout_setting})
            print(f'# {what}: {result.elapsed:.3f} s (untraced {untraced.elapsed:.3f} s)',
                  flush=True)
            check_equal(result.returncode, 0, f'{what}: exit status')
            check(result.elapsed < bound + 5, f'{what}: exit bounded by the exit timeout',
                  f'{result.elapsed:.2f} s')
            check(result.elapsed > bound * 0.75, f'{what}: the flush used its time',
                  f'{result.elapsed:.2f} s')
            summary = spans_summary(result.stderr)
            check(summary and summary['exported'] == 0 and lost(summary) == produced,
                  f'{what}: the {produced} spans are counted as not sent',
                  result.stderr[-800:])


def start_waiting(argv, collector, env):
    """Starts argv (which prints "ready") under the shim; returns the process."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith('OTEL_')}
    child_env.update({'LD_PRELOAD': preload_value(), 'OTEL_EXPORTER_OTLP_ENDPOINT': collector.url,
                      'OTLPAUTO_FUNCTION_THRESHOLD': '0', **env})
    process = subprocess.Popen(argv, env=child_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    return process


def finish(process, timeout):
    """Waits for process; kills its group after `timeout` s. Returns (stdout,
    stderr, whether it finished in time)."""
    try:
        out, err = process.communicate(timeout=timeout)
        in_time = True
    except subprocess.TimeoutExpired:
        in_time = False
        out, err = b'', b''
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if not in_time:
        out, err = process.communicate()
    return out.decode(errors='replace'), err.decode(errors='replace'), in_time


def catches(pid, sig):
    """Whether process pid has a handler for sig (SigCgt in its status)."""
    with open(f'/proc/{pid}/status', encoding='ascii') as status:
        for line in status:
            if line.startswith('SigCgt:'):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def wait_until(condition, timeout):
    """Polls condition every 10 ms for up to timeout s; its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_second_signal(first, second):
    """A signal starts the flush (or the program exits normally into it,
    first=None); the collector never answers; the second signal ends the
    process at once with its own status."""
    what = (f'{signal.Signals(first).name} then {signal.Signals(second).name}' if first
            else f'exit, then {signal.Signals(second).name}')
    argv = [program('workload'), 'wait-signal' if first else 'status', '0']
    with BlackHole() as hole:
        process = start_waiting(argv, hole, {'OTLPAUTO_EXIT_TIMEOUT': '30s'})
        if first:
            check_equal(process.stdout.readline().decode().strip(), 'ready',
                        f'{what}: program started')
            os.kill(process.pid, first)
        # The flush connects (nothing was sent before): it has begun.
        check(hole.connected.wait(timeout=10), f'{what}: the flush connects')
        if first:
            # The connection alone may be the exporter's own (a slow start
            # under a sanitizer reaches its schedule): the handler has run
            # once the second signal is back to its default action.
            check(wait_until(lambda: not catches(process.pid, second), 10),
                  f'{what}: the handler gives the second signal its default action')
        time.sleep(0.2)
        check(process.poll() is None, f'{what}: the flush waits for the collector',
              process.returncode)
        sent = time.monotonic()
        os.kill(process.pid, second)
        _, err, in_time = finish(process, timeout=10)
        elapsed = time.monotonic() - sent
    print(f'# {what}: died {elapsed:.3f} s after the second signal', flush=True)
    check(in_time and elapsed < 2, f'{what}: the second signal ends the process at once',
          f'{elapsed:.2f} s, {err[-300:]}')
    check_equal(process.returncode, -second, f'{what}: dies of the second signal')


def test_signal_in_malloc(runs):
    """SIGTERM lands while the main thread holds malloc's lock, before any
    span was committed (no exporter thread): the handler may not start one
    (that allocates). The process dies of SIGTERM at once every time, and
    the two frames it ends and the process span are counted as unsent."""
    what = f'SIGTERM inside malloc, {runs} runs'
    outcomes = collections.Counter()
    problems = []
    with Receiver() as receiver:
        for _ in range(runs):
            process = start_waiting([program('exits'), 'alloc-loop'], receiver,
                                    {**DEBUG, 'OTLPAUTO_FUNCTION_THRESHOLD': '50ms'})
            ready = process.stdout.readline().decode().strip()
            time.sleep(0.1)
            os.kill(process.pid, signal.SIGTERM)
            _, err, in_time = finish(process, timeout=5)
            summary = spans_summary(err)
            outcome = ('hung' if not in_time else process.returncode,
                       summary and (summary['exported'], summary['unsent_at_exit']))
            outcomes[outcome] += 1
            if ready != 'ready' or outcome != (-signal.SIGTERM, (0, 3)):
                problems.append((ready, outcome, err[-300:]))
    print(f'# {what}: {dict(outcomes)}', flush=True)
    check(not problems,
          f'{what}: dies of SIGTERM at once, main, alloc_loop and the process span unsent',
          problems[:3])


def test_signal_in_malloc_relayed(runs):
    """The same program as a relay client (`otlpauto run` hosts the relay):
    no exporter thread, so the handler encodes and sends itself, on memory
    of its own, even when the signal came inside malloc. It dies of SIGTERM
    at once every time and its three spans arrive (main and alloc_loop named
    by address: no symbol table is read there)."""
    what = f'SIGTERM inside malloc, relayed, {runs} runs'
    outcomes = collections.Counter()
    problems = []
    with Receiver() as receiver:
        for run in range(runs):
            env = {k: v for k, v in os.environ.items() if not k.startswith('OTEL_')}
            env.update({**DEBUG, 'OTLPAUTO_FUNCTION_THRESHOLD': '50ms'})
            host = subprocess.Popen([os.environ['OTLPAUTO_CLI'], 'run', '--endpoint',
                                     receiver.url, '--', program('exits'), 'alloc-loop'],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
            ready = host.stdout.readline().decode().strip()
            time.sleep(0.1)
            with open(f'/proc/{host.pid}/task/{host.pid}/children', encoding='ascii') as f:
                traced = [int(pid) for pid in f.read().split()]
            for pid in traced:
                os.kill(pid, signal.SIGTERM)
            _, err, in_time = finish(host, timeout=5)
            spans = receiver.wait_for_spans(3 * (run + 1), timeout=5)
            outcome = ('hung' if not in_time else host.returncode, len(traced))
            outcomes[outcome] += 1
            if ready != 'ready' or outcome != (-signal.SIGTERM, 1):
                problems.append((ready, outcome, err[-300:]))
        spans = receiver.wait_for_spans(3 * runs + 1, timeout=0.5)
    print(f'# {what}: {dict(outcomes)}', flush=True)
    check(not problems, f'{what}: the program dies of SIGTERM at once', problems[:3])
    process_spans = [s for s in spans if s['name'] == 'exits']
    check_equal((len(spans), len(process_spans)), (3 * runs, runs),
                f'{what}: main, alloc_loop and the process span of every run')
    check_equal({(s['status_code'], s['attributes'].get('error.type')) for s in process_spans},
                {(2, 'SIGTERM')}, f'{what}: each process span in error, SIGTERM')


def test_ended_after_exit():
    """main exits while a worker's call is open; the call ends during the
    exit flush (the collector never answers): counted, not queued."""
    what = 'a call that ends after the exit began'
    with BlackHole() as hole:
        result = run_traced([program('exits'), 'end-after-exit'], hole, timeout=30,
                            env={**DEBUG, 'OTLPAUTO_FUNCTION_THRESHOLD': '0',
                                 'OTLPAUTO_EXIT_TIMEOUT': '1s'})
    check_equal(result.returncode, 0, f'{what}: exit status')
    check(result.elapsed < 6, f'{what}: exit bounded', f'{result.elapsed:.2f} s')
    summary = spans_summary(result.stderr)
    # main, end_after_exit, leaf and the process span were queued;
    # ends_during_exit and the signal_then_sleep it calls ended later.
    check(summary and (summary['exported'], lost(summary), summary['ended_after_exit'])
          == (0, 4, 2), f'{what}: 4 counted not sent, 2 counted as ended after exit',
          result.stderr[-500:])


def test_errno_after_unwound_frames():
    """The frame left by longjmp is the process's first span: starting the
    exporter thread fails (a thread limit) and sets errno, which the
    function-exit hook must not leak into the program."""
    result = run_traced([program('exits'), 'errno-unwound'], None, timeout=30,
                        env={'OTLPAUTO_FUNCTION_THRESHOLD': '0', 'OTEL_TRACES_EXPORTER': 'none'})
    check_equal((result.returncode, result.stdout), (0, 'errno kept\n'),
                'errno survives frames ended as unwound')


def test_destructor_spans():
    """A thread-specific data destructor of the program runs after the
    library's thread-exit handler (its key is newer): its calls are sent."""
    what = 'destructor after thread exit'
    with Receiver() as receiver:
        result = run_traced([program('exits'), 'tls-destructor'], receiver, timeout=30,
                            env={'OTLPAUTO_FUNCTION_THRESHOLD': '0'})
        spans = receiver.wait_for_spans(8, timeout=10)
        spans = receiver.wait_for_spans(9, timeout=0.5)
    check_equal(result.returncode, 0, f'{what}: exit status')
    check_equal(dict(collections.Counter(s['name'] for s in spans)),
                {'exits': 1, 'main': 1, 'tls_destructor': 1, 'destructor_worker': 1, 'leaf': 2,
                 'late_destructor': 1, 'in_destructor': 1},
                f'{what}: every span arrives, and the process span')
    check_holds(f'{what}: whole tree', assert_tree_whole, spans)
    if len(spans) == 8:
        destructor = one(spans, 'late_destructor')
        check_equal([s['name'] for s in children_of(spans, destructor)], ['in_destructor'],
                    f'{what}: the destructor\'s calls are its children')
        check_equal(destructor['parent_span_id'], one(spans, 'tls_destructor')['span_id'],
                    f'{what}: parented like the thread\'s other spans')


def test():
    test_stalled_collector_curl()
    test_second_signal(signal.SIGTERM, signal.SIGINT)
    test_second_signal(signal.SIGTERM, signal.SIGTERM)
    test_second_signal(None, signal.SIGINT)
    test_signal_in_malloc(16)
    test_signal_in_malloc_relayed(8)
    test_ended_after_exit()
    test_errno_after_unwound_frames()
    test_destructor_spans()


main(test)
