"""HTTPS through OpenSSL and GnuTLS (hooks/tls.c), with real programs on both ends and a
self-signed certificate made here with `openssl req`:

- nginx with `ssl` (TLS 1.3 only) and curl -k: three requests on one
  connection (a page, 1 MB, a 404) give one connect and three CLIENT spans
  in curl and three SERVER spans in nginx, each a child of its CLIENT span
  (the traceparent went inside the TLS plaintext); Python's http.client
  with ssl, and wget (GnuTLS), do the same for two requests;
- curl and Python without the certificate fail the handshake: their
  connect span, a `tls handshake` span with status error and the
  certificate's verification error as error.type, and nginx's own
  `tls handshake` span (the client's alert); no HTTP span on either side;
  wget (GnuTLS) against a plaintext HTTP server: a GnuTLS error name; an
  OpenSSL client that sent a name (SNI) has it as server.address;
- a request without Host (HTTP/1.0) from a client that sent the name
  localhost (SNI): server.address localhost on its CLIENT and SERVER span;
- `openssl s_server` (TLS 1.2, answering what the test writes to its
  stdin) and curl: one CLIENT and one SERVER span, one trace;
- `openssl s_server -www` (an SSL BIO under a buffering BIO, answering
  after the request's first line) and curl: one CLIENT and one SERVER
  span, one trace; a Python client whose handshake runs inside its first
  write (do_handshake_on_connect=False) without the certificate: a
  `tls handshake` span, an error, on both ends;
- `openssl s_server -www` (TLS 1.3) requiring a client certificate from a
  CA the client's is not from: curl and Python read the server's alert
  after their handshake ended, their CLIENT span an error with the alert
  as error.type;
  wget (GnuTLS, sending no certificate) learns it in its first write: a
  `tls handshake` span with the alert's name; s_server's own failed
  handshake on each;
- the clients export over HTTPS (an untraced nginx in front of the
  receiver): the exporter's own TLS requests make no spans;
- nginx proxying to its own HTTPS server: the upstream request's
  traceparent names nginx's CLIENT span, the caller's own rewritten;
- tests/programs/gnutls_peer: a GnuTLS client and server moving their
  plaintext with gnutls_record_send2 and gnutls_record_recv_seq only, or
  with a request head in three gnutls_record_send calls, or with
  gnutls_record_send_range and gnutls_record_recv_packet and a response
  body sent with gnutls_record_send_file: connect, CLIENT and SERVER
  spans, the traceparent line naming the CLIENT span;
- tests/programs/tls_peer: a request whose writes OpenSSL refuses with
  SSL_ERROR_WANT_WRITE, repeated, or takes in part (partial writes), or
  whose head ends in the CR of a write, or a small one the hooks copy with
  its header lines into one record, refused once and repeated from
  elsewhere on the stack: the server gets every byte, with the traceparent
  line naming the CLIENT span; and a request the server cuts short without
  an answer while the client's non-blocking reads would block: the CLIENT
  span is an error with OpenSSL's reason."""

import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from harness import (Receiver, assert_tree_whole, builddir, check, check_equal, check_holds,
                     free_port, main, program, run_traced, skip)
from netutil import KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, STATUS_ERROR, Background, attr, \
    spans_where, traced_env

NGINX = shutil.which('nginx') or '/usr/sbin/nginx'
OPENSSL = shutil.which('openssl') or '/usr/bin/openssl'
CURL = shutil.which('curl') or '/usr/bin/curl'
WGET = shutil.which('wget')
HOOKS = 'sockets,http,tls'
BIG = 1 << 20
NGINX_CONFIG = '''daemon off;
master_process off;
user root;
pid {dir}/nginx-{name}.pid;
error_log {dir}/error-{name}.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body-{name};
  proxy_temp_path {dir}/proxy-{name};
  fastcgi_temp_path {dir}/fastcgi-{name};
  uwsgi_temp_path {dir}/uwsgi-{name};
  scgi_temp_path {dir}/scgi-{name};
  keepalive_requests 1000;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    ssl_protocols TLSv1.3;
    root {dir}/www;
{extra}  }}
{more}}}
'''
# The export proxy: OTLP over HTTPS to the receiver's plain HTTP.
EXPORT_PROXY = '    location /v1/ {{ proxy_pass http://127.0.0.1:{receiver}; }}\n'
# A plaintext front whose upstream is the HTTPS server of the same nginx.
HTTPS_UPSTREAM = '''  server {{ listen 127.0.0.1:{front}; location / {{
    proxy_pass https://127.0.0.1:{port}; proxy_http_version 1.1;
    proxy_ssl_protocols TLSv1.3; }} }}
'''
REMOTE_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
REMOTE_SPAN = '00f067aa0ba902b7'

PY_CLIENT = '''
import http.client, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
conn = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[1]), context=context, timeout=10)
for path in sys.argv[3:]:
    conn.request('GET', path)
    response = conn.getresponse()
    print(response.status, len(response.read()))
conn.close()
'''
# The default context: the self-signed certificate is refused.
PY_REFUSED = '''
import http.client, sys
conn = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
try:
    conn.request('GET', '/index.html')
except OSError as error:
    print(type(error).__name__)
'''


