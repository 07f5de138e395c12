"""The export pipeline end to end: protobuf, JSON, gzip, headers, endpoints,
retries, a collector that is down, slow, refusing or rejecting part, the
file/console/none exporters, the Resource, OTEL_SDK_DISABLED and bad values.
Each run of `workload tree` with threshold 0 makes exactly 21 spans: 20
function spans and the process span."""

import collections
import os
import socket
import stat
import tempfile
import time

from harness import (Receiver, assert_single_trace, assert_tree_whole, check, check_equal,
                     check_holds, free_port, main, otlp_schema, process_spans, program,
                     run_traced)

TREE_SPANS = 21
EVERY_CALL = {'OTLPAUTO_FUNCTION_THRESHOLD': '0'}


def workload(*args):
    return [program('workload'), *args]


def traced_tree(receiver, env=None, args=('tree',), timeout=60):
    return run_traced(workload(*args), receiver, env={**EVERY_CALL, **(env or {})},
                      timeout=timeout)


def settle(receiver, expected):
    """The spans once `expected` arrived, plus any stray extra within 0.5 s."""
    spans = receiver.wait_for_spans(expected, timeout=10)
    more = receiver.wait_for_spans(expected + 1, timeout=0.5)
    return more if len(more) > len(spans) else spans


def test_protobuf_default():
    with Receiver() as receiver:
        result = traced_tree(receiver)
        spans = settle(receiver, TREE_SPANS)
        requests = receiver.requests
    check_equal(result.returncode, 0, 'protobuf: exit status')
    check_equal(len(spans), TREE_SPANS, 'protobuf: exact span count')
    check_holds('protobuf: one trace', assert_single_trace, spans)
    check_holds('protobuf: whole tree', assert_tree_whole, spans)
    check_equal([(s['name'], s['parent_span_id']) for s in process_spans(spans)],
                [('workload', '')], 'protobuf: one process span, the root')
    headers = requests[0].headers
    check_equal(headers.get('content-type'), 'application/x-protobuf', 'protobuf: content type')
    check(headers.get('user-agent', '').startswith('OTel-OTLP-Exporter-C/otlpauto'),
          'protobuf: user agent', headers.get('user-agent'))
    check_equal(requests[0].path, '/v1/traces', 'protobuf: v1/traces appended to the base')
    ports = {r.client_port for r in requests}
    check_equal(len(ports), 1, 'protobuf: one keep-alive connection for all requests')
    resource = spans[0]['resource']
    check_equal(resource.get('service.name'), 'otlpauto-test', 'resource: OTEL_SERVICE_NAME')
    check_equal(resource.get('telemetry.sdk.name'), 'otlpauto', 'resource: sdk name')
    check_equal(resource.get('telemetry.sdk.language'), 'c', 'resource: sdk language')
    check('telemetry.sdk.version' in resource, 'resource: sdk version')
    check_equal(resource.get('process.executable.name'), 'workload', 'resource: executable name')
    check_equal(resource.get('process.executable.path'), os.path.realpath(program('workload')),
                'resource: executable path')
    check_equal(resource.get('process.command_args'), [program('workload'), 'tree'],
                'resource: command args')
    check_equal(resource.get('host.name'), socket.gethostname(), 'resource: host name')
    check(isinstance(resource.get('process.pid'), int), 'resource: pid')
    check(all(s['flags'] & 0x101 == 0x101 for s in spans), 'protobuf: sampled, has-is-remote flags')


def test_json_and_gzip():
    for name, env, content_type, encoding in (
            ('json', {'OTEL_EXPORTER_OTLP_PROTOCOL': 'http/json'}, 'application/json', None),
            ('gzip', {'OTEL_EXPORTER_OTLP_COMPRESSION': 'gzip'}, 'application/x-protobuf', 'gzip'),
            ('json+gzip', {'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL': 'http/json',
                           'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION': 'gzip'},
             'application/json', 'gzip')):
        with Receiver() as receiver:
            result = traced_tree(receiver, env)
            spans = settle(receiver, TREE_SPANS)
            request = receiver.requests[0]
        check_equal(result.returncode, 0, f'{name}: exit status')
        check_equal(len(spans), TREE_SPANS, f'{name}: exact span count')
        check_equal(request.headers.get('content-type'), content_type, f'{name}: content type')
        check_equal(request.headers.get('content-encoding'), encoding, f'{name}: encoding')
        check_holds(f'{name}: whole tree', assert_tree_whole, spans)


