"""Self-test of tests/receiver.py and tests/otlp_schema.py (no shim involved).

Posts protobuf, JSON and gzip bodies to every mode with http.client and
checks what the receiver records and answers.
"""

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import Receiver, check, check_equal, free_port, otlp_schema
from receiver import RESET

RECEIVER_SCRIPT = harness.TESTS_DIR / 'receiver.py'
RESPONSE_PARSER = otlp_schema.ExportTraceServiceResponse


def sample_spans(count, prefix='span'):
    """`count` spans of one trace, the first the parent of the others, with
    every kind of attribute value, an event and a link."""
    trace_id = os.urandom(16).hex()
    root_id = os.urandom(8).hex()
    spans = []
    for index in range(count):
        spans.append({
            'trace_id': trace_id,
            'span_id': root_id if index == 0 else os.urandom(8).hex(),
            'parent_span_id': '' if index == 0 else root_id,
            'trace_state': 'vendor=1',
            'name': f'{prefix}{index}',
            'kind': index % 6,
            'start': 1_700_000_000_000_000_000 + index,
            'end': 1_700_000_000_000_001_000 + index,
            'attributes': {'text': 'é✓', 'int': -(2**63), 'big': 2**63 - 1,
                           'double': 0.25, 'flag': False, 'raw': b'\x00\x01',
                           'list': [1, 'two', 3.0], 'map': {'inner': True},
                           'empty': None},
            'dropped_attributes_count': 1,
            'events': [{'name': 'exception', 'time': 1_700_000_000_000_000_500,
                        'attributes': {'exception.type': 'E'},
                        'dropped_attributes_count': 0}],
            'dropped_events_count': 0,
            'links': [{'trace_id': os.urandom(16).hex(), 'span_id': os.urandom(8).hex(),
                       'trace_state': '', 'attributes': {'why': 'test'},
                       'dropped_attributes_count': 0, 'flags': 0x301}],
            'dropped_links_count': 2,
            'status_code': 2 if index else 0,
            'status_message': 'failed' if index else '',
            'flags': 0x101,
            'resource': {'service.name': 'receiver-test', 'process.pid': 42},
            'scope': {'name': 'otlpauto', 'version': '0.1.0', 'attributes': {}},
        })
    return spans


def protobuf_body(spans):
    return otlp_schema.build_request(spans).SerializeToString()


def json_body(spans):
    return otlp_schema.request_to_json(otlp_schema.build_request(spans)).encode()


def post(port, body, content_type='application/x-protobuf', compress=False,
         path='/v1/traces', connection=None):
    """(status, headers dict with lowercase names, body) of one POST."""
    own = connection is None
    connection = connection or http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    headers = {'Content-Type': content_type}
    if compress:
        body = gzip.compress(body)
        headers['Content-Encoding'] = 'gzip'
    try:
        connection.request('POST', path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return (response.status,
                {name.lower(): value for name, value in response.getheaders()}, data)
    finally:
        if own:
            connection.close()


def partial_success(content_type, body):
    """(rejected_spans, error_message) of a 200 answer body."""
    if content_type == 'application/json':
        partial = json.loads(body).get('partialSuccess', {})
        return int(partial.get('rejectedSpans', '0')), partial.get('errorMessage', '')
    response = RESPONSE_PARSER.FromString(body)
    return response.partial_success.rejected_spans, response.partial_success.error_message


def test_schema_round_trip():
    spans = sample_spans(3)
    check_equal(otlp_schema.decode_request(protobuf_body(spans)), spans,
                'protobuf round trip keeps every span field')
    check_equal(otlp_schema.decode_json_request(json_body(spans).decode()), spans,
                'OTLP/JSON round trip keeps every span field')
    text = json_body(spans[:1]).decode()
    check('"traceId": "%s"' % spans[0]['trace_id'] in text, 'JSON ids are hex')
    check('"startTimeUnixNano": "1700000000000000000"' in text,
          'JSON 64-bit integers are strings')

    def rejects(what, mutate):
        obj = json.loads(text)
        mutate(obj['resourceSpans'][0]['scopeSpans'][0]['spans'][0])
        try:
            otlp_schema.decode_json_request(json.dumps(obj))
        except ValueError as error:
            check(True, f'JSON decoder rejects {what}')
            return str(error)
        check(False, f'JSON decoder rejects {what}', 'accepted')
        return ''

    rejects('snake_case keys', lambda span: span.update(span_id=span.pop('spanId')))
    rejects('64-bit integers as numbers',
            lambda span: span.update(startTimeUnixNano=int(span['startTimeUnixNano'])))
    rejects('enum names', lambda span: span.update(kind='SPAN_KIND_SERVER'))
    rejects('base64 ids', lambda span: span.update(spanId='AAECAwQFBgc='))
    rejects('uppercase hex ids', lambda span: span.update(spanId=span['spanId'].upper()))
    rejects('short trace ids', lambda span: span.update(traceId='00ff'))
    rejects('two oneof members', lambda span: span['attributes'][0]['value'].update(
        intValue='1'))
    duplicate = sample_spans(1)[0]
    body = protobuf_body([duplicate])
    request = otlp_schema.ExportTraceServiceRequest.FromString(body)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key='text').value.string_value = 'again'
    try:
        otlp_schema.decode_request(request.SerializeToString())
        check(False, 'decoder rejects duplicate attribute keys', 'accepted')
    except ValueError:
        check(True, 'decoder rejects duplicate attribute keys')
    span.attributes.pop()
    span.span_id = bytes(8)
    try:
        otlp_schema.decode_request(request.SerializeToString())
        check(False, 'decoder rejects all-zero span ids', 'accepted')
    except ValueError:
        check(True, 'decoder rejects all-zero span ids')