def make_certificate(workdir):
    result = subprocess.run(
        [OPENSSL, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
         '-keyout', os.path.join(workdir, 'key.pem'), '-out', os.path.join(workdir, 'cert.pem'),
         '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'],
        capture_output=True, timeout=60, check=False)
    check_equal(result.returncode, 0, 'openssl req makes a self-signed certificate')


def listening(port, process, timeout=60):
    """Whether a socket listens on 127.0.0.1:port, read from /proc/net/tcp
    (a connection would be the only one s_server -naccept 1 takes)."""
    local = f'0100007F:{port:04X}'
    end = time.monotonic() + timeout
    while time.monotonic() < end and process.poll() is None:
        with open('/proc/net/tcp', encoding='ascii') as table:
            if any(line.split()[1] == local and line.split()[3] == '0A'
                   for line in list(table)[1:]):
                return True
        time.sleep(0.1)
    return False


def start_nginx(workdir, name, port, receiver, extra='', more='', traced=True):
    conf = os.path.join(workdir, f'nginx-{name}.conf')
    with open(conf, 'w', encoding='utf-8') as f:
        f.write(NGINX_CONFIG.format(dir=workdir, name=name, port=port, extra=extra, more=more))
    argv = [NGINX, '-c', conf, '-p', workdir, '-e', os.path.join(workdir, f'error-{name}.log')]
    server = Background(argv, receiver, env={'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': name},
                        preload=traced, timeout=120, stop_signal=signal.SIGQUIT)
    check(listening(port, server.process), f'{name} listens', server.stderr)
    return server


def https_export(proxy_port, workdir):
    return {'OTLPAUTO_HOOKS': HOOKS,
            'OTEL_EXPORTER_OTLP_ENDPOINT': f'https://127.0.0.1:{proxy_port}',
            'OTEL_EXPORTER_OTLP_CERTIFICATE': os.path.join(workdir, 'cert.pem')}


def by_service(spans, name):
    return [s for s in spans if s['resource'].get('service.name') == name]


def check_pairs(what, clients, servers, version):
    """Each SERVER span is the child of the CLIENT span of its request."""
    by_id = {c['span_id']: c for c in clients}
    parents = [by_id.get(s['parent_span_id']) for s in servers]
    check(all(p is not None and p['trace_id'] == s['trace_id']
              and attr(p, 'url.full', '').endswith(attr(s, 'url.path'))
              for p, s in zip(parents, servers)),
          f'{what}: each SERVER span a child of its CLIENT span, one trace',
          [(s['trace_id'], s['parent_span_id']) for s in servers])
    check(all(attr(s, 'url.scheme') == 'https' for s in servers), f'{what}: url.scheme https')
    check(all(attr(s, 'tls.protocol.version') == version for s in clients + servers),
          f'{what}: tls.protocol.version {version}')
    check(servers and all(p is not None and attr(p, 'tls.cipher', '').startswith('TLS_') and
                          attr(p, 'tls.cipher') == attr(s, 'tls.cipher')
                          for p, s in zip(parents, servers)),
          f'{what}: tls.cipher, the same on both ends',
          [(attr(p, 'tls.cipher') if p else None, attr(s, 'tls.cipher')) for p, s in
           zip(parents, servers)])


