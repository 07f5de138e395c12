"""The manual API (include/otlpauto.h): spans, attributes, events, status,
the scoped macro; the same program without the shim and compiled out;
nesting with function spans; out-of-order and cross-thread ends;
traceparent; span limits with dropped counts and UTF-8 truncation. Spans
started without a parent are children of the process span (named after the
program), which every traced run also sends."""

import subprocess

from harness import (Receiver, assert_single_trace, assert_tree_whole, check,
                     check_equal, check_holds, main, one, parent_pairs, process_spans,
                     program, run_traced, without_process_spans)

SAMPLED = 0x01
HAS_IS_REMOTE = 0x100


def run(name, args, expected, env=None, preload=True):
    """Runs a test program; returns (result, spans), failing when more than
    `expected` spans arrive (the process span included)."""
    with Receiver() as receiver:
        result = run_traced([program(name)] + args, receiver, env=env, preload=preload,
                            timeout=60)
        spans = receiver.wait_for_spans(expected, timeout=10) if expected else []
        extra = receiver.wait_for_spans(expected + 1, timeout=0.5)
    check_equal(result.returncode, 0, f'{name} {args}: exit status')
    check_equal(len(extra), expected, f'{name} {args}: span count')
    return result, extra


def parent_of(spans, span):
    return {s['span_id']: s for s in spans}.get(span['parent_span_id'])


def user_attrs(span):
    return {k: v for k, v in span['attributes'].items() if not k.startswith('thread.')}


def test_basic():
    result, spans = run('api_demo', ['basic'], 5)
    check_equal(result.stdout, 'basic done: 2 blocks\n', 'basic: output')
    if len(spans) != 5:
        return
    check_holds('basic: one trace', assert_single_trace, spans)
    check_holds('basic: whole tree', assert_tree_whole, spans)
    check_equal([(s['name'], s['parent_span_id']) for s in process_spans(spans)],
                [('api_demo', '')], 'basic: one process span, the root')
    process = one(spans, 'api_demo')
    spans = without_process_spans(spans)
    root, child = one(spans, 'demo.root'), one(spans, 'demo.child')
    scoped, inner = one(spans, 'demo.scoped'), one(spans, 'demo.inner')
    check_equal(root['parent_span_id'], process['span_id'],
                'basic: a span started without a parent is a child of the process span')
    check_equal([parent_of(spans, s)['name'] for s in (child, scoped, inner)],
                ['demo.root', 'demo.root', 'demo.scoped'], 'basic: parents')
    check_equal([s['kind'] for s in (root, child, scoped, inner)], [2, 3, 1, 4],
                'basic: kinds server, client, internal, producer')
    check_equal(user_attrs(root), {'demo.str': 'hello', 'demo.int': -42, 'demo.double': 2.5,
                                   'demo.bool': True},
                'basic: attributes of each type, a key set twice keeps the last value')
    check_equal(root['attributes'].get('thread.name'), 'api_demo', 'basic: thread.name')
    check_equal([e['name'] for e in root['events']], ['demo.event'], 'basic: event')
    check(root['start'] <= root['events'][0]['time'] <= root['end'], 'basic: event time in span')
    check_equal((child['status_code'], child['status_message']), (2, 'child failed'),
                'basic: error status and message')
    check_equal((root['status_code'], root['status_message']), (0, ''), 'basic: status unset')
    check_equal(user_attrs(inner), {'demo.n': 7}, 'basic: attribute inside the scoped macro')
    check(all(s['flags'] == SAMPLED | HAS_IS_REMOTE for s in spans),
          'basic: sampled, parents local', [hex(s['flags']) for s in spans])
    check(all(s['scope']['name'] == 'otlpauto.manual' for s in spans), 'basic: scope')
    check(all(s['dropped_attributes_count'] == 0 and s['dropped_events_count'] == 0
              for s in spans), 'basic: nothing dropped')
    for s in (child, scoped, inner):
        parent = parent_of(spans, s)
        check(parent['start'] <= s['start'] and s['end'] <= parent['end'],
              f'basic: {s["name"]} lies within its parent')


def test_without_shim():
    result, _ = run('api_demo', ['basic'], 0, preload=False)
    check_equal(result.stdout, 'basic done: 2 blocks\n', 'no shim: same output')
    result, _ = run('api_demo', ['traceparent'], 0, preload=False)
    check_equal(result.stdout, 'inside 0 -\noutside 0 -\n', 'no shim: no traceparent')


def test_disabled():
    result, spans = run('api_demo_disabled', ['basic'], 1)
    check_equal(result.stdout, 'basic done: 2 blocks\n', 'disabled: same output')
    check_equal([s['name'] for s in spans], ['api_demo_disabled'],
                'disabled: no manual span, only the process span')
    symbols = subprocess.run(['nm', program('api_demo_disabled')], capture_output=True,
                             text=True, timeout=30).stdout
    check('otlpauto' not in symbols and 'dlsym' not in symbols,
          'disabled: no otlpauto symbol (nor dlsym) left', symbols)
    undefined = subprocess.run(['nm', '-u', program('api_demo')], capture_output=True,
                               text=True, timeout=30).stdout
    check('otlpauto' not in undefined and 'dlsym' in undefined,
          'enabled: no otlpauto symbol referenced, only dlsym', undefined)


def test_non_pie():
    # An undefined weak symbol would be bound to 0 at link time here.
    _, spans = run('api_demo_nopie', ['basic'], 5)
    check_equal(sorted(s['name'] for s in spans),
                ['api_demo_nopie', 'demo.child', 'demo.inner', 'demo.root', 'demo.scoped'],
                'non-PIE: spans')


