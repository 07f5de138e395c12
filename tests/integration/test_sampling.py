"""Samplers end to end, on the manual API's demo program: parent-based
samplers follow a sampled or unsampled TRACEPARENT, the others ignore it;
ratios 0, 1 and a deterministic 0.5; an unsampled span still propagates its
context; bad settings warn once and fall back; the adaptive samplers hold
the sampled roots per second near the target and never cut a trace, also
when the whole process is one trace under a TRACEPARENT. The process span
(`api_demo`) is sampled like a root, or follows TRACEPARENT; the spans
started without a parent are its children while the process is young
(OTLPAUTO_PROCESS_TRACE_SPANS, _DURATION), later ones roots of their own
traces, linked to it."""

import collections
import os

from harness import (Receiver, assert_single_trace, assert_tree_whole, by_name, check,
                     check_equal, check_holds, main, one, program, run_traced)

TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
PARENT = '00f067aa0ba902b7'
# For a ratio of 0.5 the last 8 bytes of the trace id decide: 0x00... is
# kept, 0xff... is not.
TRACE_LOW = '4bf92f3577b34da60000000000000001'
TRACE_HIGH = '4bf92f3577b34da6ffffffffffffffff'
BASIC_SPANS = 5  # the 4 spans of `api_demo basic` and the process span
# Roots measured as roots of their own traces: the process span adopts none
# (each root starts its trace, linked to the process span).
OWN_TRACES = {'OTLPAUTO_PROCESS_TRACE_SPANS': '0'}


def traceparent(trace=TRACE, sampled=True):
    return f'00-{trace}-{PARENT}-{"01" if sampled else "00"}'


def run(args, env, expected=None, timeout=60):
    """Runs api_demo; returns (result, spans). With `expected`, also waits
    for that many spans and checks no more arrive."""
    with Receiver() as receiver:
        result = run_traced([program('api_demo')] + args, receiver, env=env, timeout=timeout)
        if expected:
            receiver.wait_for_spans(expected, timeout=10)
        spans = receiver.wait_for_spans((expected or 0) + 1, timeout=0.5)
    check_equal(result.returncode, 0, f'{args} {env}: exit status')
    return result, spans


def spans_for(what, env, expected):
    _, spans = run(['basic'], env, expected)
    check_equal(len(spans), expected, f'{what}: spans')
    return spans


def test_parent_based():
    spans = spans_for('default sampler, sampled TRACEPARENT', {'TRACEPARENT': traceparent()},
                      BASIC_SPANS)
    if spans:
        process, root = one(spans, 'api_demo'), one(spans, 'demo.root')
        check_equal((process['trace_id'], process['parent_span_id']), (TRACE, PARENT),
                    'sampled TRACEPARENT: the process span continues the remote trace')
        check_equal(process['flags'], 0x301, 'sampled TRACEPARENT: sampled, remote parent')
        check_equal((root['trace_id'], root['parent_span_id'], root['flags']),
                    (TRACE, process['span_id'], 0x101),
                    'sampled TRACEPARENT: the root is a child of the process span')
        check_holds('sampled TRACEPARENT: whole tree', assert_tree_whole, spans, PARENT)
    spans_for('default sampler, unsampled TRACEPARENT',
              {'TRACEPARENT': traceparent(sampled=False)}, 0)
    spans_for('parentbased_always_off, no parent', {'OTEL_TRACES_SAMPLER': 'parentbased_always_off'},
              0)
    spans_for('parentbased_always_off, sampled parent',
              {'OTEL_TRACES_SAMPLER': 'parentbased_always_off', 'TRACEPARENT': traceparent()},
              BASIC_SPANS)
    spans_for('parentbased_traceidratio 0, sampled parent',
              {'OTEL_TRACES_SAMPLER': 'parentbased_traceidratio', 'OTEL_TRACES_SAMPLER_ARG': '0',
               'TRACEPARENT': traceparent()}, BASIC_SPANS)
    spans_for('parentbased_traceidratio 1, unsampled parent',
              {'OTEL_TRACES_SAMPLER': 'parentbased_traceidratio', 'OTEL_TRACES_SAMPLER_ARG': '1',
               'TRACEPARENT': traceparent(sampled=False)}, 0)


