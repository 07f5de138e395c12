"""HTTP/1.x CLIENT and SERVER spans from socket bytes, and trace context
propagation between them.

curl -> python3 -m http.server, both under the shim: one trace, curl's DNS,
connect and CLIENT spans under curl's process span, the server's SERVER span
a child of the CLIENT (not of the server's process span, which has a trace
of its own).
Then tests/programs/http_client against http_server in the hard cases:
requests written 1 byte at a time, a server reading 1 byte at a time,
pipelining, keep-alive with error statuses, a non-HTTP protocol on the same
port, a request with its own traceparent (sampled or not), OTEL_PROPAGATORS=
none, and large pipelined POSTs whose every send is cut short (and every
second one refused with EAGAIN) by a preload below the shim. Spans must be
right or absent, and each program's output the same as without the shim."""

import os
import signal
import tempfile

from harness import (Receiver, assert_tree_whole, check, check_equal, check_holds, free_port,
                     main, process_spans, program, run_traced, skip, without_process_spans)
from netutil import (HOSTS_NAME, KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, STATUS_ERROR,
                     Background, attr, ensure_hosts_entry, spans_where)

PYTHON = '/usr/bin/python3'
SECRET = 'sekrit-value'
QUIET = {
    # only these families: the test programs are built with function hooks
    'OTLPAUTO_HOOKS': 'sockets,dns,http',
    'OTLPAUTO_FUNCTION_THRESHOLD': '100s',
}
OWN_TRACE = '0af7651916cd43dd8448eb211c80319c'
OWN_SPAN = 'b7ad6b7169203331'


def shortio():
    return os.path.join(os.path.dirname(program('http_client')), 'libshortio.so')


def by_kind(spans, kind):
    return spans_where(spans, kind, 'otlpauto.http')


