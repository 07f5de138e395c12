"""RED metrics over OTLP (/v1/metrics), decoded by python3-protobuf through
tests/otlp_schema.py (transcribed from opentelemetry-proto, not from our
proto/ files).

- The encoder: `test_metrics --dump DIR` writes requests whose every field
  is checked here.
- nginx (master and 2 workers) serving 100 x 200 and 3 x 404 with
  OTEL_TRACES_SAMPLER=always_off: no span, and http.server.request.duration
  counts 103 requests, split 100/3 by status code, sent at exit.
- curl (always_off) against an untraced server: http.client.request.duration,
  over protobuf, http/json (and with its own _METRICS_ headers and
  compression), as console lines, and as a line of the otlp/file sink.
- `otlpauto view --metrics` of that file.
- A program that makes requests and then execs: its image's metrics (and
  span counts) go out at the exec, through the relay or by itself.
- Cumulative sums grow across two export intervals; delta ones start over.
- OTLPAUTO_METRICS_MAX_SERIES: the rest goes to otel.metric.overflow=true.
"""

import functools
import http.client
import http.server
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time

from harness import (DEFAULT_SERVICE_NAME, Receiver, builddir, check, check_equal, free_port,
                     main, otlp_schema, run_traced, skip)
from netutil import Background

NGINX = shutil.which('nginx') or '/usr/sbin/nginx'
SERVER = 'http.server.request.duration'
CLIENT = 'http.client.request.duration'
CUMULATIVE, DELTA = 2, 1
# The semantic conventions' bucket boundaries for HTTP durations (seconds).
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
CONFIG = '''daemon off;
master_process {master};
worker_processes 2;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 1000;
  server {{ listen 127.0.0.1:{port}; root {dir}/www; }}
}}
'''


def dumped_requests():
    with tempfile.TemporaryDirectory(prefix='otlpauto-metrics-') as out:
        run = subprocess.run([os.path.join(builddir(), 'tests', 'test_metrics'), '--dump', out],
                             capture_output=True, timeout=60)
        check_equal(run.returncode, 0, 'encoder: test_metrics --dump ran')
        result = {}
        for name in ('cumulative', 'delta', 'counts'):
            with open(os.path.join(out, f'metrics-{name}.pb'), 'rb') as f:
                result[name] = otlp_schema.decode_metrics_request(f.read())
            with open(os.path.join(out, f'metrics-{name}.json'), 'rb') as f:
                result[name + '.json'] = otlp_schema.decode_metrics_json_request(f.read())
        return result


SPAN_COUNTS = [({'otlpauto.span.outcome': 'produced'}, 10),
               ({'otlpauto.span.outcome': 'exported'}, 6),
               ({'otlpauto.span.outcome': 'sampled_out'}, 1),
               ({'otlpauto.span.outcome': 'dropped', 'otlpauto.drop.reason': 'export_failed'}, 3)]


def encoder_span_counts(requests):
    for name in ('cumulative', 'delta', 'counts'):
        sums = [p for p in requests[name] if p['kind'] == 'sum']
        check_equal([(p['attributes'], p['value']) for p in sums], SPAN_COUNTS,
                    f'encoder: otlpauto.spans, one point per outcome ({name})')
        check(all(p['name'] == 'otlpauto.spans' and p['unit'] == '{span}' and p['monotonic']
                  and p['scope'] == {'name': 'otlpauto', 'version': '0.1.0'}
                  and p['temporality'] == (DELTA if name == 'delta' else CUMULATIVE)
                  for p in sums), f'encoder: otlpauto.spans is a monotonic sum ({name})', sums)
    check_equal([p['kind'] for p in requests['counts']], ['sum'] * 4,
                'encoder: span counts alone, without histograms')


