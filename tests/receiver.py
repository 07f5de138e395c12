"""Test OTLP/HTTP trace (and metrics) receiver: a library and a CLI.

Library:
    with Receiver(mode='ok') as r:
        ... r.url (base URL for OTEL_EXPORTER_OTLP_ENDPOINT), r.traces_url, r.port
        spans = r.wait_for_spans(3, timeout=10)
        r.spans, r.requests, r.status_counts, r.set_mode('flap:2')
CLI (for shell tests; prints the port, stops on SIGTERM/SIGINT):
    /usr/bin/python3 tests/receiver.py --port 0 --mode ok --out spans.jsonl

Modes:
    ok          200 + empty ExportTraceServiceResponse (request's content type)
    flap:N      the first N requests get 503 with Retry-After: 1, then ok
    429:N       likewise with 429
    400         always 400 with a google.rpc.Status body
    slow:S      sleep S seconds (float) before answering ok
    reset       first request: read it, then reset the connection (RST, no
                answer; recorded with status 0), then ok
    partial:K   200 with partial_success rejected_spans=K, 'test rejection'
A "down" endpoint is simply free_port() with nobody listening.

POSTs to /v1/metrics (protobuf or JSON) are answered 200 (400 when they do
not decode) in every mode and kept apart, in metric_requests, with their
histogram points.

Every request is recorded (Request below), whatever the answer. `spans` holds
only spans of requests answered 200, in arrival order, so a retried batch
that finally succeeds appears once (a slow answer counts even if the client
gave up waiting: a collector would have kept those spans too). Bodies that do not decode (bad gzip,
bad protobuf, invalid UTF-8, OTLP/JSON deviations, invalid ids, duplicate
attribute keys: see otlp_schema) get 400 in every mode that would answer
200, and the error is kept in Request.error.
"""

import argparse
import collections
import dataclasses
import gzip
import http.server
import json
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

from google.protobuf.message import DecodeError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import otlp_schema  # noqa: E402  (needs the path above)

PROTOBUF = 'application/x-protobuf'
JSON = 'application/json'
RESET = 0  # status recorded for a connection reset instead of an answer
RETRY_AFTER = '1'
PARTIAL_MESSAGE = 'test rejection'
IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may idle; a backstop only

# google.rpc.Code values for the error bodies.
_RPC_CODE = {400: 3, 429: 8, 503: 14}


@dataclasses.dataclass
class Request:
    """One HTTP request as received, and what was answered."""
    method: str
    path: str
    headers: dict          # lowercase names; the last value wins
    body: bytes            # as received (possibly gzip)
    data: bytes            # after Content-Encoding was undone
    spans: list            # decoded spans (also for non-200 answers)
    error: str             # why the body did not decode, '' if it did
    status: int            # answered status, RESET for a reset
    client_port: int       # tells connections apart (keep-alive checks)
    received: float        # time.monotonic() when the body was read


