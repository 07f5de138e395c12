"""db.client.operation.duration (/v1/metrics), decoded by python3-protobuf
through tests/otlp_schema.py (transcribed from opentelemetry-proto).

- The encoder: `test_metrics --dump DIR` writes a request with an HTTP point
  and database points (two scopes), every field checked here.
- redis-benchmark and redis-cli (OTEL_TRACES_SAMPLER=always_off) against an
  untraced redis-server: no span, and the histogram counts exactly the
  commands the server counted (INFO commandstats), split by
  db.operation.name; an error reply is a series with db.response.status_code
  and error.type.
- psql (always_off) running statements, one a syntax error: a count per
  statement, split by operation and collection, the error's series with its
  SQLSTATE; `otlpauto view --metrics` of the otlp/file sink shows the
  database table.
- The mariadb client likewise, with MariaDB's error code.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import (DEFAULT_SERVICE_NAME, Receiver, builddir, check, check_equal, free_port,
                     main, otlp_schema, run_traced)
from netutil import Background

DB = 'db.client.operation.duration'
BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]
CUMULATIVE = 2
ALWAYS_OFF = {'OTEL_TRACES_SAMPLER': 'always_off', 'OTLPAUTO_HOOKS': 'sockets,dns,http'}


def dumped(name):
    with tempfile.TemporaryDirectory(prefix='otlpauto-db-metrics-') as out:
        run = subprocess.run([os.path.join(builddir(), 'tests', 'test_metrics'), '--dump', out],
                             capture_output=True, timeout=60)
        check_equal(run.returncode, 0, 'encoder: test_metrics --dump ran')
        with open(os.path.join(out, f'metrics-{name}.pb'), 'rb') as f:
            pb = otlp_schema.decode_metrics_request(f.read())
        with open(os.path.join(out, f'metrics-{name}.json'), 'rb') as f:
            json = otlp_schema.decode_metrics_json_request(f.read())
    return pb, json


def encoder():
    pb, json = dumped('db')
    check_equal(json, pb, 'encoder: the JSON request is the protobuf one')
    points = [p for p in pb if p['kind'] == 'histogram']
    check_equal([(p['name'], p['scope']['name'], p['count']) for p in points],
                [('http.server.request.duration', 'otlpauto.http', 3)]
                + [(DB, 'otlpauto.db', n) for n in (4, 1, 1, 1, 2)],
                'encoder: an HTTP point, then five database points in their own scope')
    if len(points) != 6:
        return
    db = points[1:]
    check(all(p['unit'] == 's' and p['description'] and p['temporality'] == CUMULATIVE
              for p in db), 'encoder: unit s, a description, cumulative')
    check(all(p['explicit_bounds'] == BOUNDS for p in db),
          'encoder: the database semconv bounds (1 ms to 10 s)', db[0]['explicit_bounds'])
    check_equal(len(points[0]['explicit_bounds']), 14, 'encoder: HTTP keeps its 14 bounds')
    check_equal([p['bucket_counts'] for p in db],
                [[0, 3, 1] + [0] * 7, [1] + [0] * 9, [0] * 9 + [1], [0, 1] + [0] * 8,
                 [0] * 4 + [2] + [0] * 5], 'encoder: bucket counts')
    check_equal([p['sum'] for p in db], [0.02, 0.0005, 20.0, 0.003, 0.1], 'encoder: sums')
    check_equal(db[0]['attributes'],
                {'db.system.name': 'postgresql', 'db.namespace': 'shop',
                 'db.operation.name': 'SELECT', 'db.collection.name': 'accounts'},
                'encoder: a query without error')
    check_equal(db[1]['attributes'],
                {'db.system.name': 'postgresql', 'db.namespace': 'shop',
                 'db.collection.name': 'accounts', 'db.response.status_code': '42601',
                 'error.type': '42601'}, 'encoder: an error reply: its status code')
    check_equal(db[2]['attributes'],
                {'db.system.name': 'redis', 'db.namespace': '0', 'db.operation.name': 'GET',
                 'server.address': '::1', 'server.port': 6379, 'error.type': 'ECONNRESET'},
                'encoder: an operation left without a reply: its errno')
    check_equal(db[3]['attributes'],
                {'db.system.name': 'redis', 'db.namespace': '0', 'db.operation.name': 'GET',
                 'server.address': '127.0.0.1', 'server.port': 6379,
                 'db.response.status_code': 'WRONGTYPE', 'error.type': 'WRONGTYPE'},
                'encoder: an IPv4 server and an error prefix')
    check_equal(db[4]['attributes'], {'otel.metric.overflow': True},
                'encoder: the overflow series')


def latest_db_points(requests):
    """The last point of each series of each process."""
    latest = {}
    for request in requests:
        for p in request.spans:
            if p['name'] != DB:
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


# ---- Redis

def redis_cli(port, *args, receiver=None, stdin=None):
    argv = ['redis-cli', '-h', '127.0.0.1', '-p', str(port)] + [str(a) for a in args]
    if receiver is not None:
        return run_traced(argv, receiver, env=ALWAYS_OFF, timeout=60, input=stdin)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, input=stdin)


def command_calls(port):
    """Calls per command name (upper case) from INFO commandstats; a
    subcommand's (config|get) count as its command's."""
    stats = redis_cli(port, 'info', 'commandstats').stdout
    calls = {}
    for name, n in re.findall(r'^cmdstat_(\w+)(?:\|\w+)?:calls=(\d+)', stats, re.M):
        calls[name.upper()] = calls.get(name.upper(), 0) + int(n)
    return calls


def wait_ping(port, server, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end and server.process.poll() is None:
        if redis_cli(port, 'ping').stdout.strip() == 'PONG':
            return True
        time.sleep(0.1)
    return False


def redis():
    """redis-benchmark (pipelined and not) and redis-cli under the shim with
    always_off, redis-server untraced: the metric's counts per operation are
    the server's own counts of what they sent."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix='otlpauto-db-metrics-redis-') as workdir, \
            Receiver() as untraced:
        server = Background(['redis-server', '--port', port, '--bind', '127.0.0.1', '--save', '',
                             '--appendonly', 'no', '--dir', workdir], untraced, timeout=180,
                            preload=False)
        with server:
            check(wait_ping(port, server), 'redis answers PING', server.stdout[-2000:])
            before = command_calls(port)
            with Receiver() as receiver:
                bench = run_traced(['redis-benchmark', '-h', '127.0.0.1', '-p', str(port),
                                    '-q', '-t', 'set,get,lpush', '-n', '500', '-c', '4'],
                                   receiver, env=ALWAYS_OFF, timeout=120)
                piped = run_traced(['redis-benchmark', '-h', '127.0.0.1', '-p', str(port),
                                    '-q', '-t', 'incr', '-n', '400', '-c', '2', '-P', '8'],
                                   receiver, env=ALWAYS_OFF, timeout=120)
                cli = redis_cli(port, receiver=receiver,
                                stdin='SELECT 3\nSET k v\nLPUSH k x\nGET k\n')
                # each process sent its metrics at exit, before it ended
                requests = receiver.metric_requests
                spans = receiver.spans
            after = command_calls(port)
            shutdown = redis_cli(port, 'shutdown', 'nosave')
            check_equal(shutdown.returncode, 0, 'redis: shutdown accepted')
            server.wait(60)
    check((bench.returncode, piped.returncode, cli.returncode) == (0, 0, 0),
          'redis: the clients ran', bench.stderr + piped.stderr + cli.stderr)
    check('WRONGTYPE' in cli.stdout, 'redis: LPUSH on a string fails', cli.stdout)
    check_equal(len(spans), 0, 'redis: always_off sends no span')
    points = latest_db_points(requests)
    # the one INFO after is the untraced redis-cli's own
    sent = {name: calls - before.get(name, 0) for name, calls in after.items()
            if calls > before.get(name, 0)}
    sent['INFO'] -= 1
    sent = {name: calls for name, calls in sent.items() if calls}
    check(sent.get('SET', 0) >= 500 and sent.get('INCR') == 400,
          'redis: the server counted what the benchmarks sent', sent)
    check_equal(counts_by(points, 'db.operation.name'), sent,
                'redis: a count per command the server ran, by db.operation.name')
    check_equal({p['attributes']['db.system.name'] for p in points}, {'redis'},
                'redis: db.system.name')
    check_equal({(p['attributes'].get('server.address'), p['attributes'].get('server.port'))
                 for p in points}, {('127.0.0.1', int(port))},
                'redis: server.address and server.port')
    errors = [p for p in points if 'error.type' in p['attributes']]
    check_equal([(p['attributes']['db.operation.name'], p['attributes']['db.namespace'],
                  p['attributes']['db.response.status_code'], p['attributes']['error.type'],
                  p['count']) for p in errors],
                [('LPUSH', '3', 'WRONGTYPE', 'WRONGTYPE', 1)],
                'redis: the error reply is a series of its own, in database 3')
    check(all(p['explicit_bounds'] == BOUNDS for p in points), 'redis: the semconv bounds')