def test_ok_mode():
    spans_pb, spans_json, spans_gz = sample_spans(2, 'pb'), sample_spans(1, 'js'), sample_spans(3, 'gz')
    with Receiver(mode='ok') as receiver:
        check(receiver.url == f'http://127.0.0.1:{receiver.port}', 'url is the base URL')
        connection = http.client.HTTPConnection('127.0.0.1', receiver.port, timeout=10)
        status, headers, body = post(receiver.port, protobuf_body(spans_pb),
                                     connection=connection)
        check_equal(status, 200, 'protobuf: 200')
        check_equal(headers.get('content-type'), 'application/x-protobuf',
                    'protobuf: answer content type')
        check_equal(partial_success('application/x-protobuf', body), (0, ''),
                    'protobuf: answer is an empty ExportTraceServiceResponse')
        status, headers, body = post(receiver.port, json_body(spans_json),
                                     'application/json', connection=connection)
        check_equal(status, 200, 'JSON: 200')
        check_equal(headers.get('content-type'), 'application/json', 'JSON: answer content type')
        check_equal(json.loads(body), {}, 'JSON: answer is {}')
        status, _, _ = post(receiver.port, protobuf_body(spans_gz), compress=True,
                            connection=connection)
        check_equal(status, 200, 'gzip protobuf: 200')
        status, _, _ = post(receiver.port, json_body(spans_gz[:1]), 'application/json',
                            compress=True, connection=connection)
        check_equal(status, 200, 'gzip JSON: 200')
        connection.close()

        check_equal(receiver.wait_for_spans(7, timeout=5),
                    spans_pb + spans_json + spans_gz + spans_gz[:1],
                    'spans recorded in arrival order, decoded')
        requests = receiver.requests
        check_equal([r.path for r in requests], ['/v1/traces'] * 4, 'request paths')
        check_equal(len({r.client_port for r in requests}), 1,
                    'keep-alive: one connection for four requests')
        check_equal(requests[2].headers.get('content-encoding'), 'gzip', 'headers recorded')
        check(requests[2].body != requests[2].data
              and requests[2].data == protobuf_body(spans_gz),
              'raw and decompressed bodies recorded')

        status, _, _ = post(receiver.port, b'{}', 'application/json', path='/v1/logs')
        check_equal(status, 404, 'other paths: 404')
        status, _, _ = post(receiver.port, b'[]', 'application/json', path='/v1/metrics')
        check_equal(status, 400, 'metrics: not a request')
        status, _, _ = post(receiver.port, b'', 'application/x-protobuf', path='/v1/metrics')
        check_equal(status, 200, 'metrics: an empty request is 200')
        check_equal([r.status for r in receiver.metric_requests], [400, 200],
                    'metrics: requests recorded apart')
        status, _, body = post(receiver.port, b'\xff\xff\xff')
        check_equal(status, 400, 'undecodable protobuf: 400')
        check_equal(receiver.requests[-1].status, 400, 'undecodable body recorded as 400')
        check(receiver.requests[-1].error != '', 'decode error recorded',
              receiver.requests[-1].error)
        check(otlp_schema.RpcStatus.FromString(body).message != '',
              '400 body is a google.rpc.Status with a message')
        chunked = http.client.HTTPConnection('127.0.0.1', receiver.port, timeout=10)
        body = protobuf_body(spans_pb)
        chunked.request('POST', '/v1/traces', body=iter([body[:10], body[10:]]),
                        headers={'Content-Type': 'application/x-protobuf'},
                        encode_chunked=True)
        check_equal(chunked.getresponse().status, 200, 'chunked body: 200')
        chunked.close()
        check_equal(receiver.requests[-1].spans, spans_pb, 'chunked body decoded')
        status, _, _ = post(receiver.port, b'plain text', content_type='text/plain')
        check_equal(status, 400, 'unknown content type: 400')
        with socket.create_connection(('127.0.0.1', receiver.port), timeout=10) as sock:
            sock.sendall(b'POST /v1/traces HTTP/1.1\r\nHost: x\r\n'
                         b'Content-Type: application/x-protobuf\r\n'
                         b'Content-Encoding: gzip\r\nContent-Length: 8\r\n\r\nnot gzip')
            check(sock.recv(100).startswith(b'HTTP/1.1 400'), 'bad gzip: 400')
        check_equal(len(receiver.spans), 9, 'rejected requests add no spans')
        check_equal(receiver.status_counts, {200: 5, 404: 1, 400: 3}, 'status counts')


