"""One trace through each of four real reverse proxies (Debian's nginx,
apache2 with mod_proxy, lighttpd with mod_proxy, haproxy), each started
on a free loopback port with a temporary configuration, in front of a
`python3 -m http.server` backend; curl, the proxy and the backend all run
under the shim (HTTP family only) and export to one receiver. The proxy
passes on the traceparent curl's request got, which the shim rewrites to
name the proxy's CLIENT span, so the shape is exactly
curl CLIENT -> proxy SERVER -> proxy CLIENT -> backend SERVER, one trace,
four spans from three processes; and two more requests on one connection
(the backend speaks HTTP/1.1, so a proxy may keep its upstream connection)
have that shape each.

Unsampled (nginx under OTEL_TRACES_SAMPLER=always_off, in front of an
untraced backend that records the traceparent of each request): no span,
yet a request without a traceparent reaches the backend with a new one and
one with a sampled traceparent with it rewritten in place (same trace, the
proxy's CLIENT span id), both with the sampled flag 00; the RED metrics
count both exchanges on each side of the proxy."""

import http.server
import os
import re
import shutil
import subprocess
import signal
import socket
import tempfile
import threading
import time

from harness import Receiver, check, check_equal, free_port, main, run_traced
from netutil import KIND_CLIENT, KIND_SERVER, Background, spans_where

PYTHON = '/usr/bin/python3'
BODY = 'hello through a proxy\n'
HOOKS = {'OTLPAUTO_HOOKS': 'http'}


def nginx(workdir, port, backend):
    conf = os.path.join(workdir, 'nginx.conf')
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(f'''daemon off;
master_process off;
user root;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {workdir}/access.log;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://127.0.0.1:{backend}; proxy_http_version 1.1; }} }}
}}
''')
    return ['/usr/sbin/nginx', '-c', conf, '-p', workdir, '-e', f'{workdir}/error.log'], \
        signal.SIGQUIT


def apache2(workdir, port, backend):
    modules = '/usr/lib/apache2/modules'
    conf = os.path.join(workdir, 'apache2.conf')
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(f'''ServerRoot {workdir}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {workdir}/apache2.pid
ErrorLog {workdir}/error.log
DefaultRuntimeDir {workdir}
Mutex file:{workdir}
User nobody
Group nogroup
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_http_module {modules}/mod_proxy_http.so
ProxyPass / http://127.0.0.1:{backend}/
''')
    # -X: one process, in the foreground; SIGTERM stops it
    return ['/usr/sbin/apache2', '-X', '-f', conf, '-d', workdir], signal.SIGTERM


def lighttpd(workdir, port, backend):
    conf = os.path.join(workdir, 'lighttpd.conf')
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(f'''server.document-root = "{workdir}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{workdir}/error.log"
server.modules = ("mod_proxy")
proxy.server = ("" => (("host" => "127.0.0.1", "port" => {backend})))
''')
    return ['/usr/sbin/lighttpd', '-D', '-f', conf], signal.SIGTERM


def haproxy(workdir, port, backend):
    conf = os.path.join(workdir, 'haproxy.cfg')
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(f'''global
  maxconn 64
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend front
  bind 127.0.0.1:{port}
  default_backend back
backend back
  server backend 127.0.0.1:{backend}
''')
    # -db: in the foreground; SIGUSR1 stops it once its connections end
    return ['/usr/sbin/haproxy', '-db', '-f', conf], signal.SIGUSR1


PROXIES = [('nginx', nginx), ('apache2', apache2), ('lighttpd', lighttpd),
           ('haproxy', haproxy)]