def encoder():
    requests = dumped_requests()
    for name in ('cumulative', 'delta', 'counts'):
        check_equal(requests[name + '.json'], requests[name],
                    f'encoder: the JSON request is the protobuf one ({name})')
    encoder_span_counts(requests)
    requests = {name: [p for p in points if p['kind'] == 'histogram']
                for name, points in requests.items()}
    points = requests['cumulative']
    check_equal([(p['name'], p['count']) for p in points],
                [(SERVER, 3), (SERVER, 1), (SERVER, 2), (CLIENT, 1), (CLIENT, 1)],
                'encoder: five points in two metrics, in order')
    if len(points) != 5:
        return
    check(all(p['unit'] == 's' and p['description'] for p in points),
          'encoder: unit s and a description')
    check(all(p['temporality'] == CUMULATIVE for p in points), 'encoder: cumulative')
    check(all(p['temporality'] == DELTA for p in requests['delta']), 'encoder: delta')
    check(all(p['explicit_bounds'] == BOUNDS for p in points), 'encoder: semconv bounds')
    check(all((p['start'], p['time']) == (1700000000000000000, 1700000060000000000)
              for p in points), 'encoder: start and time')
    check_equal([p['sum'] for p in points], [0.5, 12.0, 0.25, 0.01, 0.002], 'encoder: sums')
    check_equal(points[0]['bucket_counts'], [1, 0, 0, 0, 0, 0, 0, 2] + [0] * 7,
                'encoder: bucket counts')
    check_equal(points[0]['attributes'],
                {'http.request.method': 'GET', 'url.scheme': 'http',
                 'http.response.status_code': 200}, 'encoder: server attributes')
    check_equal(points[1]['attributes'],
                {'http.request.method': 'PUT', 'url.scheme': 'http',
                 'http.response.status_code': 503, 'error.type': '503'},
                'encoder: a 5xx is an error on the server')
    check_equal(points[2]['attributes'], {'otel.metric.overflow': True},
                'encoder: the overflow series')
    check_equal(points[3]['attributes'],
                {'http.request.method': 'GET', 'url.scheme': 'https',
                 'server.address': 'api.example.com', 'server.port': 8443,
                 'http.response.status_code': 404, 'error.type': '404'},
                'encoder: a 4xx is an error on the client')
    check_equal(points[4]['attributes'],
                {'http.request.method': 'GET', 'url.scheme': 'http', 'server.address': '::1',
                 'server.port': 9, 'error.type': 'ECONNREFUSED'},
                'encoder: a failed exchange has its errno')
    check_equal(points[0]['resource'],
                {'service.name': 'svc', 'process.pid': 4242,
                 'process.command_args': ['nginx', '-g']}, 'encoder: resource')
    check_equal(points[0]['scope'], {'name': 'otlpauto.http', 'version': '0.1.0'},
                'encoder: scope')


def latest_points(receiver, name):
    """The last point of each series of each process (cumulative ones
    supersede their predecessors)."""
    return latest_points_of(receiver.metric_requests, name)


def latest_points_of(requests, name):
    latest = {}
    for request in requests:
        for p in request.spans:
            if p['name'] != name:
                continue
            key = (p['resource']['process.pid'], tuple(sorted(p['attributes'].items())))
            if key not in latest or latest[key]['time'] <= p['time']:
                latest[key] = p
    return list(latest.values())


def counts_by(points, attribute):
    result = {}
    for p in points:
        value = p['attributes'].get(attribute)
        result[value] = result.get(value, 0) + p['count']
    return result


