"""redis-server under the shim, loaded by redis-benchmark (also under the
shim): the benchmark completes, redis keeps serving and shuts down cleanly,
and the only spans are the benchmark's connects (redis' protocol is not
HTTP: no HTTP span)."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from harness import Receiver, check, check_equal, free_port, main, run_traced, skip
from netutil import KIND_INTERNAL, Background, attr, spans_where

REQUESTS = 20000
CLIENTS = 4
TESTS = 'set,get,incr,lpush,lpop'


def redis_cli(port, *args):
    return subprocess.run(['redis-cli', '-h', '127.0.0.1', '-p', str(port)] + list(args),
                          capture_output=True, text=True, timeout=30)


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


def test():
    for tool in ('redis-server', 'redis-benchmark', 'redis-cli'):
        if not shutil.which(tool):
            skip(f'{tool} is not installed')
    workdir = tempfile.mkdtemp(prefix='otlpauto-redis-')
    port = free_port()
    env = {'OTLPAUTO_HOOKS': 'sockets,dns,http'}
    try:
        with Receiver() as receiver:
            server = Background(['redis-server', '--port', port, '--bind', '127.0.0.1',
                                 '--save', '', '--appendonly', 'no', '--dir', workdir],
                                receiver, env=env, timeout=180)
            with server:
                check(wait_ping(port, server), 'redis answers PING', server.stdout[-2000:])
                bench = run_traced(['redis-benchmark', '-h', '127.0.0.1', '-p', port, '-n',
                                    REQUESTS, '-c', CLIENTS, '-t', TESTS, '-q'],
                                   receiver, env=env, timeout=150)
                pong = redis_cli(port, 'ping').stdout.strip()
                stats = redis_cli(port, 'info', 'stats').stdout
                shutdown = redis_cli(port, 'shutdown', 'nosave')
                code = server.wait(60)
            time.sleep(0.5)
            spans = receiver.spans
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    check_equal(bench.returncode, 0, 'redis-benchmark completes', )
    done = re.findall(r'^([A-Z_]+).*requests per second', bench.stdout.replace('\r', '\n'), re.M)
    check_equal(len(done), len(TESTS.split(',')), 'every benchmark test finished',)
    check_equal(pong, 'PONG', 'redis still serves after the load')
    commands = int(re.search(r'total_commands_processed:(\d+)', stats).group(1)) if stats else 0
    check(commands >= REQUESTS * len(TESTS.split(',')), 'redis processed every command',
          commands)
    check_equal(shutdown.returncode, 0, 'shutdown accepted')
    check_equal(code, 0, 'redis-server exits 0')
    check_equal(spans_where(spans, scope='otlpauto.http'), [], 'no HTTP span')
    connects = spans_where(spans, KIND_INTERNAL, 'otlpauto.sockets')
    check_equal(len(connects), len(spans), 'only connect spans')
    check(len(connects) >= CLIENTS * len(TESTS.split(',')), 'a connect span per client',
          len(connects))
    check(all(attr(s, 'network.peer.port') == port for s in connects), 'connects to redis')


if __name__ == '__main__':
    main(test)