def curl_to_python_server():
    if not ensure_hosts_entry():
        skip(f'cannot add {HOSTS_NAME} to /etc/hosts')
    root = tempfile.mkdtemp(prefix='otlpauto-http-')
    with open(os.path.join(root, 'index.txt'), 'w', encoding='utf-8') as f:
        f.write('hello\n')
    port = free_port()
    url = f'http://{HOSTS_NAME}:{port}/index.txt?token={SECRET}&x&page=2&Signature={SECRET}'
    curl = ['curl', '-sS', '--max-time', '20', '-H', f'Authorization: Bearer {SECRET}',
            '-H', f'Cookie: session={SECRET}', url]
    with Receiver() as receiver:
        server = Background([PYTHON, '-m', 'http.server', port, '--bind', '127.0.0.1'],
                            receiver, timeout=60, stop_signal=signal.SIGINT, cwd=root,
                            env={'PYTHONUNBUFFERED': '1'})
        with server:
            server.wait_for(r'(Serving HTTP)')
            result = run_traced(curl, receiver, timeout=30)
        spans = receiver.wait_for_spans(6, timeout=10)
        spans = receiver.wait_for_spans(7, timeout=0.5)
    os.unlink(os.path.join(root, 'index.txt'))
    os.rmdir(root)

    check_equal(result.returncode, 0, 'curl exits 0')
    check_equal(result.stdout, 'hello\n', 'curl output unchanged')
    check_equal(len(spans), 6, 'curl DNS + connect + CLIENT, server SERVER, two process spans')
    python = os.path.basename(os.path.realpath(PYTHON))
    processes = {s['name']: s for s in process_spans(spans)}
    check_equal(sorted(processes), sorted(['curl', python]), 'process spans of curl and python')
    if len(processes) != 2:
        return
    server_process = processes[python]
    check_equal(server_process['parent_span_id'], '', 'the server\'s process span is a root')
    check_holds('trees whole', assert_tree_whole, spans)
    curl_process = processes['curl']
    spans = without_process_spans(spans)
    clients, servers = by_kind(spans, KIND_CLIENT), by_kind(spans, KIND_SERVER)
    dns = spans_where(spans, KIND_INTERNAL, 'otlpauto.dns', {'dns.question.name': HOSTS_NAME})
    connect = spans_where(spans, KIND_INTERNAL, 'otlpauto.sockets')
    check(len(clients) == 1 and len(servers) == 1 and len(dns) == 1 and len(connect) == 1,
          'one span of each', [(s['name'], s['kind']) for s in spans])
    if len(clients) != 1 or len(servers) != 1:
        return
    client, server_span = clients[0], servers[0]
    check_equal({s['trace_id'] for s in spans + [curl_process]}, {client['trace_id']},
                'one trace')
    check(server_process['trace_id'] != client['trace_id'],
          'the server\'s process span in a trace of its own')
    check_equal({s['parent_span_id'] for s in [client] + dns[:1] + connect[:1]},
                {curl_process['span_id']}, 'curl\'s spans are children of its process span')
    check_equal(server_span['parent_span_id'], client['span_id'], 'SERVER is the CLIENT\'s child')
    check(server_span['flags'] & 0x300 == 0x300, 'SERVER parent is remote', server_span['flags'])
    check_equal(client['name'], 'GET', 'CLIENT name')
    check_equal(attr(client, 'url.full'),
                f'http://{HOSTS_NAME}:{port}/index.txt?token=REDACTED&x&page=2&Signature=REDACTED',
                'url.full: credentials redacted, other values kept')
    check_equal(attr(client, 'server.address'), HOSTS_NAME, 'CLIENT server.address')
    check_equal(attr(client, 'server.port'), port, 'CLIENT server.port')
    check_equal(attr(client, 'http.response.status_code'), 200, 'CLIENT status code')
    check_equal(server_span['name'], 'GET', 'SERVER name')
    expected = {
        'http.request.method': 'GET', 'url.path': '/index.txt',
        'url.query': 'token=REDACTED&x&page=2&Signature=REDACTED',
        'url.scheme': 'http', 'client.address': '127.0.0.1', 'server.port': port,
        'network.protocol.version': '1.1', 'http.response.status_code': 200,
    }
    for key, value in expected.items():
        check_equal(attr(server_span, key), value, f'SERVER {key}')
    check(attr(server_span, 'user_agent.original', '').startswith('curl/'), 'user agent')
    check(isinstance(attr(server_span, 'client.port'), int), 'client.port')
    # two processes' clocks: a few ms of slack
    slack = 5_000_000
    check(client['start'] - slack <= server_span['start'] and
          server_span['end'] <= client['end'] + slack, 'SERVER within CLIENT',
          (client['start'], server_span['start'], server_span['end'], client['end']))
    check(connect and connect[0]['end'] <= client['start'], 'connect before the request')
    # The process spans are left out: curl's command line is its
    # process.command_args (in the resource, and on its process span).
    check(all(SECRET not in str(value) for s in spans for value in s['attributes'].values()),
          'no header value, cookie or query value recorded')


def run_pair(client_args, server_mode='normal', connections=1, env=None, client_preload=(),
             client_env=None):
    """http_server and http_client, both traced; returns (client result,
    server stdout, server stderr, spans)."""
    env = {**QUIET, **(env or {})}
    with Receiver() as receiver:
        with Background([program('http_server'), server_mode, connections], receiver,
                        env=env, timeout=60) as server:
            port = int(server.wait_for(r'port (\d+)'))
            client_env_all = {**env, **(client_env or {})}
            if client_preload:
                client_env_all['LD_PRELOAD'] = ' '.join(
                    [str(os.environ.get('OTLPAUTO_LIB'))] + list(client_preload))
            result = run_traced([program('http_client'), port] + client_args, receiver,
                                env=client_env_all, timeout=60)
            server.wait()
        # both flushed before exiting, and the receiver records before answering
        spans = receiver.spans
    # server lines are "request ..." after the port line
    server_out = ''.join(line + '\n' for line in server.stdout.splitlines()[1:])
    return result, server_out, server.stderr, spans