def free_port():
    """A 127.0.0.1 TCP port nobody listens on (for "receiver down" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def parse_mode(mode):
    """(kind, argument) for a mode string; raises ValueError on a bad one."""
    kind, _, argument = mode.partition(':')
    if kind in ('ok', '400', 'reset') and not argument:
        return kind, None
    try:
        if kind in ('flap', '429', 'partial'):
            value = int(argument)
            if value >= 0:
                return kind, value
        if kind == 'slow':
            value = float(argument)
            if value >= 0:
                return kind, value
    except ValueError:
        pass
    raise ValueError(f'bad receiver mode {mode!r}')


@dataclasses.dataclass
class _Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict = dataclasses.field(default_factory=dict)


def _error_answer(status, message, as_json, headers=None):
    # The OTLP/HTTP spec wants a google.rpc.Status body on 4xx/5xx answers.
    body = otlp_schema.encode_status(_RPC_CODE[status], message, as_json=as_json)
    return _Answer(status, JSON if as_json else PROTOBUF,
                   body.encode() if as_json else body, headers or {})


def _span_json_default(value):
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f'not JSON serialisable: {value!r}')


class _Server(http.server.ThreadingHTTPServer):
    # Non-daemon handler threads so that server_close() joins them.
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request, client_address):
        # Clients vanishing (killed programs, resets) are routine in these tests.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive
    timeout = IDLE_TIMEOUT
    server_version = 'otlpauto-test-receiver'

    def setup(self):
        super().setup()
        self.server.owner._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def log_message(self, format, *args):
        pass  # the tests print what matters

    def do_GET(self):
        self._handle(b'')

    def do_POST(self):
        try:
            body = self._read_body()
        except ValueError as error:
            self._answer(_Answer(400, 'text/plain', str(error).encode()))
            self.close_connection = True
            return
        self._handle(body)

    def _read_body(self):
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass  # trailers, up to the blank line
                    return b''.join(chunks)
                chunks.append(self.rfile.read(size + 2)[:size])  # data + CRLF
        length = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(length)
        if len(body) != length:
            raise ValueError('body shorter than Content-Length')
        return body

    def _handle(self, body):
        owner = self.server.owner
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(method=self.command, path=self.path, headers=headers,
                          body=body, data=b'', spans=[], error='', status=0,
                          client_port=self.client_address[1],
                          received=time.monotonic())
        content_type = headers.get('content-type', '').split(';')[0].strip().lower()
        if self.command == 'POST' and self.path == '/v1/metrics':
            self._metrics(request, content_type)
            return
        if self.command == 'POST' and self.path == '/v1/traces':
            self._decode(request, content_type)
            answer = owner._decide(request, as_json=content_type == JSON)
        else:
            answer = _Answer(404, 'text/plain', b'not found')
        # Recorded before answering: a client that saw the answer must find it here.
        owner._record(request, answer.status)
        if answer.status == RESET:
            self._reset()
            return
        try:
            self._answer(answer)
        except OSError:
            self.close_connection = True  # the client went away (e.g. its timeout)

    def _metrics(self, request, content_type):
        # Kept apart from the traces' requests: tests of spans count those.
        as_json = content_type == JSON
        try:
            encoding = request.headers.get('content-encoding', 'identity').lower()
            request.data = (gzip.decompress(request.body) if encoding == 'gzip'
                            else request.body)
            if content_type == PROTOBUF:
                request.spans = otlp_schema.decode_metrics_request(request.data)
            elif as_json:
                request.spans = otlp_schema.decode_metrics_json_request(request.data)
            else:
                raise ValueError(f'unsupported Content-Type {content_type!r}')
            # an empty ExportMetricsServiceResponse
            answer = _Answer(200, content_type, b'{}' if as_json else b'')
        except (ValueError, EOFError, OSError, zlib.error, DecodeError) as error:
            request.error = f'{type(error).__name__}: {error}'
            answer = _error_answer(400, request.error, as_json)
        request.status = answer.status
        self.server.owner._record_metrics(request)
        try:
            self._answer(answer)
        except OSError:
            self.close_connection = True

    def _decode(self, request, content_type):
        encoding = request.headers.get('content-encoding', 'identity').lower()
        try:
            if encoding == 'gzip':
                request.data = gzip.decompress(request.body)
            elif encoding == 'identity':
                request.data = request.body
            else:
                raise ValueError(f'unsupported Content-Encoding {encoding!r}')
            if content_type == PROTOBUF:
                request.spans = otlp_schema.decode_request(request.data)
            elif content_type == JSON:
                request.spans = otlp_schema.decode_json_request(request.data)
            else:
                raise ValueError(f'unsupported Content-Type {content_type!r}')
        except (ValueError, EOFError, OSError, zlib.error,
                DecodeError) as error:
            request.error = f'{type(error).__name__}: {error}'

    def _answer(self, answer):
        self.send_response(answer.status)
        self.send_header('Content-Type', answer.content_type)
        self.send_header('Content-Length', str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def _reset(self):
        # SO_LINGER 0 makes close() send RST. rfile holds a reference to the
        # socket; it must go first or close() would be deferred.
        self.close_connection = True
        self.rfile.close()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack('ii', 1, 0))
        self.connection.close()


class Receiver:
    """OTLP/HTTP receiver on 127.0.0.1; start()/stop() or use as a context manager."""

    def __init__(self, mode='ok', port=0, out=None):
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._connections = set()
        self._requests = []
        self._metric_requests = []
        self._spans = []
        self._counts = collections.Counter()
        self._out = open(out, 'a', encoding='utf-8') if out else None
        self.set_mode(mode)
        self._server = _Server(('127.0.0.1', port), _Handler)
        self._server.owner = self
        self._thread = None

    # -- lifecycle

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.05},
                                        name='otlp-receiver', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, drop open connections, join every thread."""
        self._stopping.set()  # wakes slow-mode sleepers
        if self._thread:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive readers get EOF
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()  # joins handler threads
        if self._out:
            self._out.close()
            self._out = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- what tests read

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        """Base URL, the value for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f'http://127.0.0.1:{self.port}'

    @property
    def traces_url(self):
        return self.url + '/v1/traces'

    @property
    def spans(self):
        """Spans of requests answered 200, in arrival order (a copy)."""
        with self._lock:
            return list(self._spans)

    @property
    def requests(self):
        """Every Request recorded so far (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def status_counts(self):
        """{status answered: number of requests}; RESET (0) for resets."""
        with self._lock:
            return dict(self._counts)

    def wait_for_spans(self, count, timeout=10.0):
        """Accepted spans once there are at least `count`, or at the timeout."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._spans) >= count, timeout)
            return list(self._spans)

    @property
    def metric_requests(self):
        """Every POST to /v1/metrics so far (a copy); Request.spans holds the
        decoded histogram points (otlp_schema.decode_metrics_request)."""
        with self._lock:
            return list(self._metric_requests)

    def wait_for_metric_requests(self, count, timeout=10.0):
        """Metrics requests once there are at least `count`, or at the timeout."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._metric_requests) >= count, timeout)
            return list(self._metric_requests)

    def wait_for_requests(self, count, timeout=10.0):
        """Recorded requests once there are at least `count`, or at the timeout."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._requests) >= count, timeout)
            return list(self._requests)

    def set_mode(self, mode):
        """Switch mode; the request count that flap/429/reset use restarts."""
        kind, argument = parse_mode(mode)
        with self._lock:
            self._mode = (kind, argument)
            self._mode_requests = 0

    # -- used by the handler

    def _track(self, connection, is_open):
        with self._lock:
            (self._connections.add if is_open else self._connections.discard)(connection)

    def _decide(self, request, as_json):
        """The _Answer to a /v1/traces request, according to the mode."""
        with self._lock:
            kind, argument = self._mode
            self._mode_requests += 1
            nth = self._mode_requests
        if kind in ('flap', '429') and nth <= argument:
            status = 503 if kind == 'flap' else 429
            return _error_answer(status, 'test overload', as_json,
                                 {'Retry-After': RETRY_AFTER})
        if kind == '400':
            return _error_answer(400, 'test bad request', as_json)
        if kind == 'reset' and nth == 1:
            return _Answer(RESET, '', b'')
        if kind == 'slow':
            self._stopping.wait(argument)
        if request.error:
            return _error_answer(400, request.error, as_json)
        rejected = argument if kind == 'partial' else 0
        message = PARTIAL_MESSAGE if rejected else ''
        if as_json:
            return _Answer(200, JSON, otlp_schema.encode_json_response(
                rejected, message).encode())
        return _Answer(200, PROTOBUF, otlp_schema.encode_response(rejected, message))

    def _record_metrics(self, request):
        with self._lock:
            self._metric_requests.append(request)
            self._lock.notify_all()

    def _record(self, request, status):
        request.status = status
        with self._lock:
            self._requests.append(request)
            self._counts[status] += 1
            if status == 200:
                self._spans.extend(request.spans)
                if self._out:
                    for span in request.spans:
                        self._out.write(json.dumps(span, default=_span_json_default) + '\n')
                    self._out.flush()
            self._lock.notify_all()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--port', type=int, default=0, help='0 picks a free port')
    parser.add_argument('--mode', default='ok')
    parser.add_argument('--out', help='append accepted spans here, one JSON per line')
    args = parser.parse_args()
    # Blocked before any thread starts, so that only sigwait() sees them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    with Receiver(mode=args.mode, port=args.port, out=args.out) as receiver:
        print(receiver.port, flush=True)
        signal.sigwait(stop_signals)
    print(f'requests by status: {receiver.status_counts}', file=sys.stderr)


if __name__ == '__main__':
    main()