class Nginx:
    """nginx under the shim in a directory of its own; stopped with `-s quit`."""

    def __init__(self, receiver, env, master=True):
        self.dir = tempfile.mkdtemp(prefix='otlpauto-metrics-nginx-')
        os.mkdir(os.path.join(self.dir, 'www'))
        with open(os.path.join(self.dir, 'www', 'index.html'), 'w', encoding='utf-8') as f:
            f.write('<h1>hello</h1>\n')
        self.port = free_port()
        conf = os.path.join(self.dir, 'nginx.conf')
        with open(conf, 'w', encoding='utf-8') as f:
            f.write(CONFIG.format(dir=self.dir, port=self.port,
                                  master='on' if master else 'off'))
        self.base = [NGINX, '-c', conf, '-p', self.dir, '-e',
                     os.path.join(self.dir, 'error.log')]
        self.server = Background(self.base, receiver, timeout=120,
                                 env={'OTLPAUTO_HOOKS': 'sockets,dns,http', **env})
        self.listening = self._wait_listening()
        check(self.listening, 'nginx listens', self.server.stderr)
        self.conn = None

    def _wait_listening(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.server.process.poll() is None:
            try:
                http.client.HTTPConnection('127.0.0.1', self.port, timeout=1).connect()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def request(self, method, path):
        if self.conn is None:
            self.conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)
        self.conn.request(method, path)
        response = self.conn.getresponse()
        response.read()
        return response.status

    def quit(self):
        if self.conn:
            self.conn.close()
        subprocess.run(self.base + ['-s', 'quit'], capture_output=True, timeout=30)
        status = self.server.wait(60)
        shutil.rmtree(self.dir, ignore_errors=True)
        return status


def server_side():
    with Receiver() as receiver:
        nginx = Nginx(receiver, {'OTEL_TRACES_SAMPLER': 'always_off'})
        statuses = [nginx.request('GET', '/index.html') for _ in range(100)]
        statuses += [nginx.request('GET', f'/missing{i}') for i in range(3)]
        check_equal(nginx.quit(), 0, 'server: nginx exits 0 after quit')
        receiver.wait_for_metric_requests(1, timeout=10)
        time.sleep(0.5)  # the other worker's, if both served
        points = latest_points(receiver, SERVER)
        spans = receiver.spans
        requests = receiver.metric_requests
    check_equal((statuses.count(200), statuses.count(404)), (100, 3), 'server: nginx answered')
    check_equal(len(spans), 0, 'server: always_off sends no span')
    check(all(r.status == 200 and not r.error for r in requests), 'server: requests decode',
          [r.error for r in requests])
    check_equal(sum(p['count'] for p in points), 103, 'server: 103 requests counted')
    check_equal(counts_by(points, 'http.response.status_code'), {200: 100, 404: 3},
                'server: split 100/3 by status code')
    check(all(p['attributes'].get('http.request.method') == 'GET'
              and p['attributes'].get('url.scheme') == 'http'
              and 'error.type' not in p['attributes'] for p in points),
          'server: method and scheme, a 404 is no server error', points)
    check(all(p['temporality'] == CUMULATIVE and p['explicit_bounds'] == BOUNDS
              and p['start'] < p['time'] for p in points), 'server: cumulative, semconv bounds')
    check(all(0 < p['sum'] < p['count'] for p in points), 'server: durations in seconds')
    check(all(p['resource'].get('service.name') for p in points), 'server: the resource')


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def curl(extra_env):
    """curl (always_off) fetching /page three times and /none once from an
    untraced server: (curl's result, the receiver's metrics requests, port)."""
    with tempfile.TemporaryDirectory(prefix='otlpauto-metrics-www-') as www:
        with open(os.path.join(www, 'page'), 'w', encoding='utf-8') as f:
            f.write('page\n')
        server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(_Quiet, directory=www))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.server_address[1]
        url = f'http://127.0.0.1:{port}'
        try:
            with Receiver() as receiver:
                result = run_traced(['curl', '-s', f'{url}/page', f'{url}/page', f'{url}/page',
                                     f'{url}/none'], receiver,
                                    env={'OTEL_TRACES_SAMPLER': 'always_off',
                                         'OTLPAUTO_HOOKS': 'sockets,dns,http', **extra_env})
                # sent by the exit flush, which curl's exit waited for
                requests = receiver.metric_requests
                spans = receiver.spans
        finally:
            server.shutdown()
            server.server_close()
    check_equal(result.returncode, 0, 'client: curl ran')
    if 'OTEL_TRACES_SAMPLER' not in extra_env:
        check_equal(len(spans), 0, 'client: always_off sends no span')
    curl.stderr = result.stderr
    curl.spans = spans
    return requests, port


