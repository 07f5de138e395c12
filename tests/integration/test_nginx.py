"""nginx (master and 2 workers, sendfile on) under the shim: 100 keep-alive
requests and one 404 that carries a traceparent give exactly 101 SERVER
spans with the right status codes, sent when nginx quits gracefully. Then
nginx as a reverse proxy in front of tests/programs/http_server: its
upstream requests get a traceparent naming its CLIENT span, also the one
that passes on the caller's own (rewritten in place: the caller's trace,
nginx's CLIENT span). With the
process family on, the master's process span is a root, each worker's (a
forked child) its child, and the SERVER spans still start their own
traces."""

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import (Receiver, assert_tree_whole, check, check_equal, check_holds, free_port,
                     main, process_spans, program, skip)
from netutil import (KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, STATUS_ERROR, Background, attr,
                     spans_where)

NGINX = shutil.which('nginx') or '/usr/sbin/nginx'
REMOTE_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
REMOTE_SPAN = '00f067aa0ba902b7'
CONFIG = '''daemon off;
master_process on;
worker_processes 2;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  sendfile on;
  keepalive_requests 1000;
  server {{ listen 127.0.0.1:{port}; root {dir}/www; }}
}}
'''


PROXY_SERVER = '''  server {{ listen 127.0.0.1:{port}; location / {{
    proxy_pass http://127.0.0.1:{backend}; proxy_http_version 1.1; }} }}
}}
'''


def wait_listening(port, server, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end and server.process.poll() is None:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def start_nginx(workdir, port, receiver, backend=None, hooks='sockets,dns,http'):
    os.makedirs(os.path.join(workdir, 'www'), exist_ok=True)
    config = CONFIG.format(dir=workdir, port=port)
    if backend:
        # the last server block and the http block's brace replaced
        config = config[:config.rindex('  server {')] + PROXY_SERVER.format(
            port=port, backend=backend)
    conf = os.path.join(workdir, 'nginx.conf')
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(config)
    base = [NGINX, '-c', conf, '-p', workdir, '-e', os.path.join(workdir, 'error.log')]
    server = Background(base, receiver, timeout=120, env={'OTLPAUTO_HOOKS': hooks})
    check(wait_listening(port, server), 'nginx listens', server.stderr)
    return base, server


def reverse_proxy():
    workdir = tempfile.mkdtemp(prefix='otlpauto-nginx-proxy-')
    port = free_port()
    env = {'OTLPAUTO_HOOKS': 'sockets,dns,http', 'OTLPAUTO_FUNCTION_THRESHOLD': '100s'}
    try:
        with Receiver() as receiver:
            with Background([program('http_server'), 'normal', 3], receiver, env=env) as backend:
                backend_port = int(backend.wait_for(r'port (\d+)'))
                base, server = start_nginx(workdir, port, receiver, backend=backend_port)
                with server:
                    statuses = []
                    for extra in ({}, {'traceparent': f'00-{REMOTE_TRACE}-{REMOTE_SPAN}-01'},
                                  {}):
                        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
                        conn.request('GET', '/via-proxy', headers=extra)
                        response = conn.getresponse()
                        response.read()
                        statuses.append(response.status)
                        conn.close()
                    subprocess.run(base + ['-s', 'quit'], capture_output=True, timeout=30)
                    server.wait(60)
                backend.wait(30)
            spans = receiver.spans
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    check_equal(statuses, [200, 200, 200], 'proxy: answers')
    servers = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'server.port': port})
    clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
    backends = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'server.port': backend_port})
    connects = spans_where(spans, KIND_INTERNAL, 'otlpauto.sockets')
    check_equal((len(servers), len(clients), len(backends), len(connects)), (3, 3, 3, 3),
                'proxy: nginx SERVER, connect and CLIENT spans, backend SERVER spans')
    check_holds('proxy: trees whole, ids unique', assert_tree_whole, spans, REMOTE_SPAN)
    check(all(s['span_id'] != REMOTE_SPAN for s in spans), "proxy: the caller's id not reused")
    by_id = {s['span_id']: s for s in spans}
    for client in clients:
        front = by_id.get(client['parent_span_id'])
        check(front in servers, 'proxy: CLIENT inside nginx\'s SERVER span')
    for connect in connects:
        check(by_id.get(connect['parent_span_id']) in servers, 'proxy: connect inside SERVER')
    client_ids = {c['span_id'] for c in clients}
    fresh = [b for b in backends if b['trace_id'] != REMOTE_TRACE]
    passed_on = [b for b in backends if b['trace_id'] == REMOTE_TRACE]
    check(len(fresh) == 2 and all(b['parent_span_id'] in client_ids for b in fresh),
          'proxy: backend SERVER children of nginx CLIENT spans')
    check(len(passed_on) == 1 and passed_on[0]['parent_span_id'] in client_ids,
          "proxy: the caller's traceparent passed on names nginx's CLIENT span")
    check(len([c for c in clients if c['trace_id'] == REMOTE_TRACE]) == 1,
          "proxy: that CLIENT span continues the caller's trace")


