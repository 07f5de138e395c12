"""Redis spans from the wire: redis-server, redis-cli and redis-benchmark from
Debian, each under the shim. redis-server gets a SERVER span per command and
the clients a CLIENT span per command, with the database attributes; an
error reply makes an error span; pipelined commands (redis-benchmark -P 16)
pair with their replies in order, and past 32 (-P 50) are counted as dropped
spans; MULTI/EXEC and pub/sub messages keep the
pairing right. The server keeps serving and shuts down cleanly. Redis carries
no trace context: a command's CLIENT and SERVER spans are in two traces,
linked by time only. Over TLS (redis-server --tls-port, redis-cli --tls)
the same spans come from the plaintext of SSL_read and SSL_write."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from harness import Receiver, check, check_equal, free_port, main, run_traced, skip
from netutil import KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, STATUS_ERROR, Background, attr, \
    spans_where

REQUESTS = 1000
CLIENTS = 4
TESTS = ('SET', 'GET')
SCOPE = 'otlpauto.redis'
ENV = {'OTLPAUTO_HOOKS': 'sockets,dns,http'}
# The subscriber ends on SIGTERM: the process family flushes its spans then.
SUBSCRIBER_HOOKS = 'sockets,dns,http,process'
TLS_ENV = {'OTLPAUTO_HOOKS': 'sockets,dns,http,tls'}
OPEN_MAX = 32  # commands awaiting replies a connection follows (hooks/redis.c)


def redis_cli(port, *args, receiver=None, stdin=None):
    argv = ['redis-cli', '-h', '127.0.0.1', '-p', str(port)] + [str(a) for a in args]
    if receiver is not None:
        return run_traced(argv, receiver, env=ENV, timeout=30, input=stdin)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, input=stdin)


def wait_ping(port, server, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end and server.process.poll() is None:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            if redis_cli(port, 'ping').stdout.strip() == 'PONG':
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def command_calls(port):
    """calls per command name (upper case) from INFO commandstats."""
    stats = redis_cli(port, 'info', 'commandstats').stdout
    return {name.upper(): int(calls)
            for name, calls in re.findall(r'^cmdstat_(\w+):calls=(\d+)', stats, re.M)}


def named(spans, kind, name):
    return [s for s in spans if s['kind'] == kind and s['name'] == name and
            s['scope']['name'] == SCOPE]


class Redis:
    """redis-server under the shim on a free loopback port."""

    def __init__(self, receiver, workdir, tls=()):
        """tls: extra arguments that open a TLS port beside the plain one."""
        self.port = free_port()
        self.server = Background(['redis-server', '--port', self.port, '--bind', '127.0.0.1',
                                  '--save', '', '--appendonly', 'no', '--dir', workdir]
                                 + list(tls), receiver, env=TLS_ENV if tls else ENV,
                                 timeout=180)

    def __enter__(self):
        self.server.__enter__()
        check(wait_ping(self.port, self.server), 'redis answers PING',
              self.server.stdout[-2000:])
        return self

    def stop(self):
        shutdown = redis_cli(self.port, 'shutdown', 'nosave')
        check_equal(shutdown.returncode, 0, 'shutdown accepted')
        check_equal(self.server.wait(60), 0, 'redis-server exits 0')

    def __exit__(self, *exc):
        return self.server.__exit__(*exc)


def requires_redis():
    for tool in ('redis-server', 'redis-benchmark', 'redis-cli'):
        if not shutil.which(tool):
            skip(f'{tool} is not installed')


def test_benchmark(pipeline):
    """redis-benchmark -n REQUESTS (pipelined or not): a SERVER and a CLIENT
    span per command the server counted."""
    workdir = tempfile.mkdtemp(prefix='otlpauto-redis-')
    extra = ['-P', pipeline] if pipeline > 1 else []
    try:
        with Receiver() as receiver:
            with Redis(receiver, workdir) as redis:
                bench = run_traced(['redis-benchmark', '-h', '127.0.0.1', '-p', redis.port,
                                    '-n', REQUESTS, '-c', CLIENTS, '-t', ','.join(TESTS), '-q']
                                   + extra, receiver, env=ENV, timeout=150)
                calls = command_calls(redis.port)
                pong = redis_cli(redis.port, 'ping').stdout.strip()
                redis.stop()
            time.sleep(0.5)
            spans = receiver.spans
            dropped = connection_full(receiver.metric_requests)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    what = f'pipeline {pipeline}'
    if pipeline > OPEN_MAX:
        # past the commands a connection follows: no span, a dropped one
        total = sum(calls.get(name, 0) for name in TESTS)
        got = sum(len(named(spans, kind, name)) for kind in (KIND_SERVER, KIND_CLIENT)
                  for name in TESTS)
        check(dropped > 0 and got + dropped == 2 * total,
              f'{what}: every command a span on each side or a dropped one (connection_full)',
              (got, dropped, 2 * total))
        return
    check_equal(dropped, 0, f'{what}: no span dropped')
    check_equal(bench.returncode, 0, f'redis-benchmark completes ({what})')
    done = re.findall(r'^([A-Z_]+).*requests per second', bench.stdout.replace('\r', '\n'), re.M)
    check(len(done) == len(TESTS), f'every benchmark test finished ({what})', bench.stdout)
    check_equal(pong, 'PONG', 'redis still serves after the load')
    check_equal(spans_where(spans, scope='otlpauto.http'), [], 'no HTTP span')
    for name in TESTS:
        check(calls.get(name, 0) >= REQUESTS, f'redis ran every {name}', calls)
        # the CLI calls that read the stats and stop the server are not traced
        server = named(spans, KIND_SERVER, name)
        check_equal(len(server), calls.get(name), f'a SERVER span per {name} run ({what})')
        client = named(spans, KIND_CLIENT, name)
        check_equal(len(client), calls.get(name), f'a CLIENT span per {name} ({what})')
        for s in server[:3] + client[:3]:
            check_equal(attr(s, 'db.system.name'), 'redis', 'db.system.name')
            check_equal(attr(s, 'db.operation.name'), name, 'db.operation.name')
            check_equal(attr(s, 'db.namespace'), '0', 'db.namespace')
            check_equal(attr(s, 'db.query.text'), None, 'no query text')
        check_equal(attr(server[0], 'server.port'), redis.port, 'server.port (server)')
        check_equal(attr(server[0], 'client.address'), '127.0.0.1', 'client.address')
        check_equal(attr(client[0], 'server.address'), '127.0.0.1', 'server.address')
        check_equal(attr(client[0], 'server.port'), redis.port, 'server.port (client)')
    connects = spans_where(spans, KIND_INTERNAL, 'otlpauto.sockets')
    check(len(connects) >= CLIENTS * len(TESTS), 'a connect span per client', len(connects))


def test_benchmark_plain():
    requires_redis()
    test_benchmark(1)


def test_benchmark_pipelined():
    requires_redis()
    test_benchmark(16)
    test_benchmark(50)


def connection_full(metric_requests):
    """Spans dropped as connection_full, from every process's last
    otlpauto.spans point (cumulative)."""
    latest = {}
    for request in metric_requests:
        for p in request.spans:
            if p['name'] == 'otlpauto.spans' and \
                    p['attributes'].get('otlpauto.drop.reason') == 'connection_full':
                key = p['resource']['process.pid']
                if key not in latest or latest[key]['time'] <= p['time']:
                    latest[key] = p
    return sum(p['value'] for p in latest.values())


def test_commands():
    """redis-cli commands: names, SELECTed database, an error reply,
    MULTI/EXEC, pub/sub; client and server spans of a command in two traces
    whose times nest."""
    requires_redis()
    workdir = tempfile.mkdtemp(prefix='otlpauto-redis-')
    script = ('SET greeting hello\nGET greeting\nLPUSH greeting x\n'
              'MULTI\nINCR counter\nINCR counter\nEXEC\n')
    try:
        with Receiver() as receiver:
            with Redis(receiver, workdir) as redis:
                batch = redis_cli(redis.port, '-n', 3, receiver=receiver, stdin=script)
                subscriber = Background(['redis-cli', '-h', '127.0.0.1', '-p', redis.port,
                                         'subscribe', 'news', 'more'], receiver,
                                        env=dict(ENV, OTLPAUTO_HOOKS=SUBSCRIBER_HOOKS),
                                        timeout=60)
                with subscriber:
                    subscriber.wait_for(r'^(more)')
                    published = redis_cli(redis.port, 'publish', 'news', 'one',
                                          receiver=receiver)
                    subscriber.wait_for(r'^(one)')
                    pong = redis_cli(redis.port, 'ping', receiver=receiver)
                calls = command_calls(redis.port)
                redis.stop()
            time.sleep(0.5)
            spans = receiver.spans
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    check(batch.returncode == 0, 'redis-cli runs the script', batch.stderr)
    check('WRONGTYPE' in batch.stdout, 'LPUSH on a string fails', batch.stdout)
    check_equal(published.stdout.strip(), '1', 'the message reached the subscriber')
    check_equal(pong.stdout.strip(), 'PONG', 'PING answered')
    redis_spans = spans_where(spans, scope=SCOPE)
    for name in ('SET', 'GET', 'LPUSH', 'MULTI', 'EXEC', 'SELECT', 'PUBLISH', 'SUBSCRIBE'):
        check_equal(len(named(redis_spans, KIND_SERVER, name)), calls.get(name),
                    f'a SERVER span per {name}')
        check_equal(len(named(redis_spans, KIND_CLIENT, name)), calls.get(name),
                    f'a CLIENT span per {name}')
    # INCR inside MULTI: answered QUEUED, run at EXEC
    check_equal(len(named(redis_spans, KIND_CLIENT, 'INCR')), 2, 'a CLIENT span per INCR')
    check_equal(len(named(redis_spans, KIND_SERVER, 'INCR')), 2, 'a SERVER span per INCR')
    for kind in (KIND_CLIENT, KIND_SERVER):
        (set_span,) = named(redis_spans, kind, 'SET')
        check_equal(attr(set_span, 'db.namespace'), '3', 'SELECTed database')
        check_equal(attr(set_span, 'error.type'), None, 'SET succeeds')
        (lpush,) = named(redis_spans, kind, 'LPUSH')
        check_equal(lpush['status_code'], STATUS_ERROR, 'error reply: error status')
        check_equal(attr(lpush, 'error.type'), 'WRONGTYPE', 'error.type: the error prefix')
        check_equal(attr(lpush, 'db.response.status_code'), 'WRONGTYPE', 'status code')
        (subscribe,) = named(redis_spans, kind, 'SUBSCRIBE')
        check(subscribe['status_code'] != STATUS_ERROR, 'SUBSCRIBE succeeds')
    check(all(attr(s, 'db.query.text') is None for s in redis_spans), 'no query text')
    # the published message is a push, not a reply: nothing ends on it
    subscriber_spans = [s for s in redis_spans
                        if s['resource'].get('process.pid') == subscriber.process.pid]
    check_equal([s['name'] for s in subscriber_spans], ['SUBSCRIBE'],
                'the subscriber: one span, its SUBSCRIBE')
    check_equal(len(named(redis_spans, KIND_CLIENT, 'PING')), 1, 'a CLIENT span per PING')
    client = named(redis_spans, KIND_CLIENT, 'GET')[0]
    server = named(redis_spans, KIND_SERVER, 'GET')[0]
    check(client['trace_id'] != server['trace_id'], 'no propagation: two traces')
    check(int(client['start']) <= int(server['start']) and
          int(server['end']) <= int(client['end']),
          'the SERVER span lies within its CLIENT span: linked by time only',
          (client, server))


def test_tls():
    """redis-cli --tls to redis-server's TLS port: a CLIENT and a SERVER span
    per command from the TLS plaintext, as over plaintext (the plain port
    reads the stats and stops the server, untraced)."""
    requires_redis()
    if not shutil.which('openssl'):
        print('openssl is missing: no TLS case', flush=True)
        return
    workdir = tempfile.mkdtemp(prefix='otlpauto-redis-')
    cert, key = (os.path.join(workdir, name) for name in ('server.crt', 'server.key'))
    req = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                          'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj',
                          '/CN=127.0.0.1', '-keyout', key, '-out', cert],
                         capture_output=True, text=True, timeout=60)
    check_equal(req.returncode, 0, 'openssl makes the server certificate')
    tls_port = free_port()
    script = 'SET greeting hello\nGET greeting\nLPUSH greeting x\nMULTI\nINCR n\nEXEC\n'
    try:
        with Receiver() as receiver:
            with Redis(receiver, workdir, tls=('--tls-port', tls_port, '--tls-cert-file', cert,
                                               '--tls-key-file', key, '--tls-auth-clients',
                                               'no')) as redis:
                batch = run_traced(['redis-cli', '--tls', '--cacert', cert, '-h', '127.0.0.1',
                                    '-p', tls_port, '-n', 3], receiver, env=TLS_ENV,
                                   timeout=30, input=script)
                calls = command_calls(redis.port)
                redis.stop()
            time.sleep(0.5)
            spans = receiver.spans
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    check(batch.returncode == 0, 'redis-cli --tls runs the script', batch.stderr)
    check('WRONGTYPE' in batch.stdout, 'LPUSH on a string fails', batch.stdout)
    check_equal(spans_where(spans, scope='otlpauto.http'), [], 'no HTTP span')
    redis_spans = spans_where(spans, scope=SCOPE)
    for name in ('SELECT', 'SET', 'GET', 'LPUSH', 'MULTI', 'INCR', 'EXEC'):
        check_equal(calls.get(name), 1, f'redis ran {name} once')
        for kind, side in ((KIND_CLIENT, 'CLIENT'), (KIND_SERVER, 'SERVER')):
            check_equal(len(named(redis_spans, kind, name)), 1,
                        f'a {side} span for {name} over TLS')
    for kind in (KIND_CLIENT, KIND_SERVER):
        (set_span,) = named(redis_spans, kind, 'SET')
        check_equal(attr(set_span, 'db.namespace'), '3', 'SELECTed database over TLS')
        (lpush,) = named(redis_spans, kind, 'LPUSH')
        check_equal(attr(lpush, 'error.type'), 'WRONGTYPE', 'error reply over TLS')
    (server,) = named(redis_spans, KIND_SERVER, 'GET')
    check_equal(attr(server, 'server.port'), tls_port, 'server.port: the TLS port')
    (client,) = named(redis_spans, KIND_CLIENT, 'GET')
    check_equal(attr(client, 'server.port'), tls_port, 'server.port (client): the TLS port')


def test():
    test_tls()
    test_commands()
    test_benchmark_plain()
    test_benchmark_pipelined()


if __name__ == '__main__':
    main(test)