# ---- SQL: (statement, db.operation.name, db.collection.name, status code)
PG_SCRIPT = [
    ('CREATE TABLE accounts (id int PRIMARY KEY, owner text)', 'CREATE', 'accounts', None),
    ("INSERT INTO accounts VALUES (1, 'alice')", 'INSERT', 'accounts', None),
    ("INSERT INTO accounts VALUES (2, 'bob')", 'INSERT', 'accounts', None),
    ('SELECT owner FROM accounts WHERE id = 1', 'SELECT', 'accounts', None),
    ('SELEC 1', 'SELEC', None, '42601'),
    ('SELECT owner FROM accounts WHERE id = 2', 'SELECT', 'accounts', None),
]
MYSQL_SCRIPT = [(statement, operation, collection, '1064' if code else None)
                for statement, operation, collection, code in PG_SCRIPT]


def expected_series(script, system, namespace, port):
    """{attributes as sorted items: count} of a script's statements."""
    series = {}
    for _, operation, collection, code in script:
        attributes = {'db.system.name': system, 'db.namespace': namespace,
                      'db.operation.name': operation, 'server.address': '127.0.0.1',
                      'server.port': int(port)}
        if collection:
            attributes['db.collection.name'] = collection
        if code:
            attributes.update({'db.response.status_code': code, 'error.type': code})
        key = tuple(sorted(attributes.items()))
        series[key] = series.get(key, 0) + 1
    return series