def wait_listening(port, server, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end and server.process.poll() is None:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def through(name, configure):
    workdir = tempfile.mkdtemp(prefix=f'otlpauto-{name}-')
    os.chmod(workdir, 0o755)
    www = os.path.join(workdir, 'www')
    os.mkdir(www)
    with open(os.path.join(www, 'index.txt'), 'w', encoding='utf-8') as f:
        f.write(BODY)
    port, backend_port = free_port(), free_port()
    while backend_port == port:  # free_port gives a port back once it is closed
        backend_port = free_port()
    argv, stop_signal = configure(workdir, port, backend_port)
    if not os.access(argv[0], os.X_OK):
        check(False, f'{name}: {argv[0]} is installed (scripts/setup installs it)')
        return
    url = f'http://127.0.0.1:{port}/index.txt'
    curls = []
    try:
        with Receiver() as receiver:
            # HTTP/1.1: a proxy may keep its upstream connection for the next request
            backend = Background([PYTHON, '-m', 'http.server', '-p', 'HTTP/1.1', backend_port,
                                  '--bind', '127.0.0.1'], receiver, timeout=60, env=HOOKS,
                                 cwd=www, stop_signal=signal.SIGINT)
            with backend:
                backend.wait_for(r'(Serving HTTP)')
                proxy = Background(argv, receiver, timeout=60, env=HOOKS,
                                   stop_signal=stop_signal)
                with proxy:
                    listening = wait_listening(port, proxy) and proxy.process.poll() is None
                    check(listening, f'{name}: listens', proxy.stderr)
                    # one request, then two on one connection
                    for urls in ([url], [url, url]) if listening else ():
                        curls.append(run_traced(['curl', '-sS', '--max-time', '20'] + urls,
                                                receiver, env=HOOKS, timeout=30))
                # each server sends its spans as it exits
            if not listening:
                return
            spans = receiver.wait_for_spans(12, timeout=10)
            spans = receiver.wait_for_spans(13, timeout=0.5)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    check([(c.returncode, c.stdout) for c in curls] == [(0, BODY), (0, BODY * 2)],
          f'{name}: curl gets the file', [c.stdout + c.stderr for c in curls])
    shape(name, spans, port, backend_port)


def shape(name, spans, port, backend_port):
    """Each request's spans: curl CLIENT -> proxy SERVER -> proxy CLIENT ->
    backend SERVER, one trace, from three processes."""
    check(len(spans) == 12, f'{name}: four spans per request',
          sorted((s['kind'], s['name'], s['parent_span_id']) for s in spans))
    clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
    fronts = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'server.port': port})
    backends = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'server.port': backend_port})
    check_equal((len(clients), len(fronts), len(backends)), (6, 3, 3),
                f'{name}: per request two CLIENT spans, a SERVER span in the proxy and one '
                'in the backend')
    by_id = {s['span_id']: s for s in spans}
    chains = []
    for back in backends:
        proxy = by_id.get(back['parent_span_id'])
        front = proxy and by_id.get(proxy['parent_span_id'])
        curl = front and by_id.get(front['parent_span_id'])
        chains.append((curl, front, proxy, back))
        check(proxy in clients and front in fronts and curl in clients and
              curl['parent_span_id'] == '',
              f"{name}: the backend's SERVER span is a child of the proxy's CLIENT span, "
              "its parent the proxy's SERVER span, a child of curl's CLIENT span",
              [(s['kind'], s['span_id'], s['parent_span_id']) for s in spans])
    whole = [c for c in chains if all(c)]
    check_equal(len({c[2]['span_id'] for c in whole}), 3, f'{name}: a chain per request')
    check(all(len({s['trace_id'] for s in c}) == 1 for c in whole),
          f'{name}: each request one trace')
    check(all(len({s['resource'].get('process.pid') for s in c}) == 3 for c in whole),
          f'{name}: from curl, the proxy and the backend')
    # the first curl made one request, the second two
    curl_pids = [c[0]['resource'].get('process.pid') for c in whole]
    first = [c for c in whole if curl_pids.count(c[0]['resource'].get('process.pid')) == 1]
    if len(first) == 1:
        trace = first[0][0]['trace_id']
        check_equal(sum(s['trace_id'] == trace for s in spans), 4,
                    f"{name}: the single request's trace has its four spans only")
    else:
        check(False, f'{name}: one chain from the first curl', len(first))