def nginx_and_clients(workdir):
    port, proxy_port = free_port(), free_port()
    pages = ['/index.html', '/big.bin', '/missing']
    with Receiver() as receiver:
        proxy = start_nginx(workdir, 'export-proxy', proxy_port, None,
                            extra=EXPORT_PROXY.format(receiver=receiver.port), traced=False)
        with proxy:
            server = start_nginx(workdir, 'nginx', port, receiver)
            with server:
                urls = [f'https://127.0.0.1:{port}{p}' for p in pages]
                curl = run_traced(
                    [CURL, '-sk', '-w', '%{http_code} %{size_download} %{num_connects}\\n']
                    + [a for u in urls for a in (u, '-o', '/dev/null')], receiver,
                    env=https_export(proxy_port, workdir) | {'OTEL_SERVICE_NAME': 'curl'},
                    timeout=60)
                python = run_traced(
                    [sys.executable, '-c', PY_CLIENT, port, os.path.join(workdir, 'cert.pem'),
                     '/index.html', '/big.bin'], receiver,
                    env=https_export(proxy_port, workdir) | {'OTEL_SERVICE_NAME': 'python'},
                    timeout=60)
                wget = WGET and run_traced(
                    [WGET, '-q', '--no-check-certificate', '-O', '/dev/null',
                     f'https://127.0.0.1:{port}/index.html', f'https://127.0.0.1:{port}/big.bin'],
                    receiver, env=https_export(proxy_port, workdir) | {'OTEL_SERVICE_NAME': 'wget'},
                    timeout=60)
                refused = run_traced(
                    [CURL, '-s', '-4', f'https://localhost:{port}/index.html', '-o',
                     '/dev/null'],
                    receiver, env={'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': 'refused'},
                    timeout=60)
                py_refused = run_traced(
                    [sys.executable, '-c', PY_REFUSED, port], receiver,
                    env={'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': 'py-refused'},
                    timeout=60)
                # a TLS client against a plaintext HTTP server (the receiver)
                wget_refused = WGET and run_traced(
                    [WGET, '-q', '--tries=1', '-O', '/dev/null',
                     f'https://127.0.0.1:{receiver.port}/'], receiver,
                    env={'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': 'wget-refused'},
                    timeout=60)
                server.stop()
            receiver.wait_for_spans(25 if WGET else 18, timeout=10)
            time.sleep(0.5)
            spans = receiver.spans
            check_equal(server.returncode, 0, 'nginx exits 0 after SIGQUIT')
    page = os.path.getsize(os.path.join(workdir, 'www', 'index.html'))
    answers = [line.split() for line in curl.stdout.splitlines()]
    check_equal([(a[0], a[2]) for a in answers], [('200', '1'), ('200', '0'), ('404', '0')],
                'curl: answers, all on one connection')
    check_equal([a[1] for a in answers[:2]], [str(page), str(BIG)], 'curl: the page and 1 MB')
    check_equal(python.stdout.splitlines(), [f'200 {page}', f'200 {BIG}'], 'python: answers')
    check_equal(refused.returncode, 60, 'curl without -k: certificate refused')
    check_equal(py_refused.stdout.strip(), 'SSLCertVerificationError',
                'python without the certificate: refused')
    if not WGET:
        print('skip: no wget: GnuTLS untested')
    else:
        check_equal(wget.returncode, 0, 'wget: answers')
        check(wget_refused.returncode != 0, 'wget against plaintext HTTP: fails')
    expected = 25 if WGET else 18
    check(len(spans) == expected, f'exactly {expected} spans',
          [(s['name'], s['resource'].get('service.name')) for s in spans])
    check_holds('trees whole, ids unique', assert_tree_whole, spans)

    servers = spans_where(by_service(spans, 'nginx'), KIND_SERVER, 'otlpauto.http')
    clients_paths = pages + ['/index.html', '/big.bin'] * (2 if WGET else 1)
    check_equal(len(by_service(spans, 'nginx')), len(clients_paths) + 2,
                'nginx: SERVER spans and two failed handshakes')
    check_equal([attr(s, 'url.path') for s in servers], clients_paths,
                'nginx: one SERVER span per request')
    check_equal([attr(s, 'http.response.status_code') for s in servers],
                [200, 200, 404] + [200] * (len(clients_paths) - 3), 'nginx: status codes')
    check(all(attr(s, 'server.port') == port and attr(s, 'client.address') == '127.0.0.1'
              for s in servers), 'nginx: server.port and client.address')

    for name, paths, statuses in (('curl', pages, [200, 200, 404]),
                                  ('python', pages[:2], [200, 200]),
                                  ('wget', pages[:2] if WGET else [], [200, 200])):
        if not paths:
            continue
        mine = by_service(spans, name)
        clients = spans_where(mine, KIND_CLIENT, 'otlpauto.http')
        connects = spans_where(mine, KIND_INTERNAL, 'otlpauto.sockets')
        check_equal((len(mine), len(connects), len(clients)), (1 + len(paths), 1, len(paths)),
                    f'{name}: one connect span and a CLIENT span per request, nothing '
                    'from the exporter\'s HTTPS')
        check_equal([attr(c, 'url.full') for c in clients],
                    [f'https://127.0.0.1:{port}{p}' for p in paths], f'{name}: url.full')
        check_equal([attr(c, 'http.response.status_code') for c in clients], statuses,
                    f'{name}: status codes')
        check_equal([c['status_code'] == STATUS_ERROR for c in clients],
                    [s >= 400 for s in statuses], f'{name}: 404 is an error')
        mine_servers = [s for s in servers
                        if s['parent_span_id'] in {c['span_id'] for c in clients}]
        check_pairs(name, clients, mine_servers, '1.3')
        check_equal(len(mine_servers), len(paths), f'{name}: its requests\' SERVER spans')

    check_handshake_failures(spans, port)


def check_handshake_failures(spans, port):
    """A failed handshake: its span, an error, after the connect span."""
    def failures(service):
        return [s for s in by_service(spans, service) if s['name'].startswith('tls handshake')]

    for name in ('refused', 'py-refused'):
        mine = by_service(spans, name)
        connects = [s for s in mine if s['name'].startswith('socket connect')]
        failed = failures(name)
        check_equal((len(mine), len(connects), len(failed)), (2, 1, 1),
                    f'{name}: a connect and a tls handshake span')
        if len(failed) == 1 and len(connects) == 1:
            span = failed[0]
            check_equal((span['name'], span['kind'], span['scope']['name'], span['status_code']),
                        (f'tls handshake 127.0.0.1:{port}', KIND_INTERNAL, 'otlpauto.sockets',
                         STATUS_ERROR), f'{name}: the handshake span, an error')
            check_equal(attr(span, 'error.type'), 'self-signed certificate',
                        f'{name}: error.type, the verification result')
            check_equal((attr(span, 'network.peer.address'), attr(span, 'network.peer.port')),
                        ('127.0.0.1', port), f'{name}: the peer')
            check(span['start'] >= connects[0]['end'],
                  f'{name}: the handshake follows the connect')
            check_equal(attr(span, 'server.address'), 'localhost' if name == 'refused' else None,
                        f'{name}: server.address, the name the client sent (SNI), if any')
    on_server = failures('nginx')
    check_equal(sorted(attr(s, 'error.type') for s in on_server), ['tlsv1 alert unknown ca'] * 2,
                'nginx: two failed handshakes, the clients\' alert as error.type')
    check(on_server and all(s['status_code'] == STATUS_ERROR and s['parent_span_id'] == '' and
              attr(s, 'network.peer.address') == '127.0.0.1' for s in on_server),
          'nginx: failed handshakes are root spans, errors, naming the client')
    if WGET:
        mine = by_service(spans, 'wget-refused')
        failed = failures('wget-refused')
        check_equal((len(mine), len(failed)), (2, 1), 'wget-refused: a connect and a tls '
                    'handshake span')
        check(failed and failed[0]['status_code'] == STATUS_ERROR and
              attr(failed[0], 'error.type', '').startswith('GNUTLS_E_'),
              'wget-refused: a GnuTLS error name as error.type',
              [attr(s, 'error.type') for s in failed])