def test_not_parent_based():
    spans_for('always_on, unsampled parent',
              {'OTEL_TRACES_SAMPLER': 'always_on', 'TRACEPARENT': traceparent(sampled=False)},
              BASIC_SPANS)
    spans_for('always_off', {'OTEL_TRACES_SAMPLER': 'always_off'}, 0)
    spans_for('always_off, sampled parent',
              {'OTEL_TRACES_SAMPLER': 'always_off', 'TRACEPARENT': traceparent()}, 0)
    spans_for('traceidratio 0', {'OTEL_TRACES_SAMPLER': 'traceidratio',
                                 'OTEL_TRACES_SAMPLER_ARG': '0'}, 0)
    spans_for('traceidratio 1', {'OTEL_TRACES_SAMPLER': 'traceidratio',
                                 'OTEL_TRACES_SAMPLER_ARG': '1'}, BASIC_SPANS)
    ratio = {'OTEL_TRACES_SAMPLER': 'traceidratio', 'OTEL_TRACES_SAMPLER_ARG': '0.5'}
    spans_for('traceidratio 0.5, low trace id, unsampled parent',
              {**ratio, 'TRACEPARENT': traceparent(TRACE_LOW, sampled=False)}, BASIC_SPANS)
    spans_for('traceidratio 0.5, high trace id, sampled parent',
              {**ratio, 'TRACEPARENT': traceparent(TRACE_HIGH)}, 0)


def ratio_keeps(trace_id, ratio):
    """src/sampling.c's decision: the trace id's last 8 bytes, halved, below
    ratio * 2^63."""
    return (int(trace_id[16:], 16) >> 1) < ratio * 2 ** 63


def test_ratio_share():
    # 2000 roots, each with 2 children, at ratio 0.25: 500 +- 4 sigma (78)
    # roots, and each kept trace whole. The roots start their own traces
    # (OWN_TRACES); the process span is sampled by its own trace id.
    _, spans = run(['adaptive', '1', '2000'], {'OTEL_TRACES_SAMPLER': 'traceidratio',
                                               'OTEL_TRACES_SAMPLER_ARG': '0.25', **OWN_TRACES},
                   timeout=60)
    roots = by_name(spans, 'adaptive.root')
    check(422 <= len(roots) <= 578, 'traceidratio 0.25: share of 2000 roots', len(roots))
    check_whole_traces('traceidratio 0.25', spans,
                       lambda process: ratio_keeps(process[0], 0.25))


def test_unsampled_propagates():
    for what, env in (('always_off', {'OTEL_TRACES_SAMPLER': 'always_off'}),
                      ('unsampled TRACEPARENT', {'TRACEPARENT': traceparent(sampled=False)})):
        result, spans = run(['traceparent'], env)
        check_equal(len(spans), 0, f'{what}: no spans')
        inside = result.stdout.splitlines()[0].split()
        check(len(inside) == 3 and inside[1] == '55' and inside[2].startswith('00-')
              and inside[2].endswith('-00') and inside[2][36:52] != PARENT,
              f'{what}: the span\'s own context propagates with sampled off', result.stdout)
        if 'TRACEPARENT' in env:
            check_equal(inside[2][3:35], TRACE, f'{what}: in the remote trace')


def test_bad_settings():
    for env, variable in (({'OTEL_TRACES_SAMPLER': 'bogus'}, 'OTEL_TRACES_SAMPLER'),
                          ({'OTEL_TRACES_SAMPLER': 'traceidratio',
                            'OTEL_TRACES_SAMPLER_ARG': '1.5'}, 'OTEL_TRACES_SAMPLER_ARG'),
                          ({'OTEL_TRACES_SAMPLER': 'adaptive',
                            'OTEL_TRACES_SAMPLER_ARG': 'many'}, 'OTEL_TRACES_SAMPLER_ARG')):
        result, spans = run(['basic'], env, BASIC_SPANS)
        warnings = [line for line in result.stderr.splitlines() if line.startswith('otlpauto:')]
        check(len(warnings) == 1 and variable in warnings[0],
              f'{env}: one warning naming {variable}', result.stderr)
        check_equal(len(spans), BASIC_SPANS, f'{env}: the default applies')