def test_retry_modes():
    for mode, status in (('flap:2', 503), ('429:2', 429)):
        spans = sample_spans(2)
        with Receiver(mode=mode) as receiver:
            answers = [post(receiver.port, protobuf_body(spans)) for _ in range(3)]
            check_equal([a[0] for a in answers], [status, status, 200],
                        f'{mode}: statuses of three tries')
            check_equal([a[1].get('retry-after') for a in answers], ['1', '1', None],
                        f'{mode}: Retry-After: 1 on the refusals')
            check_equal(receiver.spans, spans, f'{mode}: accepted spans recorded once')
            check_equal([r.spans for r in receiver.requests], [spans] * 3,
                        f'{mode}: every try recorded with its spans')
            check_equal(receiver.status_counts, {status: 2, 200: 1}, f'{mode}: counts')
            receiver.set_mode(mode)
            check_equal(post(receiver.port, protobuf_body(spans))[0], status,
                        f'{mode}: set_mode restarts the count')

    with Receiver(mode='400') as receiver:
        answers = [post(receiver.port, json_body(sample_spans(1)), 'application/json')
                   for _ in range(2)]
        check_equal([a[0] for a in answers], [400, 400], '400: always 400')
        check(all(json.loads(a[2]).get('message') for a in answers),
              '400: JSON Status body with a message')
        check_equal(receiver.spans, [], '400: no spans accepted')


def test_slow_mode():
    with Receiver(mode='slow:0.5') as receiver:
        started = time.monotonic()
        status, _, _ = post(receiver.port, protobuf_body(sample_spans(1)))
        elapsed = time.monotonic() - started
        check_equal(status, 200, 'slow: 200')
        check(elapsed >= 0.5, 'slow: answer delayed', f'{elapsed:.2f} s')
        # A client giving up early must not hang the receiver's stop().
        connection = http.client.HTTPConnection('127.0.0.1', receiver.port, timeout=0.1)
        try:
            post(receiver.port, protobuf_body(sample_spans(1)), connection=connection)
            check(False, 'slow: client timeout', 'answered')
        except socket.timeout:
            check(True, 'slow: client timeout')
        connection.close()
        receiver.set_mode('slow:30')
        stuck = http.client.HTTPConnection('127.0.0.1', receiver.port, timeout=1)
        stuck.request('POST', '/v1/traces', body=protobuf_body(sample_spans(1)),
                      headers={'Content-Type': 'application/x-protobuf'})
        time.sleep(0.2)
        started = time.monotonic()
    stopped_in = time.monotonic() - started
    stuck.close()
    check(stopped_in < 5, 'slow: stop() does not wait out the sleep', f'{stopped_in:.2f} s')