# An HTTP/1.0 request without Host over TLS whose client sent the name
# localhost (SNI) to 127.0.0.1.
NO_HOST = '''
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
context.check_hostname = False
with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname='localhost') as tls:
        tls.sendall(b'GET /index.html HTTP/1.0\\r\\n\\r\\n')
        answer = b''
        while chunk := tls.recv(65536):
            answer += chunk
print(answer.split(b' ')[1].decode())
'''


def server_name(workdir):
    """Without a Host header, server.address is the name the client sent
    (SNI), on both ends."""
    port = free_port()
    with Receiver() as receiver:
        server = start_nginx(workdir, 'sni', port, receiver)
        with server:
            client = run_traced([sys.executable, '-c', NO_HOST, port,
                                 os.path.join(workdir, 'cert.pem')], receiver,
                                env={'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': 'python'},
                                timeout=60)
            server.stop()
        receiver.wait_for_spans(3, timeout=10)
        time.sleep(0.5)
        spans = receiver.spans
    check_equal(client.stdout.strip(), '200', 'sni: answer')
    clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
    servers = spans_where(spans, KIND_SERVER, 'otlpauto.http')
    check_equal((len(spans), len(clients), len(servers)), (3, 1, 1),
                'sni: connect, CLIENT and SERVER spans')
    check_equal([(attr(c, 'server.address'), attr(c, 'url.full')) for c in clients],
                [('localhost', f'https://localhost:{port}/index.html')],
                'sni: the CLIENT span names the server by its SNI')
    check_equal([(attr(s, 'server.address'), s['parent_span_id']) for s in servers],
                [('localhost', clients[0]['span_id'] if clients else None)],
                'sni: the SERVER span too, a child of the CLIENT span')


def reverse_proxy(workdir):
    """nginx's upstream requests over HTTPS get a traceparent naming its
    CLIENT span, also the one that passes on the caller's own (rewritten
    inside the TLS plaintext)."""
    port, front = free_port(), free_port()
    statuses = []
    with Receiver() as receiver:
        server = start_nginx(workdir, 'proxy', port, receiver,
                             more=HTTPS_UPSTREAM.format(front=front, port=port))
        with server:
            check(listening(front, server.process), 'proxy: front listens')
            for extra in ({}, {'traceparent': f'00-{REMOTE_TRACE}-{REMOTE_SPAN}-01'}):
                conn = http.client.HTTPConnection('127.0.0.1', front, timeout=10)
                conn.request('GET', '/index.html', headers=extra)
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
                conn.close()
            server.stop()
        receiver.wait_for_spans(8, timeout=10)
        time.sleep(0.5)
        spans = receiver.spans
    check_equal(statuses, [200, 200], 'proxy: answers')
    fronts = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'server.port': front})
    backs = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'server.port': port})
    clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
    connects = spans_where(spans, KIND_INTERNAL, 'otlpauto.sockets')
    check_equal((len(spans), len(fronts), len(clients), len(backs), len(connects)),
                (8, 2, 2, 2, 2), 'proxy: per request a front SERVER, a connect, a CLIENT and '
                'an upstream SERVER span')
    check_holds('proxy: trees whole', assert_tree_whole, spans, REMOTE_SPAN)
    by_id = {s['span_id']: s for s in spans}
    check(clients and all(by_id.get(c['parent_span_id']) in fronts and attr(c, 'url.full') ==
                          f'https://127.0.0.1:{port}/index.html' for c in clients),
          'proxy: CLIENT spans (https) inside the front SERVER spans')
    check(backs and all(by_id.get(b['parent_span_id']) in clients for b in backs),
          'proxy: each upstream SERVER span a child of a CLIENT span')
    check_equal(sorted((s['trace_id'] == REMOTE_TRACE, s['parent_span_id'] == REMOTE_SPAN)
                       for s in fronts + backs),
                [(False, False), (False, False), (True, False), (True, True)],
                "proxy: the caller's trace continues upstream, through nginx's CLIENT span")