def span_counts_of(requests):
    """otlpauto.spans of the one process that sent metrics: {outcome or
    'dropped:reason': value}, from its latest point of each series."""
    latest = {}
    for p in latest_points_of(requests, 'otlpauto.spans'):
        a = p['attributes']
        key = a['otlpauto.span.outcome'] + (f":{a['otlpauto.drop.reason']}"
                                           if 'otlpauto.drop.reason' in a else '')
        latest[key] = p['value']
    return latest


def span_counts():
    """The shim's own counts, from curl's exit flush: what the receiver got,
    what the sampler left out, what a refusing collector made it drop."""
    requests, _ = curl({'OTEL_TRACES_SAMPLER': 'always_on'})
    received = len(curl.spans)
    check(received > 0, 'spans: curl sampled sends spans', received)
    check_equal(span_counts_of(requests),
                {'produced': received, 'exported': received, 'sampled_out': 0},
                'spans: produced and exported are what the receiver got')

    requests, _ = curl({})
    counts = span_counts_of(requests)
    check(counts.get('produced', 0) > 0 and counts == {
        'produced': counts['produced'], 'exported': 0, 'sampled_out': counts['produced']},
        'spans: always_off: every span produced is sampled out', counts)

    requests, _ = curl({'OTEL_TRACES_SAMPLER': 'always_on',
                        'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT':
                            f'http://127.0.0.1:{free_port()}/v1/traces',
                        'OTEL_BSP_EXPORT_TIMEOUT': '500', 'OTLPAUTO_EXIT_TIMEOUT': '2s'})
    counts = span_counts_of(requests)
    dropped = sum(v for k, v in counts.items() if k.startswith('dropped:'))
    check(counts.get('produced', 0) == received and counts.get('exported') == 0
          and dropped == received,
          'spans: a refusing collector: every span counted as dropped, by reason', counts)


def through_the_relay():
    """Three curls in a traced shell, under otlpauto run: each hands its
    metrics to the relay host, which sends them in one request at the end
    (the commands neither load the transport nor wait for the collector at
    exit); each process's series stays its own (process.pid)."""
    with tempfile.TemporaryDirectory(prefix='otlpauto-metrics-www-') as www:
        with open(os.path.join(www, 'page'), 'w', encoding='utf-8') as f:
            f.write('page\n')
        server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(_Quiet, directory=www))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f'http://127.0.0.1:{server.server_address[1]}/page'
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OTEL_') and k != 'LD_PRELOAD'}
        env.update({'OTEL_TRACES_SAMPLER': 'always_off', 'OTLPAUTO_HOOKS': 'sockets,dns,http'})
        try:
            with Receiver() as receiver:
                result = subprocess.run(
                    [str(builddir() / 'tools' / 'otlpauto' / 'otlpauto'), 'run', '--endpoint',
                     receiver.url, '--', 'bash', '-c',
                     f'curl -s {url}; curl -s {url}; curl -s {url} {url}'],
                    env=env, capture_output=True, text=True, timeout=60)
                requests = receiver.wait_for_metric_requests(1, timeout=5)
        finally:
            server.shutdown()
            server.server_close()
    check_equal(result.returncode, 0, 'relay: the commands ran')
    check_equal(len(requests), 1, 'relay: one metrics request, sent by the host')
    points = [p for r in requests for p in r.spans if p['name'] == CLIENT]
    check_equal(sorted(p['count'] for p in points), [1, 1, 2],
                'relay: each curl its own series, in one request')
    check_equal(len({p['resource']['process.pid'] for p in points}), 3,
                'relay: three processes')


PYTHON_THEN_EXEC = """
import sys, urllib.request, os
for _ in range(2):
    urllib.request.urlopen(sys.argv[1]).read()
os.execv('/bin/true', ['true'])
"""