def test_headers_and_endpoints():
    secret = 'Bearer s3cr3t-token'
    env = {'OTEL_EXPORTER_OTLP_HEADERS': 'authorization=Bearer%20s3cr3t-token, x-tenant = t1',
           'OTEL_LOG_LEVEL': 'debug'}
    with Receiver() as receiver:
        result = traced_tree(receiver, env)
        settle(receiver, TREE_SPANS)
        headers = receiver.requests[0].headers
    check_equal(headers.get('authorization'), secret, 'headers: percent-decoded value sent')
    check_equal(headers.get('x-tenant'), 't1', 'headers: trimmed')
    check(secret not in result.stderr and 's3cr3t' not in result.stderr,
          'headers: never logged, even at debug')
    with Receiver() as receiver:
        url = f'http://127.0.0.1:{receiver.port}/custom/traces'
        traced_tree(receiver, {'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT': url,
                               'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://127.0.0.1:1'})
        requests = receiver.wait_for_requests(1, timeout=10)
    check_equal(requests[0].path if requests else None, '/custom/traces',
                'endpoint: the TRACES variant is used as is and wins')


def test_retries():
    for mode, status in (('flap:3', 503), ('429:2', 429), ('reset', None)):
        with Receiver(mode=mode) as receiver:
            result = traced_tree(receiver, {'OTEL_BSP_EXPORT_TIMEOUT': '20000',
                                            'OTLPAUTO_EXIT_TIMEOUT': '20s'})
            spans = settle(receiver, TREE_SPANS)
            counts = receiver.status_counts
        check_equal(result.returncode, 0, f'{mode}: exit status')
        check_equal(len(spans), TREE_SPANS, f'{mode}: every span delivered after retries')
        if status:
            check_equal(counts.get(status), int(mode.split(':')[1]),
                        f'{mode}: retried after each {status}')
            check(result.elapsed >= 0.9 * int(mode.split(':')[1]),
                  f'{mode}: Retry-After honoured', result.elapsed)


def test_collector_down_and_slow():
    untraced = run_traced(workload('status', '7'), preload=False)
    for name, receiver_mode in (('down', None), ('slow', 'slow:6')):
        env = {'OTEL_BSP_EXPORT_TIMEOUT': '1500', 'OTLPAUTO_EXIT_TIMEOUT': '1500ms',
               'OTEL_EXPORTER_OTLP_TIMEOUT': '1000'}
        if receiver_mode:
            with Receiver(mode=receiver_mode) as receiver:
                result = traced_tree(receiver, env, args=('status', '7'))
        else:
            result = run_traced(workload('status', '7'), None,
                                env={**EVERY_CALL, **env,
                                     'OTEL_EXPORTER_OTLP_ENDPOINT':
                                     f'http://127.0.0.1:{free_port()}'})
        check_equal(result.returncode, 7, f'collector {name}: exit status intact')
        check(result.elapsed < untraced.elapsed + 1.5 + 1.0,
              f'collector {name}: exit within the exit timeout', result.elapsed)
        check(result.stderr.count('otlpauto:') <= 2,
              f'collector {name}: at most a warning or two', result.stderr)


def test_refused_and_partial():
    with Receiver(mode='400') as receiver:
        result = traced_tree(receiver)
        receiver.wait_for_requests(1)
    check_equal(result.returncode, 0, '400: exit status')
    check_equal(receiver.status_counts, {400: 1}, '400: never retried')
    lines = [l for l in result.stderr.splitlines() if l.startswith('otlpauto:')]
    check(len(lines) == 1 and '400' in lines[0], '400: one warning', result.stderr)
    with Receiver(mode='partial:3') as receiver:
        result = traced_tree(receiver)
        receiver.wait_for_requests(1)
    check_equal(result.returncode, 0, 'partial: exit status')
    check('test rejection' in result.stderr and '3' in result.stderr,
          'partial: the rejection is reported', result.stderr)
    check_equal(receiver.status_counts, {200: 1}, 'partial: not retried')