class Popen:
    """A process of this test with a pipe to its stdin, killed by its pid
    at the end."""

    def __init__(self, argv, env, timeout):
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        self.timer = threading.Timer(timeout, self.kill)
        self.timer.start()

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.timer.cancel()
        self.kill()
        self.process.wait()


def openssl_server(workdir):
    """s_server prints what it reads and writes what its stdin gets: the
    test answers the request it printed."""
    port = free_port()
    with Receiver() as receiver:
        env = traced_env(receiver, {'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': 's_server',
                                    'OTLPAUTO_EXIT_TIMEOUT': '30s'})
        argv = [OPENSSL, 's_server', '-quiet', '-naccept', '1', '-tls1_2',
                '-accept', f'127.0.0.1:{port}', '-cert', os.path.join(workdir, 'cert.pem'),
                '-key', os.path.join(workdir, 'key.pem')]
        with Popen(argv, env, timeout=60) as server:
            client = {}
            check(listening(port, server.process), 's_server listens')
            thread = threading.Thread(target=lambda: client.update(curl=run_traced(
                [CURL, '-sk', '-w', '%{http_code}', f'https://127.0.0.1:{port}/hello', '-o',
                 '/dev/null'], receiver, env={'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': 'curl'},
                timeout=30)))
            thread.start()
            request = b''
            while b'\r\n\r\n' not in request:
                chunk = os.read(server.process.stdout.fileno(), 4096)
                if not chunk:
                    break
                request += chunk
            server.process.stdin.write(b'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n'
                                       b'Connection: close\r\n\r\nhello\n')
            server.process.stdin.flush()
            thread.join(40)
            check_equal(server.process.wait(30), 0, 's_server exits 0 after its connection')
        receiver.wait_for_spans(3, timeout=10)
        time.sleep(0.5)
        spans = receiver.spans
    check(request.startswith(b'GET /hello HTTP/1.1\r\n') and b'\r\ntraceparent: 00-' in request,
          's_server read the request with a traceparent', request)
    check_equal(client['curl'].stdout, '200', 'curl: answer')
    check_equal(len(spans), 3, 'exactly 3 spans: connect, CLIENT, SERVER')
    clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
    servers = spans_where(spans, KIND_SERVER, 'otlpauto.http')
    check_equal((len(clients), len(servers)), (1, 1), 's_server: one CLIENT, one SERVER span')
    check_pairs('s_server', clients, servers, '1.2')


# The handshake runs inside the first write (SSL_write_ex); the default
# context refuses the self-signed certificate.
PY_IMPLICIT = '''
import socket, ssl, sys
context = ssl.create_default_context()
with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10) as raw:
    tls = context.wrap_socket(raw, server_hostname='localhost', do_handshake_on_connect=False)
    try:
        tls.sendall(b'GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')
    except ssl.SSLError as error:
        print(type(error).__name__)
'''


def www_server(workdir, receiver, port, name, extra=()):
    env = traced_env(receiver, {'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': name,
                                'OTLPAUTO_EXIT_TIMEOUT': '30s'})
    argv = [OPENSSL, 's_server', '-www', '-quiet', '-naccept', '1', '-accept',
            f'127.0.0.1:{port}', '-cert', os.path.join(workdir, 'cert.pem'),
            '-key', os.path.join(workdir, 'key.pem'), *extra]
    return Popen(argv, env, timeout=60)


def openssl_www(workdir):
    """s_server -www reads and writes through an SSL BIO (BIO_read and
    BIO_write below its buffering BIO), with the handshake inside the first
    read."""
    port, refusing_port = free_port(), free_port()
    with Receiver() as receiver:
        with www_server(workdir, receiver, port, 'www') as server:
            check(listening(port, server.process), 's_server -www listens')
            curl = run_traced([CURL, '-sk', '-w', '%{http_code}', f'https://127.0.0.1:{port}/',
                               '-o', '/dev/null'], receiver,
                              env={'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': 'curl'},
                              timeout=30)
            check_equal(server.process.wait(30), 0, 's_server -www exits 0 after its connection')
        with www_server(workdir, receiver, refusing_port, 'www-refusing') as server:
            check(listening(refusing_port, server.process), 'the second s_server -www listens')
            python = run_traced([sys.executable, '-c', PY_IMPLICIT, refusing_port], receiver,
                                env={'OTLPAUTO_HOOKS': HOOKS, 'OTEL_SERVICE_NAME': 'python'},
                                timeout=30)
            server.process.wait(30)
        receiver.wait_for_spans(6, timeout=10)
        time.sleep(0.5)
        spans = receiver.spans
    check_equal(curl.stdout, '200', 'www: curl\'s answer')
    check_equal(python.stdout.strip(), 'SSLCertVerificationError',
                'www: python without the certificate, refused in its first write')
    check(len(spans) == 6, 'www: exactly 6 spans',
          [(s['name'], s['resource'].get('service.name')) for s in spans])
    check_holds('www: trees whole, ids unique', assert_tree_whole, spans)
    clients = spans_where(by_service(spans, 'curl'), KIND_CLIENT, 'otlpauto.http')
    servers = spans_where(by_service(spans, 'www'), KIND_SERVER, 'otlpauto.http')
    check_equal((len(by_service(spans, 'curl')), len(clients), len(by_service(spans, 'www')),
                 len(servers)), (2, 1, 1, 1),
                'www: curl\'s connect and CLIENT span, one SERVER span')
    check_pairs('www', clients, servers, '1.3')
    check_equal([(attr(s, 'url.path'), attr(s, 'http.response.status_code'),
                  attr(s, 'server.port'), s['status_code'] == STATUS_ERROR) for s in servers],
                [('/', 200, port, False)], 'www: the SERVER span\'s path, status and port')
    check_equal([(attr(c, 'url.full'), attr(c, 'http.response.status_code')) for c in clients],
                [(f'https://127.0.0.1:{port}/', 200)], 'www: the CLIENT span')

    failures = [s for s in spans if s['name'].startswith('tls handshake')]
    mine = [s for s in failures if s['resource'].get('service.name') == 'python']
    theirs = [s for s in failures if s['resource'].get('service.name') == 'www-refusing']
    check_equal((len(failures), len(mine), len(theirs), len(by_service(spans, 'python'))),
                (2, 1, 1, 2), 'www: a failed handshake span on each end, python\'s after its '
                'connect span')
    check_equal([(s['name'], attr(s, 'error.type'), attr(s, 'server.address'),
                  s['status_code'] == STATUS_ERROR) for s in mine],
                [(f'tls handshake 127.0.0.1:{refusing_port}', 'self-signed certificate',
                  'localhost', True)],
                'www: python\'s handshake, run by its first write, an error: the verification '
                'result, the name it sent')
    check_equal([(s['name'].startswith('tls handshake 127.0.0.1:'),
                  attr(s, 'network.peer.address'), attr(s, 'error.type'),
                  s['status_code'] == STATUS_ERROR, s['parent_span_id']) for s in theirs],
                [(True, '127.0.0.1', 'tlsv1 alert unknown ca', True, '')],
                'www: s_server\'s handshake, run by its first read, an error: the client\'s alert')