def test_reset_mode():
    with Receiver(mode='reset') as receiver:
        try:
            post(receiver.port, protobuf_body(sample_spans(1)))
            check(False, 'reset: first request gets no answer', 'answered')
        except (ConnectionResetError, http.client.RemoteDisconnected) as error:
            check(isinstance(error, ConnectionResetError),
                  'reset: first request sees a connection reset (RST)',
                  type(error).__name__)
        spans = sample_spans(2)
        check_equal(post(receiver.port, protobuf_body(spans))[0], 200, 'reset: then 200')
        check_equal(receiver.spans, spans, 'reset: only answered spans recorded')
        check_equal(receiver.status_counts, {RESET: 1, 200: 1},
                    'reset: counted as status 0')


def test_partial_mode():
    with Receiver(mode='partial:3') as receiver:
        for content_type, body in (('application/x-protobuf', protobuf_body(sample_spans(4))),
                                   ('application/json', json_body(sample_spans(4)))):
            status, headers, answer = post(receiver.port, body, content_type)
            check_equal(status, 200, f'partial ({content_type}): 200')
            check_equal(partial_success(headers.get('content-type'), answer),
                        (3, 'test rejection'), f'partial ({content_type}): partial_success')
        check_equal(len(receiver.spans), 8, 'partial: spans still recorded')


def test_free_port_and_waits():
    port = free_port()
    with socket.socket() as sock:
        check_equal(sock.connect_ex(('127.0.0.1', port)), 111,  # ECONNREFUSED
                    'free_port: nobody listens')
    with Receiver() as receiver:
        started = time.monotonic()
        got = receiver.wait_for_spans(1, timeout=0.3)
        check(got == [] and time.monotonic() - started >= 0.3,
              'wait_for_spans returns what it has at the timeout')
        # An idle keep-alive connection must not block stop().
        idle = http.client.HTTPConnection('127.0.0.1', receiver.port, timeout=10)
        post(receiver.port, protobuf_body(sample_spans(1)), connection=idle)
        started = time.monotonic()
    check(time.monotonic() - started < 2, 'stop() with an idle keep-alive connection')
    idle.close()
    try:
        Receiver(mode='flap')
        check(False, 'bad mode rejected', 'accepted')
    except ValueError:
        check(True, 'bad mode rejected')


def test_cli():
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'spans.jsonl'
        process = subprocess.Popen(
            [sys.executable, str(RECEIVER_SCRIPT), '--port', '0', '--mode', 'flap:1',
             '--out', str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            port = int(process.stdout.readline())
            spans = sample_spans(2)
            statuses = [post(port, protobuf_body(spans))[0] for _ in range(2)]
            check_equal(statuses, [503, 200], 'CLI: mode applies')
            lines = out.read_text().splitlines()
            check_equal([json.loads(line)['name'] for line in lines],
                        [span['name'] for span in spans], 'CLI: --out has accepted spans')
            check_equal(json.loads(lines[0])['attributes']['raw'], '0001',
                        'CLI: bytes values written as hex')
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=10)
            check_equal(process.returncode, 0, 'CLI: SIGTERM stops it cleanly')
            check('503: 1' in stderr and '200: 1' in stderr, 'CLI: prints counts', stderr)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()


def test():
    test_schema_round_trip()
    test_ok_mode()
    test_retry_modes()
    test_slow_mode()
    test_reset_mode()
    test_partial_mode()
    test_free_port_and_waits()
    test_cli()


if __name__ == '__main__':
    harness.main(test)