def test_exporters():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'spans.jsonl')
        with Receiver() as receiver:
            result = traced_tree(receiver, {'OTEL_TRACES_EXPORTER': 'otlp/file',
                                            'OTLPAUTO_FILE': path})
            requests = receiver.requests
        spans = []
        with open(path, encoding='utf-8') as f:
            for line in f:
                spans.extend(otlp_schema.decode_json_line(line))
        check_equal(result.returncode, 0, 'file: exit status')
        check_equal(len(spans), TREE_SPANS, 'file: exact span count (decoded as OTLP JSON)')
        check_equal(stat.S_IMODE(os.stat(path).st_mode), 0o600, 'file: mode 0600')
        check_equal(len(requests), 0, 'file: nothing sent over HTTP')
        result = run_traced(workload('tree'), None, cwd=tmp,
                            env={**EVERY_CALL, 'OTEL_TRACES_EXPORTER': 'otlp/file'})
        default_files = [f for f in os.listdir(tmp) if f.startswith('otlpauto-')]
        check(len(default_files) == 1, 'file: default otlpauto-<pid>.jsonl in the cwd',
              default_files)
    result = run_traced(workload('tree'), None,
                        env={**EVERY_CALL, 'OTEL_TRACES_EXPORTER': 'console'})
    lines = [l for l in result.stderr.splitlines() if l.startswith('otlpauto span ')]
    check_equal(len(lines), TREE_SPANS, 'console: one line per span on stderr')
    with Receiver() as receiver:
        result = traced_tree(receiver, {'OTEL_TRACES_EXPORTER': 'none'})
        time.sleep(0.3)
        check_equal(len(receiver.requests), 0, 'none: nothing exported')


def test_disabled_and_bad_values():
    with Receiver() as receiver:
        result = traced_tree(receiver, {'OTEL_SDK_DISABLED': 'true'})
        time.sleep(0.5)
        check_equal(len(receiver.requests), 0, 'OTEL_SDK_DISABLED: nothing sent')
    check_equal(result.returncode, 0, 'OTEL_SDK_DISABLED: exit status')
    check_equal(result.stderr, '', 'OTEL_SDK_DISABLED: silent')
    with Receiver() as receiver:
        result = traced_tree(receiver, {'OTEL_BSP_SCHEDULE_DELAY': 'soon',
                                        'OTEL_EXPORTER_OTLP_PROTOCOL': 'grpc'})
        spans = settle(receiver, TREE_SPANS)
        content_type = receiver.requests[0].headers.get('content-type')
    warnings = [l for l in result.stderr.splitlines() if l.startswith('otlpauto:')]
    check_equal(len(warnings), 2, 'bad values: one warning line each')
    check(any('OTEL_BSP_SCHEDULE_DELAY' in w for w in warnings), 'bad values: names the variable')
    check_equal(len(spans), TREE_SPANS, 'bad values: spans still arrive')
    check_equal(content_type, 'application/x-protobuf', 'grpc: falls back to http/protobuf')


def test_resource_attributes():
    with Receiver() as receiver:
        traced_tree(receiver, {'OTEL_RESOURCE_ATTRIBUTES':
                               'deployment.environment=test,team=a%20b,service.name=ignored',
                               'OTEL_SERVICE_NAME': 'checkout'})
        resource = settle(receiver, TREE_SPANS)[0]['resource']
    check_equal(resource.get('deployment.environment'), 'test', 'resource attrs: kept')
    check_equal(resource.get('team'), 'a b', 'resource attrs: percent-decoded')
    check_equal(resource.get('service.name'), 'checkout', 'resource attrs: OTEL_SERVICE_NAME wins')
    with Receiver() as receiver:
        traced_tree(receiver, {'OTEL_SERVICE_NAME': None})
        resource = settle(receiver, TREE_SPANS)[0]['resource']
    check_equal(resource.get('service.name'), 'unknown_service:workload',
                'resource: unknown_service:<exe> by default')


def test():
    test_protobuf_default()
    test_json_and_gzip()
    test_headers_and_endpoints()
    test_retries()
    test_collector_down_and_slow()
    test_refused_and_partial()
    test_exporters()
    test_disabled_and_bad_values()
    test_resource_attributes()


main(test)