def make_client_certificate(workdir):
    """A client certificate and a CA that did not sign it."""
    for name, subject in (('client', '/CN=client'), ('other-ca', '/CN=other CA')):
        result = subprocess.run(
            [OPENSSL, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
             '-keyout', os.path.join(workdir, f'{name}-key.pem'),
             '-out', os.path.join(workdir, f'{name}.pem'), '-subj', subject],
            capture_output=True, timeout=60, check=False)
        check_equal(result.returncode, 0, f'openssl req makes {name}.pem')


# A client with a certificate (argv[3], its key argv[4]).
PY_CLIENT_CERT = '''
import http.client, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
context.load_cert_chain(sys.argv[3], sys.argv[4])
conn = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[1]), context=context, timeout=10)
try:
    conn.request('GET', '/')
    print(conn.getresponse().status)
except ssl.SSLError as error:
    print(error.reason)
'''


def client_certificate_refused(workdir):
    """A TLS 1.3 server that requires a client certificate signed by a CA
    the client's is not from: its verdict reaches the client after the
    client's handshake ended. curl and Python (OpenSSL) send their
    certificate, write their request and read the server's alert: the
    CLIENT span is an error with the alert as error.type. wget (GnuTLS) sends none (the server
    names a CA it has none from) and learns the alert in its first write,
    GnuTLS having read it while it waited 61 ms for a session ticket: a
    `tls handshake` span, an error, with the alert's name. The alert comes
    about 40 ms after the handshake (wget's last flight waits for a delayed
    ACK): later than the wait, under load, wget writes its request and
    reads the alert, and its CLIENT span has the alert's name instead."""
    make_client_certificate(workdir)
    refusing = ['-tls1_3', '-Verify', '1', '-verify_return_error',
                '-CAfile', os.path.join(workdir, 'other-ca.pem')]
    certificate = [os.path.join(workdir, 'client.pem'), os.path.join(workdir, 'client-key.pem')]
    clients = [('curl', [CURL, '-sk', '--cert', certificate[0], '--key', certificate[1]]),
               ('python', [sys.executable, '-c', PY_CLIENT_CERT])]
    if WGET:
        clients.append(('wget', [WGET, '-q', '--tries=1', '--no-check-certificate',
                                 '--certificate', os.path.join(workdir, 'client.pem'),
                                 '--private-key', os.path.join(workdir, 'client-key.pem'),
                                 '-O', '/dev/null']))
    else:
        print('skip: no wget: a GnuTLS client refused after its handshake untested')
    results, ports = {}, {}
    with Receiver() as receiver:
        for name, argv in clients:
            port = ports[name] = free_port()
            with www_server(workdir, receiver, port, f'{name}-refusing', refusing) as server:
                check(listening(port, server.process), f'{name}: s_server -Verify listens')
                target = ([port, os.path.join(workdir, 'cert.pem')] + certificate
                          if name == 'python' else [f'https://127.0.0.1:{port}/'])
                results[name] = run_traced(argv + target, receiver,
                                           env={'OTLPAUTO_HOOKS': HOOKS,
                                                'OTEL_SERVICE_NAME': name}, timeout=30)
                check_equal(server.process.wait(30), 0, f'{name}: s_server exits 0')
        receiver.wait_for_spans(3 * len(clients), timeout=10)
        time.sleep(0.5)
        spans = receiver.spans
        durations = [p for r in receiver.metric_requests for p in r.spans
                     if p['name'] == 'http.client.request.duration']
    check_equal(len(spans), 3 * len(clients), f'refused certificates: exactly '
                f'{3 * len(clients)} spans')
    for name in ('curl', 'python'):
        check_equal([(p['count'], p['attributes'].get('error.type')) for p in durations
                     if p['resource'].get('service.name') == name],
                    [(1, 'tlsv1 alert unknown ca')],
                    f'{name}: http.client.request.duration has the alert as error.type too')
    check_equal(results['curl'].returncode, 56, 'curl: refused after its handshake, in a read')
    check_equal(results['python'].stdout.strip(), 'TLSV1_ALERT_UNKNOWN_CA',
                'python: refused after its handshake, in a read')
    for name in ('curl', 'python'):
        mine = by_service(spans, name)
        clients_spans = spans_where(mine, KIND_CLIENT, 'otlpauto.http')
        check_equal((len(mine), len(clients_spans)), (2, 1), f'{name}: its connect and CLIENT span')
        check_equal([(attr(c, 'url.full'), attr(c, 'http.response.status_code'),
                      c['status_code'] == STATUS_ERROR, attr(c, 'error.type'))
                     for c in clients_spans],
                    [(f'https://127.0.0.1:{ports[name]}/', None, True, 'tlsv1 alert unknown ca')],
                    f'{name}: the CLIENT span, an error: the server\'s alert')
    if WGET:
        check(results['wget'].returncode != 0, 'wget: refused')
        wget = by_service(spans, 'wget')
        failed = [s for s in wget if not s['name'].startswith('socket connect')]
        port = ports['wget']
        check_equal((len(wget), len(failed)), (2, 1), 'wget: its connect and one failure span')
        in_read = [s for s in failed if s['kind'] == KIND_CLIENT]
        if in_read:
            print('note: wget wrote its request before the alert came: a CLIENT span')
        check_equal([(s['name'], s['status_code'] == STATUS_ERROR, attr(s, 'error.type'),
                      attr(s, 'network.peer.port')) for s in failed],
                    [('GET' if in_read else f'tls handshake 127.0.0.1:{port}', True,
                      'GNUTLS_A_CERTIFICATE_REQUIRED', port)],
                    'wget: the handshake span (the CLIENT span, its request written), an error: '
                    'the server\'s alert')
    for name, _ in clients:
        theirs = by_service(spans, f'{name}-refusing')
        check_equal([(s['name'].startswith('tls handshake 127.0.0.1:'),
                      s['status_code'] == STATUS_ERROR, attr(s, 'error.type')) for s in theirs],
                    [(True, True, 'peer did not return a certificate' if name == 'wget'
                      else 'self-signed certificate')],
                    f'{name}: s_server\'s failed handshake')


