"""Function spans from -finstrument-functions: exact counts per name, parent
names, one trace per run, every call of a hot loop with block backpressure,
recursion, longjmp, exit from deep inside, name and depth filters. Every run
also has the process span `workload`, parent of `main`."""

import collections
import os
import re
import tempfile

from harness import (Receiver, assert_single_trace, assert_tree_whole, by_name,
                     check, check_equal, check_holds, main, one, parent_pairs, process_spans,
                     program, run_traced, without_process_spans)

WORKLOAD = None
EVERY_CALL = {'OTLPAUTO_FUNCTION_THRESHOLD': '0'}


def run(args, expected, env=None, timeout=60):
    """Runs the workload under the shim; returns (result, spans) once the
    receiver has `expected` spans (or the wait timed out)."""
    with Receiver() as receiver:
        result = run_traced([WORKLOAD] + args, receiver, env={**EVERY_CALL, **(env or {})},
                            timeout=timeout)
        spans = receiver.wait_for_spans(expected, timeout=10)
        # Anything beyond the expected count would be a duplicate or a stray.
        extra = receiver.wait_for_spans(expected + 1, timeout=0.5)
    check_equal(result.returncode, 0 if args[0] != 'exit-deep' else 3,
                f'{args}: exit status')
    return result, extra if len(extra) > len(spans) else spans


def parent_name(spans, span):
    by_id = {s['span_id']: s for s in spans}
    parent = by_id.get(span['parent_span_id'])
    return parent['name'] if parent else None


def test_tree():
    _, spans = run(['tree'], 21)
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': 1, 'main': 1, 'run_tree': 1, 'worker_main': 3,
                               'stage_a': 3, 'stage_b': 3, 'leaf': 9}, 'tree: spans per name')
    check_holds('tree: one trace', assert_single_trace, spans)
    check_holds('tree: whole', assert_tree_whole, spans)
    check_equal(parent_pairs(spans), {('workload', None): 1, ('main', 'workload'): 1,
                                      ('run_tree', 'main'): 1, ('worker_main', 'run_tree'): 3,
                                      ('stage_a', 'worker_main'): 3,
                                      ('stage_b', 'worker_main'): 3,
                                      ('leaf', 'stage_a'): 6, ('leaf', 'stage_b'): 3},
                'tree: parent of each span (threads parent on their creator)')
    main_span = one(spans, 'main')
    check_equal([s['name'] for s in process_spans(spans)], ['workload'],
                'tree: the process span is the root')
    check_equal(main_span['kind'], 1, 'tree: kind internal')
    check_equal(main_span['attributes'].get('code.function.name'), 'main',
                'tree: code.function.name')
    threads = {s['attributes']['thread.id'] for s in by_name(spans, 'worker_main')}
    check_equal(len(threads), 3, 'tree: three worker threads by thread.id')
    check(all('thread.name' in s['attributes'] for s in spans), 'tree: thread.name set')
    check(all(s['start'] <= s['end'] for s in spans), 'tree: start <= end')
    for s in spans:
        parent = {p['span_id']: p for p in spans}.get(s['parent_span_id'])
        if parent and not (parent['start'] <= s['start'] and s['end'] <= parent['end']):
            check(False, f'tree: {s["name"]} lies within its parent {parent["name"]}')
            break
    else:
        check(True, 'tree: every span lies within its parent')
    scope = main_span['scope']['name']
    check_equal(scope, 'otlpauto.functions', 'tree: instrumentation scope')


def test_hot_loop_block():
    calls = 300000
    result, spans = run(['hot', str(calls)], calls + 3,
                        env={'OTLPAUTO_BACKPRESSURE': 'block', 'OTLPAUTO_BUFFER_SPANS': '4096',
                             'OTEL_BSP_MAX_QUEUE_SIZE': '8192',
                             'OTEL_BSP_MAX_EXPORT_BATCH_SIZE': '4096',
                             'OTEL_LOG_LEVEL': 'debug'}, timeout=120)
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(counts['tiny'], calls, 'hot loop, block: every call arrives')
    check_equal((counts['run_hot'], counts['main'], counts['workload']), (1, 1, 1),
                'hot loop: enclosing frames and the process span')
    check_equal(len({s['span_id'] for s in spans}), len(spans), 'hot loop: no duplicates')
    check('dropped: ring full 0, queue full 0' in result.stderr,
          'hot loop: nothing dropped (debug summary)', result.stderr[-400:])


