"""A process ended by a signal left at its default action (SIGTERM,
SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1...) still delivers its
spans and dies of the same signal, with the same status (core dump
included); faults are not flushed; a program's own handler runs unchanged;
the program sees SIG_DFL where it set nothing. SIGPIPE from `cmd | head -1`
too. The process span ends in error with the signal's name."""

import collections
import os
import resource
import signal
import subprocess
import tempfile
import time

from harness import (Receiver, assert_tree_whole, check, check_equal, check_holds, lib_path,
                     main, one, parent_pairs, preload_value, program, spans_summary)

# The signals whose default action ends the process that the library flushes
# on (hooks/signals.c): all but faults, abort and real-time signals.
FLUSHED = {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGALRM,
           signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGPROF, signal.SIGVTALRM,
           signal.SIGIO, signal.SIGPWR, signal.SIGSTKFLT, signal.SIGXCPU, signal.SIGXFSZ}


def traced_env(receiver, preload=True, **settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith('OTEL_')}
    env.update({'OTLPAUTO_FUNCTION_THRESHOLD': '0', 'OTEL_EXPORTER_OTLP_ENDPOINT': receiver.url,
                'OTLPAUTO_EXIT_TIMEOUT': '5s', 'OTEL_LOG_LEVEL': 'debug', **settings})
    if preload:
        env['LD_PRELOAD'] = str(lib_path())
    return env


def start(receiver, mode, preload=True, **settings):
    process = subprocess.Popen([program('workload'), mode],
                               env=traced_env(receiver, preload, **settings),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    line = process.stdout.readline().decode().strip()
    return process, line


def stop(process, sig):
    os.kill(process.pid, sig)
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    return out.decode(), err.decode()


def test_default_action(sig):
    name = signal.Signals(sig).name
    with Receiver() as receiver:
        process, ready = start(receiver, 'wait-signal')
        check_equal(ready, 'ready', f'{name}: program started')
        started = time.monotonic()
        stop(process, sig)
        elapsed = time.monotonic() - started
        spans = receiver.wait_for_spans(5, timeout=5)
        spans = receiver.wait_for_spans(6, timeout=0.5)
    check_equal(process.returncode, -sig, f'{name}: dies of the same signal')
    check(elapsed < 5, f'{name}: flush is bounded', elapsed)
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': 1, 'main': 1, 'wait_for_signal': 1, 'warm_up': 1,
                               'leaf': 1},
                f'{name}: finished and open spans delivered, and the process span')
    open_frames = [s['name'] for s in spans
                   if s['attributes'].get('otlpauto.end_reason') == 'process_exit']
    check_equal(sorted(open_frames), ['main', 'wait_for_signal'],
                f'{name}: frames open at the signal end with the process')
    check_holds(f'{name}: whole tree', assert_tree_whole, spans)
    check_equal(parent_pairs(spans).get(('main', 'workload')), 1,
                f'{name}: main under the process span')
    if counts['workload'] == 1:
        process = one(spans, 'workload')
        check_equal((process['status_code'], process['status_message'],
                     process['attributes'].get('error.type'),
                     'process.exit.code' in process['attributes'],
                     process['attributes'].get('otlpauto.end_reason')),
                    (2, name, name, False, None),
                    f'{name}: the process span is an error named after the signal, no exit code')


def caught_signals(pid):
    """The signals process pid has a handler for (SigCgt in /proc)."""
    with open(f'/proc/{pid}/status', encoding='ascii') as status:
        for line in status:
            if line.startswith('SigCgt:'):
                mask = int(line.split()[1], 16)
                return {sig for sig in signal.Signals if mask & (1 << (sig - 1))}
    return set()


def test_which_signals_flush():
    """The library catches exactly the signals it flushes on, where the
    program left them at their default action: not faults, abort or
    real-time signals."""
    caught = {}
    with Receiver() as receiver:
        for preload in (False, True):
            process, ready = start(receiver, 'wait-signal', preload)
            caught[preload] = caught_signals(process.pid) if ready == 'ready' else None
            process.kill()
            process.communicate()
    ours = caught[True] - caught[False] if caught[True] is not None else None
    check_equal(sorted(ours, key=int) if ours is not None else None, sorted(FLUSHED, key=int),
                'the library catches the default-action signals it flushes on, and only those')