def run_untraced(client_args, server_mode='normal', connections=1):
    with Background([program('http_server'), server_mode, connections], preload=False,
                    timeout=60) as server:
        port = int(server.wait_for(r'port (\d+)'))
        result = run_traced([program('http_client'), port] + client_args, preload=False,
                            timeout=60)
        server.wait()
    return result.stdout, ''.join(line + '\n' for line in server.stdout.splitlines()[1:])


def check_pairs(what, spans, n):
    """n CLIENT spans, each the parent of one SERVER span with its url.path."""
    clients, servers = by_kind(spans, KIND_CLIENT), by_kind(spans, KIND_SERVER)
    check_equal(len(clients), n, f'{what}: CLIENT spans')
    check_equal(len(servers), n, f'{what}: SERVER spans')
    by_parent = {s['parent_span_id']: s for s in servers}
    for client in clients:
        server = by_parent.get(client['span_id'])
        path = attr(client, 'url.full', '').split('127.0.0.1', 1)[-1].split('/', 1)[-1]
        check(server is not None and server['trace_id'] == client['trace_id'] and
              attr(server, 'url.path') == '/' + path.split('?')[0],
              f'{what}: SERVER child of CLIENT {path}', server and server['attributes'])
    return clients, servers


def scenario(what, client_args, server_mode='normal', **kwargs):
    expected_client, expected_server = run_untraced(client_args, server_mode)
    result, server_out, server_err, spans = run_pair(client_args, server_mode, **kwargs)
    check_equal(result.returncode, 0, f'{what}: client exits 0')
    check_equal(result.stdout, expected_client, f'{what}: client output unchanged')
    check_equal(server_out, expected_server, f'{what}: server output unchanged')
    return spans, server_err