class _Request:
    def __init__(self, spans):
        self.spans = spans


def is_python(item):
    return item['resource'].get('process.executable.name', '').startswith('python')


def exec_keeps_metrics():
    """python3 fetches a page twice and execs /bin/true: the python image's
    two requests are counted (its metrics end with it), whether it is the
    root of the tree (no relay: it sends them itself) or a command of a
    traced shell under otlpauto run (through the relay); its otlpauto.spans
    count what the receiver got from it."""
    with tempfile.TemporaryDirectory(prefix='otlpauto-metrics-www-') as www:
        with open(os.path.join(www, 'page'), 'w', encoding='utf-8') as f:
            f.write('page\n')
        server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(_Quiet, directory=www))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f'http://127.0.0.1:{server.server_address[1]}/page'
        argv = ['/usr/bin/python3', '-c', PYTHON_THEN_EXEC, url]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OTEL_') and k != 'LD_PRELOAD'}
        env.update({'OTLPAUTO_HOOKS': 'sockets,dns,http,process'})
        try:
            for how in ('root', 'relayed'):
                with Receiver() as receiver:
                    if how == 'root':
                        result = run_traced(argv, receiver,
                                            env={'OTLPAUTO_HOOKS': env['OTLPAUTO_HOOKS']})
                    else:
                        result = subprocess.run(
                            [str(builddir() / 'tools' / 'otlpauto' / 'otlpauto'), 'run',
                             '--endpoint', receiver.url, '--', 'bash', '-c',
                             shlex.join(argv) + '; true'],
                            env=env, capture_output=True, text=True, timeout=60)
                    # both sent before run returned: by the exec and the exit,
                    # or by the relay host's end
                    requests = receiver.wait_for_metric_requests(1, timeout=5)
                    spans = receiver.spans
                check_equal(result.returncode, 0, f'exec ({how}): the program ran')
                python = [_Request([p for p in r.spans if is_python(p)]) for r in requests]
                points = latest_points_of(python, CLIENT)
                check_equal([p['count'] for p in points], [2],
                            f'exec ({how}): the python image\'s two requests are counted')
                from_python = [s for s in spans if is_python(s)]
                counts = span_counts_of(python)
                check(len(from_python) > 0 and counts.get('produced') == len(from_python)
                      and counts.get('exported') == len(from_python),
                      f'exec ({how}): otlpauto.spans of the python image count its spans',
                      (counts, len(from_python)))
        finally:
            server.shutdown()
            server.server_close()


def check_client_points(points, port, what):
    by_status = {p['attributes'].get('http.response.status_code'): p for p in points}
    check_equal({s: p['count'] for s, p in by_status.items()}, {200: 3, 404: 1},
                f'{what}: 3 x 200 and 1 x 404')
    if 404 in by_status:
        check_equal(by_status[404]['attributes'],
                    {'http.request.method': 'GET', 'url.scheme': 'http',
                     'server.address': '127.0.0.1', 'server.port': port,
                     'http.response.status_code': 404, 'error.type': '404'},
                    f'{what}: server.address, server.port, error.type')


def client_side():
    requests, port = curl({})
    check(all(r.headers.get('content-type') == 'application/x-protobuf' for r in requests),
          'client: protobuf')
    check_client_points([p for r in requests for p in r.spans if p['name'] == CLIENT], port,
                        'client')
    requests, port = curl({'OTEL_EXPORTER_OTLP_PROTOCOL': 'http/json'})
    check(requests and all(r.headers.get('content-type') == 'application/json'
                           and r.status == 200 for r in requests), 'client: http/json')
    check_client_points([p for r in requests for p in r.spans if p['name'] == CLIENT], port,
                        'client, http/json')
    requests, port = curl({'OTEL_EXPORTER_OTLP_METRICS_HEADERS': 'x-tenant=metrics',
                           'OTEL_EXPORTER_OTLP_TRACES_HEADERS': 'x-tenant=traces',
                           'OTEL_EXPORTER_OTLP_METRICS_COMPRESSION': 'gzip'})
    check(requests and all(r.headers.get('x-tenant') == 'metrics'
                           and r.headers.get('content-encoding') == 'gzip'
                           and r.status == 200 for r in requests),
          'client: the _METRICS_ headers and compression',
          [(r.headers, r.status) for r in requests])


