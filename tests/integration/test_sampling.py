"""Samplers end to end, on the manual API's demo program: parent-based
samplers follow a sampled or unsampled TRACEPARENT, the others ignore it;
ratios 0, 1 and a deterministic 0.5; an unsampled span still propagates its
context; bad settings warn once and fall back; the adaptive samplers hold
the sampled roots per second near the target and never cut a trace, also
when the whole process is one trace under a TRACEPARENT."""

import collections

from harness import (Receiver, assert_tree_whole, by_name, check, check_equal, check_holds,
                     main, one, program, run_traced)

TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
PARENT = '00f067aa0ba902b7'
# For a ratio of 0.5 the last 8 bytes of the trace id decide: 0x00... is
# kept, 0xff... is not.
TRACE_LOW = '4bf92f3577b34da60000000000000001'
TRACE_HIGH = '4bf92f3577b34da6ffffffffffffffff'
BASIC_SPANS = 4


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
        root = one(spans, 'demo.root')
        check_equal((root['trace_id'], root['parent_span_id']), (TRACE, PARENT),
                    'sampled TRACEPARENT: the root continues the remote trace')
        check_equal(root['flags'], 0x301, 'sampled TRACEPARENT: sampled, remote parent')
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


def test_ratio_share():
    # 2000 roots, each with 2 children, at ratio 0.25: 500 +- 4 sigma (78)
    # roots, and each kept trace whole.
    _, spans = run(['adaptive', '1', '2000'], {'OTEL_TRACES_SAMPLER': 'traceidratio',
                                               'OTEL_TRACES_SAMPLER_ARG': '0.25'}, timeout=60)
    roots = by_name(spans, 'adaptive.root')
    check(422 <= len(roots) <= 578, 'traceidratio 0.25: share of 2000 roots', len(roots))
    check_whole_traces('traceidratio 0.25', spans)


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


def check_whole_traces(what, spans):
    """Every root has its 2 children, every child its root; nothing else."""
    roots = by_name(spans, 'adaptive.root')
    children = by_name(spans, 'adaptive.child')
    check_equal(len(roots) + len(children), len(spans), f'{what}: only roots and children')
    per_root = collections.Counter(c['parent_span_id'] for c in children)
    root_ids = {r['span_id'] for r in roots}
    check(all(per_root[r] == 2 for r in root_ids) and set(per_root) == root_ids,
          f'{what}: every trace whole (root and its 2 children)',
          f'{len(roots)} roots, {len(children)} children')
    check(all(r['parent_span_id'] == '' for r in roots), f'{what}: roots have no parent')


def test_adaptive():
    target, rate, seconds = 50, 500, 3
    for sampler in ('adaptive', 'parentbased_adaptive'):
        result, spans = run(['adaptive', str(seconds), str(rate)],
                            {'OTEL_TRACES_SAMPLER': sampler,
                             'OTEL_TRACES_SAMPLER_ARG': str(target)}, timeout=60)
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
        check_whole_traces(sampler, spans)


def test_adaptive_remote_parent():
    # The process's TRACEPARENT is one trace: `adaptive` decides it once, at
    # start-up (kept: the ratio starts at 1), and every root under it follows,
    # however many there are per second.
    result, spans = run(['adaptive', '2', '300'],
                        {'OTEL_TRACES_SAMPLER': 'adaptive', 'OTEL_TRACES_SAMPLER_ARG': '50',
                         'TRACEPARENT': traceparent(sampled=False)}, expected=1800, timeout=60)
    roots = by_name(spans, 'adaptive.root')
    check_equal((len(roots), len(spans)), (600, 1800),
                'adaptive under TRACEPARENT: the trace is kept whole, not cut at the target')
    check(all(s['trace_id'] == TRACE for s in spans), 'adaptive under TRACEPARENT: one trace')
    check(all(r['parent_span_id'] == PARENT for r in roots),
          'adaptive under TRACEPARENT: roots parent on the remote span')


def test_all():
    test_parent_based()
    test_not_parent_based()
    test_ratio_share()
    test_unsampled_propagates()
    test_bad_settings()
    test_adaptive()
    test_adaptive_remote_parent()


if __name__ == '__main__':
    main(test_all)