def check_whole_traces(what, spans, process_sampled):
    """Every root has its 2 children, every child its root; each root links
    to the process span, which is there when process_sampled((trace id,
    span id)) says it is sampled; nothing else."""
    roots = by_name(spans, 'adaptive.root')
    children = by_name(spans, 'adaptive.child')
    links = {tuple((l['trace_id'], l['span_id']) for l in r['links']) for r in roots}
    check(len(links) == 1 and len(next(iter(links))) == 1,
          f'{what}: every root has one link, the same', links)
    if len(links) == 1 and len(next(iter(links))) == 1:
        process = next(iter(links))[0]
        found = [(s['trace_id'], s['span_id']) for s in by_name(spans, 'api_demo')]
        check_equal(found, [process] if process_sampled(process) else [],
                    f'{what}: the linked process span, when sampled')
    check_equal(len(roots) + len(children) + len(by_name(spans, 'api_demo')), len(spans),
                f'{what}: only roots, children and the process span')
    per_root = collections.Counter(c['parent_span_id'] for c in children)
    root_ids = {r['span_id'] for r in roots}
    check(all(per_root[r] == 2 for r in root_ids) and set(per_root) == root_ids,
          f'{what}: every trace whole (root and its 2 children)',
          f'{len(roots)} roots, {len(children)} children')
    check(all(r['parent_span_id'] == '' for r in roots), f'{what}: roots have no parent')