def http_programs():
    spans, err = scenario('split writes', ['split'], 'bytewise')
    clients, servers = check_pairs('split writes', spans, 1)
    check_equal(len(spans), 3, 'split writes: CLIENT, SERVER, connect')
    if servers:
        check_equal(attr(servers[0], 'user_agent.original'), 'split', 'split: user agent')
        check_equal(attr(servers[0], 'url.query'), 'a=1', 'split: a value of no sensitive name')
    for setting, query, url in (('all', 'a=REDACTED', '/split?a=REDACTED'),
                                ('none', 'a=1', '/split?a=1')):
        spans, err = scenario(f'split, OTLPAUTO_REDACT_QUERY={setting}', ['split'], 'bytewise',
                              env={'OTLPAUTO_REDACT_QUERY': setting})
        clients, servers = check_pairs(f'split, {setting}', spans, 1)
        if servers and clients:
            check_equal((attr(servers[0], 'url.query'), attr(clients[0], 'url.full')[-len(url):]),
                        (query, url), f'OTLPAUTO_REDACT_QUERY={setting}: url.query, url.full')

    spans, err = scenario('pipeline', ['pipeline'], 'bytewise')
    check_pairs('pipeline', spans, 3)
    check_equal(err.count('traceparent 00-'), 3, 'pipeline: three traceparents received')

    spans, err = scenario('keep-alive', ['keepalive', '5'])
    clients, servers = check_pairs('keep-alive', spans, 5)
    codes = sorted(attr(s, 'http.response.status_code') for s in servers)
    check_equal(codes, [200, 200, 200, 404, 500], 'keep-alive: status codes')
    check_equal(sorted(attr(s, 'http.response.status_code') for s in clients
                       if s['status_code'] == STATUS_ERROR), [404, 500],
                'keep-alive: CLIENT errors are 4xx and 5xx')
    check_equal([attr(s, 'http.response.status_code') for s in servers
                 if s['status_code'] == STATUS_ERROR], [500], 'keep-alive: SERVER errors are 5xx')
    check_equal(len({s['trace_id'] for s in clients}), 1, 'keep-alive: the client\'s one trace')
    check_holds('keep-alive: trees whole', assert_tree_whole, spans)

    spans, err = scenario('non-HTTP', ['nonhttp'])
    check_equal(by_kind(spans, KIND_CLIENT) + by_kind(spans, KIND_SERVER), [],
                'non-HTTP protocol: no HTTP span')

    spans, err = scenario('own traceparent', ['traceparent'], 'bytewise')
    clients, servers = by_kind(spans, KIND_CLIENT), by_kind(spans, KIND_SERVER)
    check(len(clients) == 1 and clients[0]['trace_id'] == OWN_TRACE and
          clients[0]['span_id'] == OWN_SPAN, 'own traceparent names the CLIENT span',
          clients and (clients[0]['trace_id'], clients[0]['span_id']))
    check(len(servers) == 1 and servers[0]['parent_span_id'] == OWN_SPAN,
          'own traceparent: SERVER child of it')
    check_equal(err.count('traceparent 00-'), 1, 'own traceparent: none added')

    spans, err = scenario('unsampled', ['unsampled'])
    check_equal(by_kind(spans, KIND_SERVER) + by_kind(spans, KIND_CLIENT), [],
                'sampled flag 00 honoured: no HTTP span')

    spans, err = scenario('propagators none', ['keepalive', '2'],
                          env={'OTEL_PROPAGATORS': 'none'})
    check_equal(err.count('traceparent -'), 2, 'propagators none: nothing injected')
    servers = by_kind(spans, KIND_SERVER)
    check(len(servers) == 2 and all(not s['parent_span_id'] for s in servers),
          'propagators none: SERVER spans are roots')

    # No Host: the peer's address names the server in url.full and server.address.
    spans, err = scenario('no Host', ['nohost'])
    clients, servers = check_pairs('no Host', spans, 1)
    if clients:
        port = attr(clients[0], 'network.peer.port')
        check_equal(attr(clients[0], 'url.full'), f'http://127.0.0.1:{port}/nohost',
                    'no Host: url.full from the peer')
        check_equal(attr(clients[0], 'server.address'), '127.0.0.1',
                    'no Host: server.address from the peer')
        check_equal(attr(clients[0], 'server.port'), port, 'no Host: server.port from the peer')

    spans, err = scenario('non-blocking connect', ['nonblock'])
    check_pairs('non-blocking connect', spans, 1)
    connects = spans_where(spans, KIND_INTERNAL, 'otlpauto.sockets')
    check(len(connects) == 1 and connects[0]['status_code'] != STATUS_ERROR,
          'non-blocking connect span')

    # 20 pipelined 10 KB POSTs, every send cut to 7 bytes, every second one
    # EAGAIN: the first 8 requests get spans and traceparents (the queue
    # depth), the other 12 neither; every body arrives intact.
    spans, err = scenario('short sends', ['bigpost', '20'], client_preload=[shortio()],
                          client_env={'SHORTIO_EAGAIN': '1'})
    clients, servers = by_kind(spans, KIND_CLIENT), by_kind(spans, KIND_SERVER)
    check_equal(len(clients), 8, 'short sends: CLIENT spans for the tracked requests')
    check_equal(len(servers), 20, 'short sends: SERVER spans')
    client_ids = {c['span_id'] for c in clients}
    parented = [s for s in servers if s['parent_span_id'] in client_ids]
    check_equal(len(parented), 8, 'short sends: SERVER children of CLIENT spans')
    check_equal(len([s for s in servers if not s['parent_span_id']]), 12,
                'short sends: untracked requests have no traceparent')
    check_equal(err.count('traceparent 00-'), 8, 'short sends: traceparents received')


PROXY = r'''
import http.server, sys, urllib.request
backend = sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        with urllib.request.urlopen(f'http://127.0.0.1:{backend}/backend') as r:
            body = r.read()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Handler)
server.daemon_threads = False  # server_close() waits for the handler thread
print('ready', flush=True)
server.handle_request()
server.server_close()
'''


