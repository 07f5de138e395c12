"""Process lifecycle: forked children (exit and _exit) send their own spans
once, parented on the frame open at the fork; exec chains stay one trace
through TRACEPARENT; the exec'd program gets LD_PRELOAD and our settings even
from an empty environment; posix_spawn and system hand over context."""

import collections
import os
import re
import tempfile

from harness import (Receiver, assert_single_trace, assert_tree_whole, check, check_equal,
                     check_holds, main, program, run_traced)

EVERY_CALL = {'OTLPAUTO_FUNCTION_THRESHOLD': '0'}


def run(args, expected, env=None, timeout=120):
    with Receiver() as receiver:
        result = run_traced([program('workload'), *args], receiver,
                            env={**EVERY_CALL, **(env or {})}, timeout=timeout)
        spans = receiver.wait_for_spans(expected, timeout=20)
        more = receiver.wait_for_spans(expected + 1, timeout=0.5)
    return result, more if len(more) > len(spans) else spans


def parent_names(spans, name):
    by_id = {s['span_id']: s['name'] for s in spans}
    return collections.Counter(by_id.get(s['parent_span_id']) for s in spans
                               if s['name'] == name)


def test_forks(children, how):
    result, spans = run(['fork', str(children), how], 2 + 2 * children)
    check_equal(result.returncode, 0, f'{children} forks ({how}): exit status')
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'main': 1, 'run_forks': 1, 'child_work': children,
                               'leaf': children},
                f'{children} forks ({how}): every child span arrives, once')
    check_holds(f'forks ({how}): one trace', assert_single_trace, spans)
    check_holds(f'forks ({how}): whole tree, no duplicates', assert_tree_whole, spans)
    check_equal(parent_names(spans, 'child_work'), {'run_forks': children},
                f'forks ({how}): children parent on the frame open at the fork')
    pids = {s['resource']['process.pid'] for s in spans}
    check_equal(len(pids), children + 1, f'forks ({how}): each child reports its own pid')


def test_exec_chain():
    depth = 4
    result, spans = run(['exec', str(depth)], 4 * depth + 3)
    check_equal(result.returncode, 0, 'exec chain: exit status')
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'main': depth + 1, 'exec_level': depth + 1, 'leaf': depth + 1,
                               'exec workload': depth},
                'exec chain: every level\'s spans arrive')
    check_holds('exec chain: one trace through TRACEPARENT', assert_single_trace, spans)
    check_holds('exec chain: whole tree', assert_tree_whole, spans)
    check_equal(parent_names(spans, 'main'), {None: 1, 'exec workload': depth},
                'exec chain: each new program is a child of the exec span')
    ended = [s for s in spans if s['attributes'].get('otlpauto.end_reason') == 'exec']
    check_equal(len(ended), 2 * depth, 'exec chain: frames open at exec are ended and sent')
    pids = {s['resource']['process.pid'] for s in spans}
    check_equal(len(pids), 1, 'exec chain: exec keeps the pid')
    exec_span = [s for s in spans if s['name'] == 'exec workload'][0]
    check_equal(exec_span['scope']['name'], 'otlpauto.process', 'exec: process scope')
    check_equal(exec_span['attributes'].get('process.executable.path'), program('workload'),
                'exec: process.executable.path')


def test_exec_with_empty_environment():
    """env -i drops everything: the shim restores LD_PRELOAD and its settings
    so the new program is traced and joins the trace."""
    if 'address' in os.environ.get('OTLPAUTO_SANITIZER', ''):
        # env -i also drops ASAN_OPTIONS, and the restored LD_PRELOAD names
        # the library alone: an ASan-built program then refuses to start.
        print('# env -i: skipped under AddressSanitizer', flush=True)
        return
    with Receiver() as receiver:
        result = run_traced(['/usr/bin/env', '-i', program('workload'), 'tree'], receiver,
                            env=EVERY_CALL)
        spans = receiver.wait_for_spans(21, timeout=10)
    check_equal(result.returncode, 0, 'env -i: exit status')
    names = collections.Counter(s['name'] for s in spans)
    check(names['main'] == 1, 'env -i: the exec\'d program is traced', dict(names))
    check(names['exec workload'] == 1, 'env -i: env\'s exec span', dict(names))
    check_holds('env -i: one trace', assert_single_trace, spans)
    check_equal({s['resource']['service.name'] for s in spans}, {'otlpauto-test'},
                'env -i: OTEL_* settings reach the new program')


def test_spawn_and_system():
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, 'spawn.py')
        with open(script, 'w', encoding='utf-8') as f:
            f.write('import os, subprocess, sys\n'
                    'os.system(sys.argv[1] + " tree")\n'
                    'subprocess.run([sys.argv[1], "tree"], check=True)\n')
        with Receiver() as receiver:
            result = run_traced(['/usr/bin/python3', script, program('workload')], receiver,
                                env=EVERY_CALL, timeout=60)
            spans = receiver.wait_for_spans(40, timeout=10)
            spans = receiver.wait_for_spans(len(spans) + 1, timeout=1)
    check_equal(result.returncode, 0, 'spawn/system: exit status')
    names = collections.Counter(s['name'] for s in spans)
    check(names['main'] == 2, 'spawn/system: both children traced', dict(names))
    check_equal(names['system'], 1, 'system: one span')
    check_holds('spawn/system: one trace', assert_single_trace, spans)
    check_holds('spawn/system: whole tree', assert_tree_whole, spans)


def test_clock_inherited():
    """A traced program hands its clock decision (OTLPAUTO_TSC_HZ) to the
    programs it execs, also through an emptied environment: only the first
    decides (CPUID or a short measurement), the others take its rate."""
    if 'address' in os.environ.get('OTLPAUTO_SANITIZER', ''):
        print('# clock through env -i: skipped under AddressSanitizer', flush=True)
        return
    result, _ = run(['exec', '2'], 11, env={'OTEL_LOG_LEVEL': 'debug'})
    check_equal(result.returncode, 0, 'clock: exit status')
    clocks = re.findall(r'^otlpauto: clock: (.*) \((.*)\)$', result.stderr, re.M)
    check(len(clocks) == 3, 'clock: one decision per program', clocks)
    if len(clocks) == 3:
        check(clocks[0][1] != 'inherited', 'clock: the first program decides', clocks)
        check_equal(clocks[1:], [(clocks[0][0], 'inherited')] * 2,
                    'clock: the exec\'d programs take its decision')
    with Receiver() as receiver:
        result = run_traced(['/usr/bin/env', '-i', program('workload'), 'tree'], receiver,
                            env={**EVERY_CALL, 'OTEL_LOG_LEVEL': 'debug'})
    clocks = re.findall(r'^otlpauto: clock: (.*) \((.*)\)$', result.stderr, re.M)
    check(len(clocks) == 2 and clocks[1] == (clocks[0][0], 'inherited'),
          'clock: passed on through env -i', clocks)


def test():
    test_forks(20, 'exit')
    test_forks(10, '_exit')
    test_exec_chain()
    test_exec_with_empty_environment()
    test_spawn_and_system()
    test_clock_inherited()


main(test)
