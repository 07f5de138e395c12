"""A service stopped by SIGTERM, SIGINT or SIGHUP with the default action
still delivers its spans and dies of the same signal, its process span
ending in error with the signal's name; a program's own handler runs
unchanged; the program sees SIG_DFL where it set nothing."""

import collections
import os
import signal
import subprocess
import time

from harness import (Receiver, assert_tree_whole, check, check_equal, check_holds, lib_path,
                     main, one, parent_pairs, program)


def start(receiver, mode):
    env = {k: v for k, v in os.environ.items() if not k.startswith('OTEL_')}
    env.update({'LD_PRELOAD': str(lib_path()), 'OTLPAUTO_FUNCTION_THRESHOLD': '0',
                'OTEL_EXPORTER_OTLP_ENDPOINT': receiver.url, 'OTEL_BSP_EXPORT_TIMEOUT': '5000'})
    process = subprocess.Popen([program('workload'), mode], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
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
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        test_default_action(sig)
    test_own_handler()
    test_disposition_seen_by_program()


main(test)