def test_default_threshold_filters_fast_calls():
    with Receiver() as receiver:
        result = run_traced([WORKLOAD, 'hot', '100000'], receiver)
        spans = receiver.wait_for_spans(1, timeout=3)
    check_equal(result.returncode, 0, 'default threshold: exit status')
    names = collections.Counter(s['name'] for s in spans)
    # A tiny call preempted on a busy machine may really take 100us: only
    # those may appear.
    slow_tiny = [s for s in spans if s['name'] == 'tiny']
    check(len(slow_tiny) < 100 and all(s['end'] - s['start'] >= 100000 for s in slow_tiny),
          'default threshold (100us): fast calls are not spans', len(slow_tiny))
    check(names['main'] == 1 and names['run_hot'] == 1,
          'default threshold: the slow enclosing frames are', dict(names))


def test_recursion():
    _, spans = run(['recurse', '300'], 303)
    check_equal(len(by_name(spans, 'recurse')), 301, 'recursion: 301 frames')
    check_holds('recursion: whole tree', assert_tree_whole, spans)
    depth = collections.Counter(parent_name(spans, s) for s in by_name(spans, 'recurse'))
    check_equal(depth['recurse'], 300, 'recursion: each level under the previous')


def test_deeper_than_shadow_stack():
    _, spans = run(['recurse', '3000'], 1025)
    check_holds('deep recursion: whole tree', assert_tree_whole, spans)
    check_equal(len(process_spans(spans)), 1, 'deep recursion: one process span')
    frames = without_process_spans(spans)
    check(1000 <= len(frames) <= 1030, 'deep recursion: frames beyond the shadow stack are '
          'counted, not sent', len(frames))


def test_longjmp():
    _, spans = run(['longjmp'], 7)
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': 1, 'main': 1, 'run_longjmp': 1, 'jump_deep': 3,
                               'leaf': 1},
                'longjmp: spans per name')
    unwound = [s for s in by_name(spans, 'jump_deep')
               if s['attributes'].get('otlpauto.end_reason') == 'unwound']
    check_equal(len(unwound), 3, 'longjmp: skipped frames end as unwound')
    check_holds('longjmp: whole tree', assert_tree_whole, spans)


def test_exit_from_deep_inside():
    _, spans = run(['exit-deep'], 5)
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': 1, 'main': 1, 'exit_deep': 3},
                'exit from deep: open frames sent, and the process span')
    check(all(s['attributes'].get('otlpauto.end_reason') == 'process_exit'
              for s in without_process_spans(spans)),
          'exit from deep: frames marked process_exit')
    process = one(spans, 'workload')
    check_equal((process['attributes'].get('process.exit.code'),
                 process['attributes'].get('otlpauto.end_reason')), (3, None),
                'exit from deep: the process span has exit(3)\'s code, no end reason')
    check_holds('exit from deep: whole tree', assert_tree_whole, spans)


def test_filters():
    _, spans = run(['tree'], 15, env={'OTLPAUTO_FUNCTION_EXCLUDE': 'stage_*'})
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': 1, 'main': 1, 'run_tree': 1, 'worker_main': 3,
                               'leaf': 9},
                'exclude stage_*: spans per name')
    leaf_parents = collections.Counter(parent_name(spans, s) for s in by_name(spans, 'leaf'))
    check_equal(dict(leaf_parents), {'worker_main': 9},
                'exclude: children hang on the next exported ancestor')
    _, spans = run(['tree'], 14, env={'OTLPAUTO_FUNCTION_INCLUDE': 'main,worker_*,leaf'})
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': 1, 'main': 1, 'worker_main': 3, 'leaf': 9},
                'include: spans per name')
    check_holds('include: whole tree', assert_tree_whole, spans)
    _, spans = run(['tree'], 12, env={'OTLPAUTO_FUNCTION_MAX_DEPTH': '2'})
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': 1, 'main': 1, 'run_tree': 1, 'worker_main': 3,
                               'stage_a': 3, 'stage_b': 3},
                'max depth 2: threads start their own depth count', )


def test_family_off():
    with Receiver() as receiver:
        result = run_traced([WORKLOAD, 'tree'], receiver,
                            env={**EVERY_CALL, 'OTLPAUTO_HOOKS': 'sockets,process'})
        spans = receiver.wait_for_spans(2, timeout=1.5)
    check_equal(result.returncode, 0, 'functions off: exit status')
    check_equal([s['name'] for s in spans], ['workload'],
                'OTLPAUTO_HOOKS without functions: no function spans, the process span only')
    with Receiver() as receiver:
        result = run_traced([WORKLOAD, 'tree'], receiver,
                            env={**EVERY_CALL, 'OTLPAUTO_HOOKS': 'sockets'})
        spans = receiver.wait_for_spans(1, timeout=1.5)
    check_equal(result.returncode, 0, 'functions and process off: exit status')
    check_equal(len(spans), 0, 'OTLPAUTO_HOOKS without process: no process span either')