def write_retries(workdir):
    if not (builddir() / 'tests' / 'programs' / 'tls_peer').exists():
        print('skip: tls_peer not built (no libssl-dev): repeated TLS writes untested')
        return
    for mode in ('retry', 'partial', 'split', 'staged'):
        with Receiver() as receiver:
            result = run_traced([program('tls_peer'), os.path.join(workdir, 'cert.pem'),
                                 os.path.join(workdir, 'key.pem'), mode], receiver,
                                env={'OTLPAUTO_HOOKS': HOOKS}, timeout=60)
            receiver.wait_for_spans(3, timeout=10)
            time.sleep(0.3)
            spans = receiver.spans
        check_equal(result.returncode, 0, f'{mode}: tls_peer exits 0', )
        out = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition(' ')
            out.setdefault(key, []).append(value)
        sent = [v for v in out.get('client', []) if v.startswith('body ')]
        got = [v for v in out.get('server', []) if v.startswith('body ')]
        check(sent and sent == got, f'{mode}: the server read the body as sent', (sent, got))
        retries = int(next((v.split()[1] for v in out.get('client', [])
                            if v.startswith('retries ')), -1))
        check(retries > 0 if mode != 'split' else retries == 0,
              f'{mode}: OpenSSL asked for repeats ({retries})')
        clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
        servers = spans_where(spans, KIND_SERVER, 'otlpauto.http')
        check_equal((len(spans), len(clients), len(servers)), (3, 1, 1),
                    f'{mode}: connect, CLIENT and SERVER spans')
        if len(clients) == 1 and len(servers) == 1:
            client, server = clients[0], servers[0]
            head = [v[len('head '):] for v in out.get('server', []) if v.startswith('head ')]
            check_equal([h for h in head if h.lower().startswith('traceparent')],
                        [f'traceparent: 00-{client["trace_id"]}-{client["span_id"]}-01'],
                        f'{mode}: one traceparent line, naming the CLIENT span')
            check_equal((server['trace_id'], server['parent_span_id']),
                        (client['trace_id'], client['span_id']),
                        f'{mode}: the SERVER span is the CLIENT span\'s child')
            check_equal((attr(server, 'http.response.status_code'),
                         attr(client, 'http.response.status_code')), (200, 200),
                        f'{mode}: status codes')