def server_spans_with_process_spans():
    """With the process family on, the client's spans are children of its
    process span; the server's SERVER spans still start their own traces
    (no traceparent arrives: OTEL_PROPAGATORS=none), never the process
    span's."""
    result, _, _, spans = run_pair(['keepalive', '2'],
                                   env={'OTLPAUTO_HOOKS': 'sockets,dns,http,process',
                                        'OTEL_PROPAGATORS': 'none'})
    check_equal(result.returncode, 0, 'process spans on: client exits 0')
    processes = {s['name']: s for s in process_spans(spans)}
    check_equal(sorted(processes), ['http_client', 'http_server'],
                'process spans on: one per program')
    clients, servers = by_kind(spans, KIND_CLIENT), by_kind(spans, KIND_SERVER)
    check_equal((len(clients), len(servers)), (2, 2), 'process spans on: CLIENT and SERVER spans')
    if len(processes) != 2:
        return
    client_process = processes['http_client']
    check(all(s['parent_span_id'] == client_process['span_id']
              for s in spans_where(spans, scope='otlpauto.sockets') + clients),
          'process spans on: connect and CLIENT spans under the client\'s process span')
    check(all(s['parent_span_id'] == '' and s['trace_id'] != processes['http_server']['trace_id']
              for s in servers),
          'process spans on: SERVER spans are roots of their own traces, not the server\'s '
          'process span\'s', [(s['trace_id'], s['parent_span_id']) for s in servers])
    check_equal(len({s['trace_id'] for s in servers}), 2, 'process spans on: a trace per request')


def proxy_propagation():
    """A Python server that calls a backend while handling a request: its
    connect and CLIENT spans are children of its SERVER span, which continues
    the caller's trace and tracestate; the backend gets both."""
    import http.client  # noqa: PLC0415  (only this scenario uses it)
    tracestate = 'vendor=abc,other=1'
    proxy_port = free_port()
    with Receiver() as receiver:
        with Background([program('http_server'), 'normal', 1], receiver, env=QUIET) as backend:
            backend_port = int(backend.wait_for(r'port (\d+)'))
            with Background([PYTHON, '-c', PROXY, proxy_port, backend_port], receiver,
                            env=QUIET) as proxy:
                proxy.wait_for(r'(ready)')
                conn = http.client.HTTPConnection('127.0.0.1', proxy_port, timeout=20)
                conn.request('GET', '/front', headers={
                    'traceparent': f'00-{OWN_TRACE}-{OWN_SPAN}-01', 'tracestate': tracestate})
                response = conn.getresponse()
                body = response.read()
                conn.close()
                proxy.wait(30)
            backend.wait(30)
        spans = receiver.spans
    check_equal((response.status, body), (200, b'/backend 0\n'), 'proxy: answer')
    check_equal(len(spans), 4, 'proxy: SERVER, connect, CLIENT; backend SERVER')
    check_equal({s['trace_id'] for s in spans}, {OWN_TRACE}, 'proxy: all in the caller\'s trace')
    front = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'url.path': '/front'})
    back = spans_where(spans, KIND_SERVER, 'otlpauto.http', {'url.path': '/backend'})
    clients = by_kind(spans, KIND_CLIENT)
    connects = spans_where(spans, KIND_INTERNAL, 'otlpauto.sockets')
    if not (len(front) == len(back) == len(clients) == len(connects) == 1):
        check(False, 'proxy: one span of each', [(s['name'], s['kind']) for s in spans])
        return
    check_equal(front[0]['parent_span_id'], OWN_SPAN, 'proxy: SERVER child of the caller')
    check_equal(front[0]['trace_state'], tracestate, 'proxy: SERVER keeps the tracestate')
    check_equal(clients[0]['parent_span_id'], front[0]['span_id'], 'proxy: CLIENT in SERVER')
    check_equal(connects[0]['parent_span_id'], front[0]['span_id'], 'proxy: connect in SERVER')
    check_equal(back[0]['parent_span_id'], clients[0]['span_id'], 'backend: child of CLIENT')
    check(f'tracestate {tracestate}\n' in backend.stderr, 'backend received the tracestate',
          backend.stderr)