class RecordingBackend(http.server.BaseHTTPRequestHandler):
    """Answers 200, keeping each request's traceparent header (or None)."""
    protocol_version = 'HTTP/1.1'
    seen = []

    def do_GET(self):
        RecordingBackend.seen.append(self.headers.get('traceparent'))
        self.send_response(200)
        self.send_header('Content-Length', str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY.encode())

    def log_message(self, format, *args):
        pass


SENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
SENT_PARENT = '00f067aa0ba902b7'


def unsampled_proxy():
    workdir = tempfile.mkdtemp(prefix='otlpauto-unsampled-')
    os.chmod(workdir, 0o755)
    RecordingBackend.seen = []
    backend = http.server.ThreadingHTTPServer(('127.0.0.1', 0), RecordingBackend)
    serving = threading.Thread(target=backend.serve_forever, daemon=True)
    serving.start()
    port = free_port()
    argv, stop_signal = nginx(workdir, port, backend.server_address[1])
    url = f'http://127.0.0.1:{port}/'
    sent = f'00-{SENT_TRACE}-{SENT_PARENT}-01'
    try:
        with Receiver() as receiver:
            proxy = Background(argv, receiver, timeout=60, stop_signal=stop_signal,
                               env={**HOOKS, 'OTEL_TRACES_SAMPLER': 'always_off'})
            with proxy:
                listening = wait_listening(port, proxy) and proxy.process.poll() is None
                check(listening, 'unsampled: nginx listens', proxy.stderr)
                answers = [subprocess.run(['curl', '-sS', '--max-time', '20', url] + extra,
                                          capture_output=True, text=True, timeout=30).stdout
                           for extra in ([], ['-H', f'traceparent: {sent}'])] if listening else []
            if not listening:
                return
            receiver.wait_for_metric_requests(1, timeout=10)
            spans = receiver.spans
            # cumulative: a series' latest point counts all its exchanges
            latest = {}
            for request in receiver.metric_requests:
                for point in request.spans:
                    if point['kind'] != 'histogram':
                        continue
                    key = (point['name'], tuple(sorted(point['attributes'].items())))
                    if key not in latest or latest[key]['time'] <= point['time']:
                        latest[key] = point
            counts = {}
            for (name, _), point in latest.items():
                counts[name] = counts.get(name, 0) + point['count']
    finally:
        backend.shutdown()
        backend.server_close()
        shutil.rmtree(workdir, ignore_errors=True)
    check_equal(answers, [BODY, BODY], 'unsampled: curl gets the answers')
    check_equal(len(spans), 0, 'unsampled: always_off sends no span')
    seen = RecordingBackend.seen
    form = re.compile(r'^00-([0-9a-f]{32})-([0-9a-f]{16})-00$')
    matches = [form.match(tp or '') for tp in seen]
    check(len(seen) == 2 and all(matches), 'unsampled: each request reaches the backend with '
          'a traceparent whose sampled flag is 00', seen)
    if len(seen) == 2 and all(matches):
        fresh, passed = matches
        check(fresh.group(1) != SENT_TRACE and int(fresh.group(1), 16) and
              int(fresh.group(2), 16), 'unsampled: a request without one gets a new context',
              seen[0])
        check(passed.group(1) == SENT_TRACE and passed.group(2) not in (SENT_PARENT, '0' * 16),
              "unsampled: a forwarded one is rewritten to the proxy's CLIENT span, same trace",
              seen[1])
    check_equal((counts.get('http.server.request.duration'),
                 counts.get('http.client.request.duration')), (2, 2),
                'unsampled: the metrics count both exchanges on each side')


def test():
    for name, configure in PROXIES:
        through(name, configure)
    unsampled_proxy()


if __name__ == '__main__':
    main(test)