def cut_after_retries(workdir):
    """tls_peer cut: the client's non-blocking reads would block (the hooks
    tell that from errno and SSL_want, and end nothing), then the server
    closes without answering or a close_notify: the read that learns it ends
    the CLIENT span, an error with OpenSSL's reason."""
    if not (builddir() / 'tests' / 'programs' / 'tls_peer').exists():
        print('skip: tls_peer not built (no libssl-dev): a cut after reads that would block untested')
        return
    with Receiver() as receiver:
        result = run_traced([program('tls_peer'), os.path.join(workdir, 'cert.pem'),
                             os.path.join(workdir, 'key.pem'), 'cut'], receiver,
                            env={'OTLPAUTO_HOOKS': HOOKS}, timeout=60)
        receiver.wait_for_spans(2, timeout=10)
        time.sleep(0.3)
        spans = receiver.spans
    check_equal(result.returncode, 0, 'cut: tls_peer exits 0')
    lines = result.stdout.splitlines()
    waits = [int(line.split()[2]) for line in lines if line.startswith('client waits ')]
    check(waits and waits[0] > 0, 'cut: the client\'s reads would block first', result.stdout)
    check('client cut 0 unexpected eof while reading' in lines,
          'cut: then its read fails for good', result.stdout)
    clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
    check_equal([(c['status_code'] == STATUS_ERROR, attr(c, 'error.type'),
                  attr(c, 'http.response.status_code')) for c in clients],
                [(True, 'unexpected eof while reading', None)],
                'cut: the CLIENT span, an error: OpenSSL\'s reason')


# gnutls_peer's modes: what each moves its plaintext with, and the length
# of the answer's body.
GNUTLS_MODES = {
    'seq': ('gnutls_record_send2, gnutls_record_recv_seq', 2),
    'split': ('a head in three gnutls_record_send calls', 2),
    'packet': ('gnutls_record_send_range, gnutls_record_recv_packet, a body sent with '
               'gnutls_record_send_file', 100000),
}


def gnutls_record_variants(workdir):
    if not (builddir() / 'tests' / 'programs' / 'gnutls_peer').exists():
        print('skip: gnutls_peer not built (no libgnutls28-dev): GnuTLS\'s record functions '
              'other than gnutls_record_send and _recv untested')
        return
    for mode, (what, body_len) in GNUTLS_MODES.items():
        with Receiver() as receiver:
            result = run_traced([program('gnutls_peer'), os.path.join(workdir, 'cert.pem'),
                                 os.path.join(workdir, 'key.pem'), mode], receiver,
                                env={'OTLPAUTO_HOOKS': HOOKS}, timeout=60)
            receiver.wait_for_spans(3, timeout=10)
            time.sleep(0.3)
            spans = receiver.spans
        check(result.returncode == 0, f'gnutls_peer {mode}: exits 0', result.stderr)
        check(result.stdout.startswith(f'client answer HTTP/1.1 200 OK\nclient body {body_len}\n'),
              f'gnutls_peer {mode}: answer', result.stdout)
        clients = spans_where(spans, KIND_CLIENT, 'otlpauto.http')
        servers = spans_where(spans, KIND_SERVER, 'otlpauto.http')
        check_equal((len(spans), len(clients), len(servers)), (3, 1, 1),
                    f'gnutls_peer {mode} ({what}): connect, CLIENT and SERVER spans')
        if len(clients) != 1 or len(servers) != 1:
            continue
        client, server = clients[0], servers[0]
        check_equal([line for line in result.stdout.splitlines()
                     if line.lower().startswith('server head traceparent')],
                    [f'server head traceparent: 00-{client["trace_id"]}-{client["span_id"]}-01'],
                    f'gnutls_peer {mode}: one traceparent line, naming the CLIENT span')
        check_equal((server['trace_id'], server['parent_span_id'], attr(server, 'url.path'),
                     attr(server, 'url.scheme'), attr(server, 'http.response.status_code')),
                    (client['trace_id'], client['span_id'], f'/{mode}', 'https', 200),
                    f'gnutls_peer {mode}: the SERVER span, the CLIENT span\'s child')
        check_equal((attr(client, 'http.response.status_code'),
                     attr(client, 'tls.protocol.version')), (200, '1.3'),
                    f'gnutls_peer {mode}: the CLIENT span read its answer')


def test():
    if not os.access(NGINX, os.X_OK) or not os.access(OPENSSL, os.X_OK):
        skip('nginx or openssl is not installed')
    workdir = tempfile.mkdtemp(prefix='otlpauto-tls-')
    try:
        os.mkdir(os.path.join(workdir, 'www'))
        with open(os.path.join(workdir, 'www', 'index.html'), 'w', encoding='utf-8') as f:
            f.write('<h1>hello</h1>\n' * 40)
        with open(os.path.join(workdir, 'www', 'big.bin'), 'wb') as f:
            f.write(os.urandom(BIG))
        make_certificate(workdir)
        nginx_and_clients(workdir)
        server_name(workdir)
        reverse_proxy(workdir)
        openssl_server(workdir)
        openssl_www(workdir)
        client_certificate_refused(workdir)
        write_retries(workdir)
        cut_after_retries(workdir)
        gnutls_record_variants(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main(test)