def test_adaptive():
    target, rate, seconds = 50, 500, 3
    for sampler in ('adaptive', 'parentbased_adaptive'):
        # The roots start their own traces (OWN_TRACES). The process span is
        # the first decision, while the ratio is 1: always sampled.
        result, spans = run(['adaptive', str(seconds), str(rate)],
                            {'OTEL_TRACES_SAMPLER': sampler,
                             'OTEL_TRACES_SAMPLER_ARG': str(target), **OWN_TRACES}, timeout=60)
        check_equal(result.stdout, f'adaptive done: {rate * seconds} roots\n',
                    f'{sampler}: all roots started')
        roots = sorted(by_name(spans, 'adaptive.root'), key=lambda s: s['start'])
        if not roots:
            check(False, f'{sampler}: some roots sampled')
            continue
        first = roots[0]['start']
        per_second = collections.Counter(int((r['start'] - first) // 1e9) for r in roots)
        buckets = [per_second[s] for s in range(seconds)]
        # A 1 s window keeps at most the target (its budget); the buckets
        # start a little after the windows, so one may take a few of the next.
        check(all(0.6 * target <= n <= 1.3 * target for n in buckets),
              f'{sampler}: sampled roots per second near {target} (10x the target offered)',
              buckets)
        check(0.75 * target * seconds <= len(roots) <= 1.1 * target * seconds,
              f'{sampler}: sampled roots in {seconds} s', len(roots))
        check_whole_traces(sampler, spans, lambda process: True)


def test_adaptive_remote_parent():
    # The process's TRACEPARENT is one trace: `adaptive` decides it once, at
    # start-up, for the process span (kept: the ratio starts at 1), and every
    # root under it follows, however many there are per second (600 roots in
    # 2 s: the process span stays young).
    result, spans = run(['adaptive', '2', '300'],
                        {'OTEL_TRACES_SAMPLER': 'adaptive', 'OTEL_TRACES_SAMPLER_ARG': '50',
                         'TRACEPARENT': traceparent(sampled=False)}, expected=1801, timeout=60)
    roots = by_name(spans, 'adaptive.root')
    check_equal((len(roots), len(spans)), (600, 1801),
                'adaptive under TRACEPARENT: the trace is kept whole, not cut at the target')
    check(all(s['trace_id'] == TRACE for s in spans), 'adaptive under TRACEPARENT: one trace')
    process = [s for s in spans if s['name'] == 'api_demo']
    check_equal([s['parent_span_id'] for s in process], [PARENT],
                'adaptive under TRACEPARENT: the process span parents on the remote span')
    check(process and all(r['parent_span_id'] == process[0]['span_id'] for r in roots),
          'adaptive under TRACEPARENT: roots parent on the process span')


def test_process_trace_bounds():
    """The process span adopts the first OTLPAUTO_PROCESS_TRACE_SPANS spans
    without a parent, and those of its first OTLPAUTO_PROCESS_TRACE_DURATION;
    later ones start traces of their own with one link to it."""
    for what, env in (('3 spans', {'OTLPAUTO_PROCESS_TRACE_SPANS': '3'}),
                      ('250 ms', {'OTLPAUTO_PROCESS_TRACE_DURATION': '250ms'})):
        # 10 roots, 100 ms apart, each with 2 children.
        _, spans = run(['adaptive', '1', '10'], env, expected=31)
        check_equal(len(spans), 31, f'bounds, {what}: every span')
        process = one(spans, 'api_demo')
        roots = sorted(by_name(spans, 'adaptive.root'), key=lambda s: s['start'])
        if what == '3 spans':
            young = roots[:3]
        else:
            young = [r for r in roots if r['start'] < process['start'] + 250_000_000]
        old = [r for r in roots if r not in young]
        check(0 < len(young) < len(roots), f'bounds, {what}: roots on both sides',
              (len(young), len(roots)))
        check(all(r['parent_span_id'] == process['span_id'] and r['links'] == []
                  for r in young),
              f'bounds, {what}: the first roots are children of the process span')
        check(all(r['parent_span_id'] == '' and r['trace_id'] != process['trace_id']
                  and [(l['trace_id'], l['span_id']) for l in r['links']]
                  == [(process['trace_id'], process['span_id'])] for r in old),
              f'bounds, {what}: later roots start traces of their own, linked to it')
        check_equal(len({r['trace_id'] for r in old}), len(old),
                    f'bounds, {what}: one trace per later root')
        check_holds(f'bounds, {what}: the young roots in the process\'s trace',
                    assert_single_trace, [process, *young])
        per_root = collections.Counter(c['parent_span_id']
                                       for c in by_name(spans, 'adaptive.child'))
        check_equal(sorted(per_root.values()), [2] * 10, f'bounds, {what}: 2 children a root')
        check_equal(set(per_root), {r['span_id'] for r in roots},
                    f'bounds, {what}: children under their roots')
        check_holds(f'bounds, {what}: whole trees', assert_tree_whole, spans)


def test_bounds_count_spans():
    """Only spans count toward OTLPAUTO_PROCESS_TRACE_SPANS: threads started
    outside any span do not, so the one connect after 5 of them is still a
    child of the process span."""
    script = ('import socket, threading\n'
              'threads = [threading.Thread(target=lambda: None) for _ in range(5)]\n'
              'for t in threads: t.start()\n'
              'for t in threads: t.join()\n'
              'socket.socket().connect_ex(("127.0.0.1", 1))\n')
    with Receiver() as receiver:
        result = run_traced(['/usr/bin/python3', '-c', script], receiver,
                            env={'OTLPAUTO_PROCESS_TRACE_SPANS': '3'}, timeout=60)
        spans = receiver.wait_for_spans(2, timeout=10)
        spans = receiver.wait_for_spans(3, timeout=0.5)
    check_equal(result.returncode, 0, 'bounds, threads: exit status')
    python = os.path.basename(os.path.realpath('/usr/bin/python3'))
    check_equal(sorted(s['name'] for s in spans), sorted([python, 'socket connect 127.0.0.1:1']),
                'bounds, threads: the process span and the connect span')
    if len(spans) == 2:
        process, connect = one(spans, python), one(spans, 'socket connect 127.0.0.1:1')
        check_equal((connect['trace_id'], connect['parent_span_id'], connect['links']),
                    (process['trace_id'], process['span_id'], []),
                    'bounds, threads: the connect is a child of the process span')


def test_all():
    test_parent_based()
    test_not_parent_based()
    test_ratio_share()
    test_unsampled_propagates()
    test_bad_settings()
    test_adaptive()
    test_adaptive_remote_parent()
    test_process_trace_bounds()
    test_bounds_count_spans()


if __name__ == '__main__':
    main(test_all)
