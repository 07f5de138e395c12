"""A forwarded traceparent rewritten in place, with the head written in
pieces: tests/programs/tp_forward passes the traceparent it received on to
its own sink, the head split at every byte (a short one at every pair of
points), and checks every byte the sink reads: the parent id rewritten
(each request its own), everything else as written, and heads whose
traceparent must stay (malformed, another version, not the received one)
unchanged. It runs without the shim (nothing rewritten), under it with
write(), writev() and non-blocking send(), and with every send of the shim
cut short (to 7 bytes for each of those, to 1 byte for non-blocking sends;
every second non-blocking send EAGAIN). Then three requests with spans
exported: each rewritten parent id is the proxy's CLIENT span, which
continues the caller's trace under the proxy's SERVER span, and the sink's
SERVER span is its child."""

import os
import re

from harness import Receiver, check, check_equal, main, preload_value, program, run_traced
from netutil import KIND_CLIENT, KIND_SERVER, spans_where

X_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
X_SPAN = '00f067aa0ba902b7'


def shortio():
    return os.path.join(os.path.dirname(program('tp_forward')), 'libshortio.so')


def counts(result, what):
    match = re.search(r'cases (\d+) rewritten (\d+)', result.stdout)
    check(result.returncode == 0 and match, f'{what}: every byte as expected',
          result.stdout[-2000:] + result.stderr[-2000:])
    return (int(match.group(1)), int(match.group(2))) if match else None


def splits():
    plain = run_traced([program('tp_forward'), 'writes', 'none'], preload=False, timeout=120)
    cases, rewritten = counts(plain, 'without the shim') or (0, 0)
    check(cases > 5000 and rewritten == 0, 'without the shim: nothing rewritten',
          (cases, rewritten))
    runs = [(mode, {}) for mode in ('writes', 'writev', 'nonblock')]
    # cut to 1 byte takes 10 s a run here: once, with EAGAIN too
    runs += [(mode, {'SHORTIO_MAX': cap, 'SHORTIO_EAGAIN': '1',
                     'LD_PRELOAD': f'{preload_value()}:{shortio()}'})
             for cap, mode in (('1', 'nonblock'), ('7', 'writes'), ('7', 'writev'),
                               ('7', 'nonblock'))]
    expected = None
    for mode, env in runs:
        what = f'{mode} {"cut to " + env["SHORTIO_MAX"] if env else "whole"}'
        result = run_traced([program('tp_forward'), mode], timeout=240,
                            env={'OTEL_TRACES_EXPORTER': 'none', **env})
        got = counts(result, what)
        expected = expected or got
        check_equal(got, expected, f'{what}: the same cases rewritten')
    check(expected and expected[0] == cases and expected[1] > 4000,
          'the heads passing the received traceparent on are rewritten', expected)


def spans():
    with Receiver() as receiver:
        result = run_traced([program('tp_forward'), 'writes', 'few'], receiver, timeout=60,
                            env={'OTLPAUTO_HOOKS': 'http'})
        spans = receiver.wait_for_spans(12, timeout=10)
        spans = receiver.wait_for_spans(13, timeout=0.5)
    check(result.returncode == 0, 'few: bytes as expected', result.stdout + result.stderr)
    parents = re.findall(r'parent ([0-9a-f]{16})', result.stdout)
    check_equal(len(parents), 3, 'few: three rewritten parent ids')
    clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
    servers = spans_where(spans, KIND_SERVER, 'otlpauto.http')
    check_equal((len(spans), len(clients), len(servers)), (12, 6, 6),
                'few: a CLIENT and a SERVER span per hop')
    by_id = {s['span_id']: s for s in spans if s['span_id'] != X_SPAN}
    check(all(s['trace_id'] == X_TRACE for s in spans), 'few: one trace, the caller\'s')
    for parent in parents:
        client = by_id.get(parent)
        check(client in clients, 'few: the rewritten id is a CLIENT span', parent)
        if client not in clients:
            continue
        proxy = by_id.get(client['parent_span_id'])
        check(proxy in servers and proxy['parent_span_id'] == X_SPAN,
              "few: the CLIENT span's parent is the proxy's SERVER span, the caller's child")
        sinks = [s for s in servers if s['parent_span_id'] == parent]
        check_equal(len(sinks), 1, "few: one sink SERVER span under that CLIENT span")


def test():
    splits()
    spans()


if __name__ == '__main__':
    main(test)