def console():
    requests, port = curl({'OTEL_METRICS_EXPORTER': 'console'})
    lines = sorted(line for line in curl.stderr.splitlines()
                   if line.startswith(f'otlpauto: metric {CLIENT} '))
    check_equal(len(requests), 0, 'console: nothing posted')
    expected = [
        f'otlpauto: metric {CLIENT} {{http.request.method=GET, url.scheme=http, '
        f'server.address=127.0.0.1, server.port={port}, http.response.status_code={status}'
        f'{error}}} count={count} sum=' for status, error, count in
        ((200, '', 3), (404, ', error.type=404', 1))]
    check(len(lines) == 2 and all(line.startswith(prefix) and line.endswith('s cumulative')
                                  for line, prefix in zip(lines, expected)),
          'console: a line per series at exit', lines)


def file_sink():
    with tempfile.TemporaryDirectory(prefix='otlpauto-metrics-file-') as out:
        path = os.path.join(out, 'out.jsonl')
        # sampled: the file has spans for the trees too
        requests, port = curl({'OTEL_TRACES_EXPORTER': 'otlp/file', 'OTLPAUTO_FILE': path,
                               'OTEL_TRACES_SAMPLER': 'always_on'})
        with open(path, encoding='utf-8') as f:
            lines = [line for line in f.read().splitlines() if line]
        view = subprocess.run([os.environ['OTLPAUTO_CLI'], 'view', '--metrics', path],
                              capture_output=True, text=True, timeout=60)
        trees = subprocess.run([os.environ['OTLPAUTO_CLI'], 'view', path],
                               capture_output=True, text=True, timeout=60)
        spans_only = os.path.join(out, 'spans-only.jsonl')
        with open(spans_only, 'w', encoding='utf-8') as f:
            f.write(''.join(line + '\n' for line in lines
                            if not line.startswith('{"resourceMetrics"')))
        empty = subprocess.run([os.environ['OTLPAUTO_CLI'], 'view', '--metrics', spans_only],
                               capture_output=True, text=True, timeout=60)
    check((empty.returncode, empty.stdout) == (1, '') and 'no metrics in' in empty.stderr,
          'view --metrics of a file without metrics: says so, exits 1',
          (empty.returncode, empty.stdout, empty.stderr))
    check_equal(len(requests), 0, 'file: nothing posted')
    metric_lines = [line for line in lines if line.startswith('{"resourceMetrics"')]
    check(len(metric_lines) == 1, 'file: one metrics line (at exit)', lines)
    points = [p for line in metric_lines
              for p in otlp_schema.decode_metrics_json_request(line) if p['name'] == CLIENT]
    check_client_points(points, port, 'file')
    check_equal((trees.returncode, trees.stderr), (0, ''),
                'view: the trees pass metrics lines over')
    check('GET' in trees.stdout, 'view: the trees have the CLIENT spans', trees.stdout)
    rows = [line.split() for line in view.stdout.splitlines()]
    check_equal((view.returncode, view.stderr), (0, ''), 'view --metrics ran')
    check(len(rows) == 5 and rows[0][:5] == ['service', 'metric', 'requests', 'rate/s', 'errors']
          and rows[1][:3] == [DEFAULT_SERVICE_NAME, CLIENT, '4'] and rows[1][4] == '25.0%',
          'view --metrics: a row with 4 requests, 25% errors', view.stdout)
    spans_sent = len([s for line in lines for s in otlp_schema.decode_json_line(line)])
    check(len(rows) == 5 and rows[2] == [] and rows[3] == ['service', 'spans', 'exported',
                                                           'sampled', 'out', 'dropped']
          and rows[4] == [DEFAULT_SERVICE_NAME, str(spans_sent), str(spans_sent), '0', '0'],
          f'view --metrics: the span counts, {spans_sent} produced and written', view.stdout)