def test_nesting_with_functions():
    _, spans = run('api_nest', [], 5)
    if len(spans) != 5:
        return
    check_holds('nest: one trace', assert_single_trace, spans)
    check_holds('nest: whole tree', assert_tree_whole, spans)
    check_equal(parent_pairs(spans), {('api_nest', None): 1, ('main', 'api_nest'): 1,
                                      ('outer_work', 'main'): 1,
                                      ('manual.middle', 'outer_work'): 1,
                                      ('inner_work', 'manual.middle'): 1},
                'nest: process > function > manual > function parents')
    check_equal(one(spans, 'manual.middle')['scope']['name'], 'otlpauto.manual', 'nest: scope')


def test_order_and_threads():
    _, spans = run('api_demo', ['order'], 7)
    if len(spans) != 7:
        return
    check_equal(parent_pairs(spans),
                {('api_demo', None): 1, ('order.a', 'api_demo'): 1, ('order.b', 'order.a'): 1,
                 ('order.c', 'order.b'): 1, ('order.d', 'api_demo'): 1,
                 ('order.cross', 'api_demo'): 1, ('order.after', 'api_demo'): 1},
                'order: parents after out-of-order, double and cross-thread ends '
                '(spans without a parent under the process span)')
    check_holds('order: one trace (the process span\'s)', assert_single_trace, spans)
    tid = {s['name']: s['attributes']['thread.id'] for s in spans}
    check(tid['order.cross'] != tid['order.a'], 'order: cross-thread span sent by the ender')


def test_traceparent():
    result, spans = run('api_demo', ['traceparent'], 2)
    span, process = one(spans, 'demo.propagating'), one(spans, 'api_demo')
    expected = (f'inside 55 00-{span["trace_id"]}-{span["span_id"]}-01\n'
                f'outside 55 00-{process["trace_id"]}-{process["span_id"]}-01\n')
    check_equal(result.stdout, expected,
                'traceparent: the current span, then (outside any span) the process span')


LIMITS = {
    'OTEL_ATTRIBUTE_COUNT_LIMIT': '10',
    'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT': '7',
    'OTEL_SPAN_EVENT_COUNT_LIMIT': '3',
    'OTEL_SPAN_LINK_COUNT_LIMIT': '2',
}
ALL_ATTRS = (['utf8.two', 'utf8.three', 'ascii', 'number', 'dup'] +
             [f'attr.{i:02d}' for i in range(16)])


def test_limits():
    _, spans = run('api_demo', ['limits'], 2, env=LIMITS)
    span = one(spans, 'demo.limits')
    attrs = span['attributes']
    check_equal(list(attrs), ALL_ATTRS[:10], 'limits: the first 10 distinct keys are kept')
    # 21 distinct keys and thread.id, thread.name: 13 beyond the limit.
    check_equal(span['dropped_attributes_count'], 13, 'limits: dropped_attributes_count')
    check_equal((attrs['utf8.two'], attrs['utf8.three'], attrs['ascii'], attrs['number']),
                ('\u00e9' * 3, '\u20ac' * 2, 'abcdefg', 123456789),
                'limits: strings cut to 7 bytes on a character boundary, ints kept')
    check_equal(attrs['dup'], 'new', 'limits: a key set twice counts once, last value')
    check_equal([e['name'] for e in span['events']], ['event.0', 'event.1', 'event.2'],
                'limits: first 3 events')
    check_equal(span['dropped_events_count'], 7, 'limits: dropped_events_count')
    check_equal([(l['trace_id'], l['span_id']) for l in span['links']],
                [('0af7651916cd43dd8448eb211c80319c', f'00f067aa0ba902b{i}') for i in (1, 2)],
                'limits: first 2 links')
    check_equal(span['dropped_links_count'], 3, 'limits: dropped_links_count (invalid one ignored)')

    _, spans = run('api_demo', ['limits'], 2,
                   env={'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT': '4', 'OTEL_ATTRIBUTE_COUNT_LIMIT': '100',
                        'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT': '5'})
    span = one(spans, 'demo.limits')
    check_equal(span['attributes'], {'utf8.two': '\u00e9\u00e9', 'utf8.three': '\u20ac',
                                     'ascii': 'abcde', 'number': 123456789},
                'limits: OTEL_SPAN_* wins over OTEL_ATTRIBUTE_*; generic length limit')
    # Every set beyond the limit counts (as the Python SDK counts): 23 - 4,
    # and 'dup' twice.
    check_equal(span['dropped_attributes_count'], 20, 'limits: each dropped set counted')

    _, spans = run('api_demo', ['limits'], 2)
    span = one(spans, 'demo.limits')
    check_equal(list(user_attrs(span)), ALL_ATTRS, 'no limits: every attribute')
    check_equal((span['attributes']['utf8.two'], span['attributes']['ascii']),
                ('\u00e9' * 5, 'abcdefghij'), 'no limits: values whole')
    check_equal((len(span['events']), len(span['links']), span['dropped_attributes_count'],
                 span['dropped_events_count'], span['dropped_links_count']), (10, 5, 0, 0, 0),
                'no limits: 10 events, 5 links, nothing dropped')


def test_default_count_limit():
    _, spans = run('api_demo', ['many', '200'], 2)
    span = one(spans, 'demo.many')
    check_equal(list(span['attributes']), [f'attr.{i:04d}' for i in range(128)],
                'default limit: the first 128 attributes')
    check_equal(span['dropped_attributes_count'], 200 + 2 - 128,
                'default limit: the rest and thread.id, thread.name dropped')


def test_all():
    test_basic()
    test_without_shim()
    test_disabled()
    test_non_pie()
    test_nesting_with_functions()
    test_order_and_threads()
    test_traceparent()
    test_limits()
    test_default_count_limit()


if __name__ == '__main__':
    main(test_all)