def wait_status(argv, env, cwd):
    """Starts argv (which prints "ready") with core dumps allowed, sends
    SIGQUIT, and returns the raw wait status."""
    def allow_core():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=allow_core)
    ready = process.stdout.readline().decode().strip()
    os.kill(process.pid, signal.SIGQUIT if ready == 'ready' else signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            process.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
            process.stdout.close()
            return status
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    return None


def test_core_dump():
    """SIGQUIT is flushed, and the process still dies of it with a core
    dump when it would have dumped one untraced."""
    statuses = {}
    with Receiver() as receiver, tempfile.TemporaryDirectory() as directory:
        for preload in (False, True):
            statuses[preload] = wait_status([program('workload'), 'wait-signal'],
                                            traced_env(receiver, preload), directory)
    untraced, traced = statuses[False], statuses[True]
    describe = (lambda status: None if status is None else
                (os.WIFSIGNALED(status) and os.WTERMSIG(status), os.WCOREDUMP(status)))
    print(f'# SIGQUIT (signal, core dumped): untraced {describe(untraced)}, '
          f'traced {describe(traced)}', flush=True)
    check(traced is not None and describe(traced) == describe(untraced),
          'SIGQUIT: the same status as untraced, core dump included',
          (describe(untraced), describe(traced)))


def test_fault_not_flushed():
    """A fault ends the process as it would untraced, without a flush: the
    frames open at the signal are not sent."""
    with Receiver() as receiver:
        statuses = []
        for preload in (False, True):
            process, ready = start(receiver, 'wait-signal', preload,
                                   OTEL_BSP_SCHEDULE_DELAY='100')
            check_equal(ready, 'ready', f'SIGSEGV (preloaded {preload}): program started')
            time.sleep(0.5)  # the schedule sends warm_up and leaf
            stop(process, signal.SIGSEGV)
            statuses.append(process.returncode)
        spans = receiver.wait_for_spans(3, timeout=1)
    check_equal(statuses[1], statuses[0], 'SIGSEGV: the same status as untraced')
    check_equal(sorted(s['name'] for s in spans), ['leaf', 'warm_up'],
                'SIGSEGV: no flush, open frames are not sent')


def test_sigpipe_yes_head():
    """`yes | head -1` with yes traced: yes dies of SIGPIPE, at once, after
    the library's handler ran (its debug summary)."""
    with Receiver() as receiver:
        env = traced_env(receiver)
        env['LD_PRELOAD'] = preload_value()
        started = time.monotonic()
        yes = subprocess.Popen(['yes'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
        head = subprocess.run(['head', '-1'], stdin=yes.stdout, capture_output=True, timeout=30)
        yes.stdout.close()
        try:
            _, err = yes.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(yes.pid, signal.SIGKILL)
            _, err = yes.communicate()
        elapsed = time.monotonic() - started
    check_equal((head.stdout, yes.returncode), (b'y\n', -signal.SIGPIPE),
                'yes | head -1: head prints y, yes dies of SIGPIPE')
    check(elapsed < 5, 'yes | head -1: at once', f'{elapsed:.2f} s')
    check(spans_summary(err.decode()) is not None, 'yes | head -1: the flush ran before death',
          err.decode()[-300:])


def test_sigpipe_spans():
    """An instrumented writer cut off by `head -1`: its spans arrive."""
    with Receiver() as receiver:
        writer = subprocess.Popen([program('exits'), 'write-forever'], env=traced_env(receiver),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
        head = subprocess.run(['head', '-1'], stdin=writer.stdout, capture_output=True,
                              timeout=30)
        writer.stdout.close()
        try:
            writer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(writer.pid, signal.SIGKILL)
            writer.communicate()
        spans = receiver.wait_for_spans(4, timeout=5)
        spans = receiver.wait_for_spans(5, timeout=0.5)
    check_equal((head.stdout, writer.returncode), (b'y\n', -signal.SIGPIPE),
                'writer | head -1: the writer dies of SIGPIPE')
    ended = sorted((s['name'], s['attributes'].get('otlpauto.end_reason', '')) for s in spans)
    check_equal(ended, [('exits', ''), ('leaf', ''), ('main', 'process_exit'),
                        ('write_forever', 'process_exit')],
                'writer | head -1: finished and open spans delivered, and the process span')
    check_holds('writer | head -1: whole tree', assert_tree_whole, spans)


def test_killed_commands_of_a_script():
    """A traced shell hosts the relay; its commands send through it and have
    no exporter thread: one killed by SIGTERM, and `yes` cut off by `head -1`,
    send their process spans from the signal handler (on memory of their
    own: malloc may hold its lock where the signal came), in error with the
    signal's name. Before, each was counted as unsent at exit, and lost."""
    # killed once it runs sleep and the library has started in it (its
    # SIGTERM handler is in place: SigCgt bit 14), not while it is still
    # the shell's forked child (bash builtins only between: every process
    # is a span); a fixed pause was too short under ASan on a loaded machine
    script = ('sleep 30 & p=$!; '
              'until read -r c < /proc/$p/comm && [ "$c" = sleep ] && '
              'while read -r k v; do [ "$k" = SigCgt: ] && break; done < /proc/$p/status && '
              '(( 0x$v >> 14 & 1 )); do :; done; '
              'sleep 0.2; kill $p; wait; yes | head -1')
    with Receiver() as receiver:
        env = traced_env(receiver)
        result = subprocess.run(['bash', '-c', script], env=env, capture_output=True, timeout=60)
        spans = receiver.wait_for_spans(9, timeout=10)
        spans = receiver.wait_for_spans(10, timeout=0.5)
    check_equal((result.returncode, result.stdout), (0, b'y\n'), 'killed commands: the script')
    check_equal(collections.Counter(s['name'] for s in spans),
                {'bash': 1, 'exec sleep': 2, 'sleep': 2, 'exec yes': 1, 'yes': 1, 'exec head': 1,
                 'head': 1}, 'killed commands: every process span, once')
    killed = sorted((s['status_code'], s['attributes'].get('error.type'))
                    for s in spans if s['name'] in ('sleep', 'yes'))
    check_equal(killed, [(0, None), (2, 'SIGPIPE'), (2, 'SIGTERM')],
                'killed commands: in error with the signal\'s name')
    check_equal(parent_pairs(spans).get(('sleep', 'exec sleep')), 2,
                'killed commands: under their exec spans')
    check_holds('killed commands: whole tree', assert_tree_whole, spans)
    lost = [s for s in map(spans_summary, result.stderr.decode().splitlines()) if s]
    check(lost and all(sum(v for k, v in s.items() if k not in ('exported', 'sampled_out')) == 0
                       for s in lost),
          'killed commands: nothing counted as lost', result.stderr.decode()[-800:])


def test_killed_relay_client_names_its_functions():
    """A command of a traced script whose only spans are the frames open when
    a signal kills it has no exporter thread: its handler encodes them and
    names the functions without libelf (it allocates), from the symbol table
    read in place. Before, they were named by their addresses."""
    script = '"$0" wait-signal; true'
    with Receiver() as receiver:
        env = traced_env(receiver, OTLPAUTO_FUNCTION_THRESHOLD='50ms')
        shell = subprocess.Popen(['bash', '-c', script, program('workload')], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
        try:
            ready = shell.stdout.readline().decode().strip()
            time.sleep(0.2)  # past the threshold: the open frames are spans
            with open(f'/proc/{shell.pid}/task/{shell.pid}/children', encoding='ascii') as f:
                child = int(f.read().split()[0])
            os.kill(child, signal.SIGTERM)
            _, err = shell.communicate(timeout=30)
        except (subprocess.TimeoutExpired, ValueError, IndexError, OSError):
            os.killpg(shell.pid, signal.SIGKILL)
            _, err = shell.communicate()
        spans = receiver.wait_for_spans(5, timeout=10)
        spans = receiver.wait_for_spans(6, timeout=0.5)
    check_equal(ready, 'ready', 'killed relay client: started')
    check_equal(sorted(s['name'] for s in spans),
                ['bash', 'exec workload', 'main', 'wait_for_signal', 'workload'],
                'killed relay client: its functions named, not addresses')
    named = {s['name']: s['attributes'].get('code.function.name') for s in spans}
    check_equal((named.get('main'), named.get('wait_for_signal')), ('main', 'wait_for_signal'),
                'killed relay client: code.function.name')
    check_holds('killed relay client: whole tree', assert_tree_whole, spans)


def test_own_handler():
    with Receiver() as receiver:
        process, ready = start(receiver, 'own-handler')
        out, _ = stop(process, signal.SIGTERM)
        # main, own_handler, wait_for_signal, warm_up, leaf and the process span
        spans = receiver.wait_for_spans(6, timeout=5)
    check_equal(process.returncode, 0, 'own handler: runs and exits 0')
    check_equal(out.strip(), 'handled', 'own handler: its output')
    names = {s['name'] for s in spans}
    check({'own_handler', 'main', 'workload'} <= names, 'own handler: spans flushed at its exit',
          names)
    process = [s for s in spans if s['name'] == 'workload']
    check_equal([(s['status_code'], s['attributes'].get('process.exit.code')) for s in process],
                [(0, 0)], 'own handler: the process exits 0 from the handler, no error')


def test_disposition_seen_by_program():
    result = subprocess.run([program('workload'), 'query-signal'], capture_output=True,
                            timeout=30, env={**os.environ, 'LD_PRELOAD': str(lib_path()),
                                             'OTEL_TRACES_EXPORTER': 'none'})
    check_equal(result.stdout.decode().strip(), 'default',
                'the program sees SIG_DFL for SIGTERM under the shim')


def test():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE,
                signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2):
        test_default_action(sig)
    test_which_signals_flush()
    test_core_dump()
    test_fault_not_flushed()
    test_sigpipe_yes_head()
    test_sigpipe_spans()
    test_killed_commands_of_a_script()
    test_killed_relay_client_names_its_functions()
    test_own_handler()
    test_disposition_seen_by_program()


main(test)