def series_of(points):
    return {tuple(sorted(p['attributes'].items())): p['count'] for p in points}


def postgres():
    """psql (always_off, the otlp/file sink) runs PG_SCRIPT one statement at
    a time: a count per statement, the syntax error a series with its
    SQLSTATE; `otlpauto view --metrics` shows them per operation."""
    from test_postgres import Postgres  # pylint: disable=import-outside-toplevel
    script = ''.join(statement + ';\n' for statement, _, _, _ in PG_SCRIPT)
    with tempfile.TemporaryDirectory(prefix='otlpauto-db-metrics-pg-') as out, \
            Receiver() as server_spans:
        path = os.path.join(out, 'psql.jsonl')
        with Postgres(server_spans) as pg:
            argv = [os.path.join(pg.bindir, 'psql'), '-X', '-h', '127.0.0.1', '-p',
                    str(pg.port), '-U', 'postgres', '-d', 'postgres', '-f', '-']
            run = run_traced(argv, None, env=dict(ALWAYS_OFF, OTEL_TRACES_EXPORTER='otlp/file',
                                                  OTLPAUTO_FILE=path),
                             timeout=60, input=script)
            pg.stop()
        with open(path, encoding='utf-8') as f:
            lines = [line for line in f.read().splitlines() if line]
        view = subprocess.run([os.environ['OTLPAUTO_CLI'], 'view', '--metrics', path],
                              capture_output=True, text=True, timeout=60)
    check('syntax error' in run.stderr, 'postgres: the syntax error fails', run.stderr)
    check_equal([line.startswith('{"resourceMetrics"') for line in lines], [True],
                'postgres: the file has one metrics line and no span')
    points = [p for line in lines for p in otlp_schema.decode_metrics_json_request(line)
              if p['name'] == DB]
    check_equal(series_of(points), expected_series(PG_SCRIPT, 'postgresql', 'postgres', pg.port),
                'postgres: a count per statement, by operation and collection; the error '
                'with its SQLSTATE')
    check_equal((view.returncode, view.stderr), (0, ''), 'view --metrics ran')
    rows = [line.split() for line in view.stdout.splitlines()]
    header = ['service', 'db.system', 'operation', 'operations', 'rate/s', 'errors']
    check(len(rows) >= 5 and rows[0][:6] == header, 'view --metrics: the database table',
          view.stdout)
    table = {(r[1], r[2]): (r[3], r[5]) for r in rows[1:5] if len(r) == 9
             and r[0] == DEFAULT_SERVICE_NAME}
    check_equal(table, {('postgresql', 'CREATE'): ('1', '0.0%'),
                        ('postgresql', 'INSERT'): ('2', '0.0%'),
                        ('postgresql', 'SELEC'): ('1', '100.0%'),
                        ('postgresql', 'SELECT'): ('2', '0.0%')},
                'view --metrics: operations and errors per operation')


def mariadb():
    """The mariadb client (always_off, --force) runs MYSQL_SCRIPT: a count
    per statement, the syntax error a series with its error code."""
    from test_mysql import MariaDB  # pylint: disable=import-outside-toplevel
    script = ''.join(statement + ';\n' for statement, _, _, _ in MYSQL_SCRIPT)
    with Receiver() as server_spans, Receiver() as receiver:
        with MariaDB(server_spans) as db:
            made = db.client('-e', 'CREATE DATABASE shop')
            check(made.returncode == 0, 'mariadb: the database is made', made.stderr)
            argv = ['mariadb', '-h127.0.0.1', f'-P{db.port}', '-uroot', '--force', 'shop']
            run = run_traced(argv, receiver, env=ALWAYS_OFF, timeout=60, input=script)
            db.stop()
        requests = receiver.metric_requests
        spans = receiver.spans
    check('SQL syntax' in run.stderr, 'mariadb: the syntax error fails', run.stderr)
    check_equal(len(spans), 0, 'mariadb: always_off sends no span')
    check_equal(series_of(latest_db_points(requests)),
                expected_series(MYSQL_SCRIPT, 'mariadb', 'shop', db.port),
                'mariadb: a count per statement, by operation and collection; the error '
                'with its code')


def test():
    encoder()
    if shutil.which('redis-server') and shutil.which('redis-benchmark'):
        redis()
    from test_postgres import pg_bindir  # pylint: disable=import-outside-toplevel
    if pg_bindir() and (os.geteuid() != 0 or shutil.which('setpriv')):
        postgres()
    if shutil.which('mariadbd') or os.path.exists('/usr/sbin/mariadbd'):
        mariadb()


if __name__ == '__main__':
    main(test)