def process_tree():
    workdir = tempfile.mkdtemp(prefix='otlpauto-nginx-tree-')
    os.mkdir(os.path.join(workdir, 'www'))
    with open(os.path.join(workdir, 'www', 'index.html'), 'w', encoding='utf-8') as f:
        f.write('hello\n')
    port = free_port()
    statuses = []
    try:
        with Receiver() as receiver:
            base, server = start_nginx(workdir, port, receiver, hooks='default')
            with server:
                for _ in range(3):
                    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
                    conn.request('GET', '/index.html')
                    response = conn.getresponse()
                    response.read()
                    statuses.append(response.status)
                    conn.close()
                subprocess.run(base + ['-s', 'quit'], capture_output=True, timeout=30)
                check_equal(server.wait(60), 0, 'process tree: nginx exits 0 after quit')
            spans = receiver.wait_for_spans(6, timeout=10)
            time.sleep(0.5)
            spans = receiver.spans
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    check_equal(statuses, [200] * 3, 'process tree: nginx answered')
    check_equal(len(spans), 6, 'process tree: 3 SERVER spans, 3 process spans')
    processes = process_spans(spans)
    masters = [s for s in processes if s['parent_span_id'] == '']
    check_equal(len(masters), 1, 'process tree: the master\'s process span is the root')
    if len(processes) != 3 or len(masters) != 1:
        return
    master = masters[0]
    workers = [s for s in processes if s is not master]
    check(all(w['parent_span_id'] == master['span_id'] and w['trace_id'] == master['trace_id']
              and w['attributes']['process.parent_pid'] == master['attributes']['process.pid']
              and w['attributes'].get('process.exit.code') == 0 for w in workers),
          'process tree: each worker\'s process span a child of the master\'s, exit code 0')
    check_equal({s['name'] for s in processes}, {'nginx'}, 'process tree: named nginx')
    servers = spans_where(spans, KIND_SERVER, 'otlpauto.http')
    check(len(servers) == 3 and all(s['parent_span_id'] == '' and s['trace_id'] !=
                                     master['trace_id'] for s in servers),
          'process tree: SERVER spans start their own traces',
          [(s['trace_id'], s['parent_span_id']) for s in servers])
    worker_pids = {w['attributes']['process.pid'] for w in workers}
    check({s['resource']['process.pid'] for s in servers} <= worker_pids,
          'process tree: the workers serve')


def test():
    if not os.access(NGINX, os.X_OK):
        skip('nginx is not installed')
    keep_alive_and_404()
    reverse_proxy()
    process_tree()


def keep_alive_and_404():
    workdir = tempfile.mkdtemp(prefix='otlpauto-nginx-')
    os.mkdir(os.path.join(workdir, 'www'))
    with open(os.path.join(workdir, 'www', 'index.html'), 'w', encoding='utf-8') as f:
        f.write('<h1>hello</h1>\n' * 40)
    port = free_port()
    statuses = []
    try:
        with Receiver() as receiver:
            base, server = start_nginx(workdir, port, receiver)
            with server:
                conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
                for _ in range(100):
                    conn.request('GET', '/index.html', headers={'User-Agent': 'otlpauto-test'})
                    response = conn.getresponse()
                    response.read()
                    statuses.append(response.status)
                conn.request('GET', '/missing', headers={
                    'traceparent': f'00-{REMOTE_TRACE}-{REMOTE_SPAN}-01'})
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
                conn.close()
                quit_ = subprocess.run(base + ['-s', 'quit'], capture_output=True, timeout=30)
                check_equal(quit_.returncode, 0, 'nginx -s quit')
                check_equal(server.wait(60), 0, 'nginx exits 0 after quit')
            spans = receiver.wait_for_spans(101, timeout=10)
            time.sleep(0.5)
            spans = receiver.spans
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    check_equal(statuses, [200] * 100 + [404], 'nginx answered')
    check_equal(len(spans), 101, 'exactly 101 spans')
    servers = spans_where(spans, KIND_SERVER, 'otlpauto.http')
    check_equal(len(servers), 101, 'exactly 101 SERVER spans')
    ok = spans_where(servers, attrs={'url.path': '/index.html', 'http.response.status_code': 200})
    check_equal(len(ok), 100, '100 SERVER spans for /index.html with 200')
    missing = spans_where(servers, attrs={'url.path': '/missing'})
    check(len(missing) == 1 and attr(missing[0], 'http.response.status_code') == 404,
          'SERVER span for /missing with 404')
    check(all(s['status_code'] != STATUS_ERROR for s in servers), 'no 5xx: no error status')
    if missing:
        span = missing[0]
        check_equal((span['trace_id'], span['parent_span_id']), (REMOTE_TRACE, REMOTE_SPAN),
                    '404 continues the incoming trace')
        check(span['flags'] & 0x300 == 0x300, 'remote parent flagged')
    check(all(attr(s, 'server.port') == port and attr(s, 'client.address') == '127.0.0.1'
              and attr(s, 'network.protocol.version') == '1.1' for s in servers),
          'server.port, client.address, protocol version')
    check(all(attr(s, 'user_agent.original') == 'otlpauto-test' for s in ok), 'user agent')
    check_equal(len({s['trace_id'] for s in ok}), 100, 'each request is its own trace')


if __name__ == '__main__':
    main(test)