def test_cpp_exceptions():
    try:
        throws = program('throws')
    except FileNotFoundError:
        check(False, 'C++ test program built (g++ missing?)')
        return
    rounds = 5
    with Receiver() as receiver:
        result = run_traced([throws, str(rounds)], receiver, env=EVERY_CALL)
        # per round: checkout + 4 check_stock frames; plus main and the
        # process span
        spans = receiver.wait_for_spans(5 * rounds + 2, timeout=10)
        spans = receiver.wait_for_spans(len(spans) + 1, timeout=0.5)
    check_equal(result.returncode, 0, 'C++ exceptions: exit status')
    check_equal(result.stdout.strip(), f'caught {rounds}', 'C++ exceptions: program output')
    counts = collections.Counter(s['name'] for s in spans)
    check(counts['shop::check_stock(int)'] == 4 * rounds,
          'C++ exceptions: frames left by the exception are sent, demangled', dict(counts))
    check_equal(counts['shop::checkout(shop::Cart&)'], rounds, 'C++ exceptions: checkout spans')
    check_equal([s['name'] for s in process_spans(spans)], ['throws'],
                'C++ exceptions: one process span')
    check_holds('C++ exceptions: whole tree', assert_tree_whole, spans)
    check_holds('C++ exceptions: one trace', assert_single_trace, spans)


def test_stacktraces():
    # Stack traces are for function spans: the process span has none.
    _, spans = run(['tree'], 21, env={'OTLPAUTO_STACKTRACE': '1',
                                      'OTLPAUTO_STACKTRACE_THRESHOLD': '0'})
    check_equal([('code.stacktrace' in s['attributes']) for s in process_spans(spans)], [False],
                'stack traces: not on the process span')
    spans = without_process_spans(spans)
    traces = [s['attributes'].get('code.stacktrace', '') for s in spans]
    check(all(traces), 'stack traces: every span over the threshold has one')
    firsts = {s['name']: s['attributes'].get('code.stacktrace', '').split(' ')[0] for s in spans}
    check(all(name == first for name, first in firsts.items()),
          'stack traces: start at the function itself', firsts)
    leaf = by_name(spans, 'leaf')[0]['attributes'].get('code.stacktrace', '')
    check('\nstage_' in leaf and '\nworker_main' in leaf,
          'stack traces: callers follow, innermost first', leaf)
    _, spans = run(['tree'], 21, env={'OTLPAUTO_STACKTRACE': '1'})
    wrong = [s['name'] for s in without_process_spans(spans)
             if ('code.stacktrace' in s['attributes']) != (s['end'] - s['start'] >= 10_000_000)]
    check(not wrong, 'stack traces: exactly the spans over the threshold (10ms default)', wrong)


def test_without_opened_libraries():
    """libunwind, libprotobuf-c and libelf are opened when needed: where they
    cannot be (here files of their names that lack their functions), the
    program runs and its spans are sent, named by address and without stack
    traces, after one warning each. (When the shim linked them, the program
    could not start.)"""
    stub = os.path.abspath(program('libsymtest_linked.so'))
    with tempfile.TemporaryDirectory() as stubs:
        for soname in ('libunwind.so.8', 'libprotobuf-c.so.1', 'libelf.so.1'):
            os.symlink(stub, os.path.join(stubs, soname))
        result, spans = run(['tree'], 21, env={'LD_LIBRARY_PATH': stubs,
                                               'OTLPAUTO_STACKTRACE': '1',
                                               'OTLPAUTO_STACKTRACE_THRESHOLD': '0'})
    check_equal(len(spans), 21, 'without the libraries: every span sent (20 and the process)')
    functions = without_process_spans(spans)
    unnamed = [s['name'] for s in functions
               if not re.fullmatch(r'0x[0-9a-f]+@workload', s['name'])]
    check_equal(unnamed, [], 'without libelf: functions named by offset in the program')
    check(not any('code.stacktrace' in s['attributes'] for s in spans),
          'without libunwind: no stack traces')
    warnings = [line for line in result.stderr.splitlines() if line.startswith('otlpauto:')]
    check_equal(warnings, [
        'otlpauto: libunwind.so.8 has no unw_backtrace; spans have no stack traces',
        'otlpauto: libprotobuf-c.so.1 has no protobuf_c_message_unpack; '
        "the collector's responses are not read",
        'otlpauto: libelf.so.1 has no elf_version; function names are shown as addresses',
    ], 'one warning per missing library, when it is first needed')


def test():
    global WORKLOAD
    WORKLOAD = program('workload')
    test_tree()
    test_hot_loop_block()
    test_default_threshold_filters_fast_calls()
    test_recursion()
    test_deeper_than_shadow_stack()
    test_longjmp()
    test_exit_from_deep_inside()
    test_filters()
    test_family_off()
    test_cpp_exceptions()
    test_stacktraces()
    test_without_opened_libraries()


main(test)