def wait_total(receiver, name, total, after=0, timeout=10):
    """The first metrics request after the first `after` ones whose points of
    `name` add up to total; None at the timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for request in receiver.metric_requests[after:]:
            if sum(p['count'] for p in request.spans if p['name'] == name) == total:
                return request
        time.sleep(0.05)
    return None


def intervals(temporality):
    env = {'OTEL_METRIC_EXPORT_INTERVAL': '300', 'OTEL_TRACES_SAMPLER': 'always_off',
           'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE': temporality}
    cumulative = temporality == 'cumulative'
    with Receiver() as receiver:
        nginx = Nginx(receiver, env, master=False)
        for _ in range(5):
            nginx.request('GET', '/index.html')
        first = wait_total(receiver, SERVER, 5)
        check(first is not None, f'{temporality}: 5 requests in an interval')
        after = receiver.metric_requests.index(first) + 1 if first else 0
        time.sleep(0.7)  # two more intervals without requests
        quiet = receiver.metric_requests[after:]
        for _ in range(5):
            nginx.request('GET', '/index.html')
        second = wait_total(receiver, SERVER, 10 if cumulative else 5, after=after)
        check_equal(nginx.quit(), 0, f'{temporality}: nginx exits 0')
    check(second is not None, f'{temporality}: the next interval has '
          + ('10 (grown)' if cumulative else '5 (started over)'))
    if cumulative:
        check(len(quiet) >= 1 and all(
            sum(p['count'] for p in r.spans if p['name'] == SERVER) == 5 for r in quiet),
            'cumulative: intervals without requests repeat the sums',
            [len(quiet)])
    else:
        check_equal(len(quiet), 0, 'delta: intervals without requests send nothing')
    if first and second:
        p1, p2 = first.spans[0], second.spans[0]
        check_equal(p1['temporality'], CUMULATIVE if cumulative else DELTA,
                    f'{temporality}: temporality')
        if cumulative:
            check_equal(p2['start'], p1['start'], 'cumulative: one start time')
        else:
            check(p2['start'] > p1['start'] and p2['start'] >= p1['time'],
                  'delta: each interval starts where an earlier one ended')


def series_cap():
    env = {'OTLPAUTO_METRICS_MAX_SERIES': '2', 'OTEL_TRACES_SAMPLER': 'always_off'}
    with Receiver() as receiver:
        nginx = Nginx(receiver, env, master=False)
        sent = [('GET', '/index.html')] * 3 + [('GET', '/missing')] * 2 + [
            ('HEAD', '/index.html'), ('DELETE', '/index.html'), ('POST', '/index.html')]
        statuses = [nginx.request(method, path) for method, path in sent]
        check_equal(nginx.quit(), 0, 'cap: nginx exits 0')
        receiver.wait_for_metric_requests(1, timeout=10)
        points = latest_points(receiver, SERVER)
    check_equal(statuses[:6], [200, 200, 200, 404, 404, 200], 'cap: nginx answered')
    counts = {tuple(sorted(p['attributes'].items())): p['count'] for p in points}
    overflow = (('otel.metric.overflow', True),)
    check(len(points) == 3, 'cap: two series and the overflow series', counts)
    check_equal(counts.get(overflow), 3, 'cap: the three others in the overflow series')
    check_equal(sum(counts.values()), 8, 'cap: every request counted')


def test():
    encoder()
    if not os.access(NGINX, os.X_OK):
        skip('nginx is not installed')
    server_side()
    if shutil.which('curl'):
        client_side()
        through_the_relay()
        exec_keeps_metrics()
        console()
        file_sink()
        span_counts()
    intervals('cumulative')
    intervals('delta')
    series_cap()


if __name__ == '__main__':
    main(test)
