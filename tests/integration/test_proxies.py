"""One trace through each of four real reverse proxies (Debian's nginx,
apache2 with mod_proxy, lighttpd with mod_proxy, haproxy), each started
on a free loopback port with a temporary configuration, in front of a
`python3 -m http.server` backend; curl, the proxy and the backend all run
under the shim (HTTP family only) and export to one receiver. The proxy
passes on the traceparent curl's request got, which the shim rewrites to
name the proxy's CLIENT span, so the shape is exactly
curl CLIENT -> proxy SERVER -> proxy CLIENT -> backend SERVER, one trace,
four spans from three processes."""

import os
import shutil
import signal
import socket
import tempfile
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


def wait_listening(port, server, timeout=20):
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
    try:
        with Receiver() as receiver:
            backend = Background([PYTHON, '-m', 'http.server', backend_port, '--bind',
                                  '127.0.0.1'], receiver, timeout=60, env=HOOKS, cwd=www,
                                 stop_signal=signal.SIGINT)
            with backend:
                backend.wait_for(r'(Serving HTTP)')
                proxy = Background(argv, receiver, timeout=60, env=HOOKS,
                                   stop_signal=stop_signal)
                with proxy:
                    listening = wait_listening(port, proxy) and proxy.process.poll() is None
                    check(listening, f'{name}: listens', proxy.stderr)
                    if listening:
                        curl = run_traced(['curl', '-sS', '--max-time', '20',
                                           f'http://127.0.0.1:{port}/index.txt'],
                                          receiver, env=HOOKS, timeout=30)
                # each server sends its spans as it exits
            if not listening:
                return
            spans = receiver.wait_for_spans(4, timeout=10)
            spans = receiver.wait_for_spans(5, timeout=0.5)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    check(curl.returncode == 0 and curl.stdout == BODY, f'{name}: curl gets the file',
          curl.stdout + curl.stderr)
    shape(name, spans, port, backend_port)


def shape(name, spans, port, backend_port):
    check(len(spans) == 4, f'{name}: four spans',
          sorted((s['kind'], s['name'], s['parent_span_id']) for s in spans))
    clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
    fronts = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'server.port': port})
    backends = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'server.port': backend_port})
    check_equal((len(clients), len(fronts), len(backends)), (2, 1, 1),
                f'{name}: two CLIENT spans, a SERVER span in the proxy and the backend')
    if (len(clients), len(fronts), len(backends)) != (2, 1, 1):
        return
    front, back = fronts[0], backends[0]
    curl = [c for c in clients if c['parent_span_id'] == '']
    proxy = [c for c in clients if c['parent_span_id'] == front['span_id']]
    check(len(curl) == 1 and front['parent_span_id'] == curl[0]['span_id'],
          f"{name}: the proxy's SERVER span is a child of curl's CLIENT span",
          [(c['span_id'], c['parent_span_id']) for c in clients] + [front['parent_span_id']])
    check(len(proxy) == 1 and back['parent_span_id'] == proxy[0]['span_id'],
          f"{name}: the backend's SERVER span is a child of the proxy's CLIENT span",
          (back['parent_span_id'], [(c['span_id'], c['parent_span_id']) for c in clients]))
    check_equal(len({s['trace_id'] for s in spans}), 1, f'{name}: one trace')
    pids = {s['resource'].get('process.pid') for s in (curl + [front] + proxy + [back])}
    check_equal(len(pids), 3, f'{name}: from curl, the proxy and the backend')


def test():
    for name, configure in PROXIES:
        through(name, configure)


if __name__ == '__main__':
    main(test)