def handled_in_context():
    """Function spans of code run while a request is handled are children of
    its SERVER span (the context pushed on the handling thread)."""
    env = {'OTLPAUTO_HOOKS': 'sockets,http,functions', 'OTLPAUTO_FUNCTION_THRESHOLD': '0',
           'OTLPAUTO_FUNCTION_INCLUDE': 'header'}
    result, _, _, spans = run_pair(['keepalive', '2'], env=env)
    check_equal(result.returncode, 0, 'context: client exits 0')
    servers = by_kind(spans, KIND_SERVER)
    headers = [s for s in spans if s['name'] == 'header']
    check_equal(len(servers), 2, 'context: SERVER spans')
    check_equal(len(headers), 8, 'context: header() spans, 4 per request')
    for server in servers:
        children = [s for s in headers if s['parent_span_id'] == server['span_id']
                    and s['trace_id'] == server['trace_id']]
        check_equal(len(children), 4, f'context: header() spans under {attr(server, "url.path")}')


def sampled_after_sampled_out():
    """A server thread parses a request lean after one sampled out: the next
    request, sampled by its traceparent (parentbased_always_off), is parsed
    again in full and its span has what its head says; the sampled-out ones
    get none. Requests on one keep-alive connection, from an untraced
    client, two of them in one write."""
    import socket
    tp = f'00-{OWN_TRACE}-{OWN_SPAN}-01'
    head = 'Host: lean.example:8080\r\nUser-Agent: lean-test\r\n'
    requests = [f'GET /first?a=1 HTTP/1.1\r\n{head}\r\n',
                f'POST /second?b=2 HTTP/1.1\r\n{head}traceparent: {tp}\r\n'
                'Content-Length: 5\r\n\r\nhello',
                f'GET /third HTTP/1.1\r\n{head}\r\n'
                f'GET /fourth?c=3 HTTP/1.1\r\n{head}traceparent: {tp}\r\n\r\n']
    env = {**QUIET, 'OTEL_TRACES_SAMPLER': 'parentbased_always_off'}
    with Receiver() as receiver:
        with Background([program('http_server'), 'normal', 1], receiver, env=env,
                        timeout=60) as server:
            port = int(server.wait_for(r'port (\d+)'))
            with socket.create_connection(('127.0.0.1', port), timeout=20) as conn:
                for data, answers in zip(requests, (1, 1, 2)):
                    conn.sendall(data.encode())
                    got = b''
                    while got.count(b'HTTP/1.1 ') < answers or not got.endswith(b'\n'):
                        more = conn.recv(4096)
                        if not check(more, 'lean: the server answers every request'):
                            break
                        got += more
            server.wait()
        spans = receiver.spans
    servers = by_kind(spans, KIND_SERVER)
    check_equal(sorted(attr(s, 'url.path') for s in servers), ['/fourth', '/second'],
                'lean: the sampled requests get SERVER spans, the sampled-out ones none')
    for s in servers:
        path = attr(s, 'url.path')
        check_equal(attr(s, 'url.query'), {'/second': 'b=2', '/fourth': 'c=3'}.get(path),
                    f'lean: {path} has its query')
        check_equal(attr(s, 'server.address'), 'lean.example', f'lean: {path} has its Host')
        check_equal(attr(s, 'user_agent.original'), 'lean-test',
                    f'lean: {path} has its User-Agent')
        check_equal(s['trace_id'], OWN_TRACE, f'lean: {path} continues its traceparent')


def test():
    sampled_after_sampled_out()
    curl_to_python_server()
    http_programs()
    server_spans_with_process_spans()
    proxy_propagation()
    handled_in_context()


if __name__ == '__main__':
    main(test)
