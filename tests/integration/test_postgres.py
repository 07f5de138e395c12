"""PostgreSQL spans from the wire: a PostgreSQL server started in a temporary
data directory (initdb as an unprivileged user) on a loopback port, psql and
pgbench (simple, extended and prepared query protocol), each under the shim. The
backends the postmaster forks get a SERVER span per query cycle, the clients
a CLIENT span per query cycle, with the database attributes and sanitised
query texts; errors carry their SQLSTATE. psql asks for TLS first (an
SSLRequest) and the server, without TLS, answers 'N': the connection stays
plaintext and traced. A server with TLS (ssl=on, a certificate made in the
test's directory) answers 'S': the startup message and the queries then go
inside TLS, and the same spans come from the plaintext of SSL_read and
SSL_write. A literal password never reaches a span. With
OTLPAUTO_DB_PROPAGATION=comment a traced client appends sqlcommenter's
traceparent comment to its queries, in plaintext and inside TLS: its
backend's spans are its children."""

import collections
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import Receiver, builddir, check, check_equal, free_port, main, preload_value, \
    run_traced, skip
from netutil import KIND_CLIENT, KIND_SERVER, STATUS_ERROR, Background, attr, spans_where

SCOPE = 'otlpauto.postgresql'
ENV = {'OTLPAUTO_HOOKS': 'sockets,dns,http'}
TLS_ENV = {'OTLPAUTO_HOOKS': 'sockets,dns,http,tls'}
PASSWORD = 'hunter2-do-not-export'
TRANSACTIONS = 25
CLIENTS = 2
# Each statement a Query of its own (psql -f sends them one by one):
# (statement, span name, SQLSTATE or None).
SCRIPT = [
    ('CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int)',
     'CREATE accounts', None),
    ("INSERT INTO accounts VALUES (1, 'alice', 100)", 'INSERT accounts', None),
    ("INSERT INTO accounts VALUES (2, 'bob', 50)", 'INSERT accounts', None),
    ('SELECT owner, balance FROM accounts WHERE id = 1', 'SELECT accounts', None),
    ('UPDATE accounts SET balance = balance + 7 WHERE id = 2', 'UPDATE accounts', None),
    ("INSERT INTO accounts VALUES (1, 'mallory', 0)", 'INSERT accounts', '23505'),
    ('SELEC 1', 'SELEC', '42601'),
    ('CREATE USER probe', 'CREATE', None),
    (f"ALTER USER probe PASSWORD '{PASSWORD}'", 'ALTER', None),
    ('DELETE FROM accounts WHERE id = 2', 'DELETE accounts', None),
]
BENCH_SCRIPT = ('\\set id random(1, 100)\n'
                'SELECT n FROM counters WHERE id = :id;\n'
                'UPDATE counters SET n = n + 1 WHERE id = :id;\n')


def pg_bindir():
    dirs = sorted(glob.glob('/usr/lib/postgresql/*/bin'))
    return dirs[-1] if dirs else None


def as_postgres_user():
    """Runs a command as nobody when we are root: initdb and postgres refuse root."""
    if os.geteuid() != 0:
        return []
    return ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']


class Postgres:
    """A fresh cluster in a temporary directory, its postmaster under the shim."""

    def __init__(self, receiver, tls=False):
        self.bindir = pg_bindir()
        self.env = TLS_ENV if tls else ENV
        self.workdir = tempfile.mkdtemp(prefix='otlpauto-pg-')
        self.datadir = os.path.join(self.workdir, 'data')
        if os.geteuid() == 0:
            os.chown(self.workdir, 65534, 65534)
        self.port = free_port()
        initdb = subprocess.run(as_postgres_user() + [
            os.path.join(self.bindir, 'initdb'), '-D', self.datadir, '-U', 'postgres',
            '-A', 'trust', '--no-sync', '--no-instructions'],
            capture_output=True, text=True, timeout=120)
        check_equal(initdb.returncode, 0, 'initdb creates the cluster')
        if initdb.returncode:
            print(initdb.stderr[-2000:])
        ssl = ['-c', 'ssl=off']
        if tls:
            cert, key = (os.path.join(self.workdir, name) for name in ('server.crt', 'server.key'))
            req = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                                  'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj',
                                  '/CN=127.0.0.1', '-keyout', key, '-out', cert],
                                 capture_output=True, text=True, timeout=60)
            check_equal(req.returncode, 0, 'openssl makes the server certificate')
            os.chmod(key, 0o600)
            if os.geteuid() == 0:
                os.chown(key, 65534, 65534)
                os.chown(cert, 65534, 65534)
            ssl = ['-c', 'ssl=on', '-c', f'ssl_cert_file={cert}', '-c', f'ssl_key_file={key}']
        self.server = Background(as_postgres_user() + [
            os.path.join(self.bindir, 'postgres'), '-D', self.datadir, '-p', self.port,
            '-k', self.workdir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'] + ssl,
            receiver,
            # a sanitized build's runtime first: postgres crashes without
            env=dict(self.env, LD_PRELOAD=preload_value()), timeout=240,
            stop_signal=signal.SIGINT)

    def psql(self, *args, receiver=None, stdin=None, env=None):
        argv = [os.path.join(self.bindir, 'psql'), '-X', '-h', '127.0.0.1', '-p',
                str(self.port), '-U', 'postgres', '-d', 'postgres'] + [str(a) for a in args]
        if receiver is not None:
            return run_traced(argv, receiver, env=dict(self.env, **(env or {})), timeout=60,
                              input=stdin)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, input=stdin)

    def __enter__(self):
        self.server.__enter__()
        # pg_isready sends a startup packet and no query: no span
        end = time.monotonic() + 60
        while time.monotonic() < end and self.server.process.poll() is None:
            ready = subprocess.run([os.path.join(self.bindir, 'pg_isready'), '-h', '127.0.0.1',
                                    '-p', str(self.port), '-t', '5'],
                                   capture_output=True, timeout=30)
            if ready.returncode == 0:
                return self
            time.sleep(0.2)
        check(False, 'postgres accepts connections', self.server.stderr[-2000:])
        raise AssertionError('postgres did not start')

    def stop(self):
        """Fast shutdown (SIGINT to the postmaster, by its pid): the backends
        have ended with their clients and sent their spans."""
        check_equal(self.server.stop(grace=60), 0, 'postgres shuts down cleanly')

    def __exit__(self, *exc):
        self.server.__exit__(*exc)
        shutil.rmtree(self.workdir, ignore_errors=True)


def requires_postgres():
    if not pg_bindir():
        skip('PostgreSQL is not installed')
    if os.geteuid() == 0 and not shutil.which('setpriv'):
        skip('setpriv is missing: initdb cannot run unprivileged')


def named(spans, kind, name):
    return [s for s in spans if s['kind'] == kind and s['name'] == name]


def test_psql(tls=False):
    """psql runs SCRIPT statement by statement: one CLIENT span in psql and
    one SERVER span in the backend per statement, named by its summary,
    errors with their SQLSTATE; no literal in any span. With tls the
    server has TLS on and psql requires it (sslmode=require fails
    without): the same spans come from the TLS plaintext."""
    requires_postgres()
    if tls and not shutil.which('openssl'):
        print('openssl is missing: no TLS case', flush=True)
        return
    script = ''.join(statement + ';\n' for statement, _, _ in SCRIPT)
    with Receiver() as receiver:
        with Postgres(receiver, tls=tls) as pg:
            run = pg.psql('-f', '-', receiver=receiver, stdin=script,
                          env={'PGSSLMODE': 'require' if tls else 'prefer'})
            pg.stop()
        time.sleep(0.5)
        spans = receiver.spans

    check_equal(run.returncode, 0, 'psql runs the script' + (' over TLS' if tls else ''))
    check('duplicate key' in run.stderr and 'syntax error' in run.stderr,
          'the two failing statements fail', run.stderr)
    pg_spans = spans_where(spans, scope=SCOPE)
    check_equal(spans_where(spans, scope='otlpauto.http'), [], 'no HTTP span')
    for kind, side in ((KIND_CLIENT, 'CLIENT'), (KIND_SERVER, 'SERVER')):
        mine = [s for s in pg_spans if s['kind'] == kind]
        # psql sends nothing else; the readiness probe sends no query
        check_equal(len(mine), len(SCRIPT), f'a {side} span per statement')
        for (statement, name, sqlstate), span in zip(SCRIPT, sorted(
                mine, key=lambda s: s['start'])):
            check_equal(span['name'], name, f'{side} span name of {statement!r}')
            check_equal(attr(span, 'db.system.name'), 'postgresql', 'db.system.name')
            check_equal(attr(span, 'db.namespace'), 'postgres', 'db.namespace')
            check_equal(attr(span, 'db.query.summary'), name, 'db.query.summary')
            check_equal(attr(span, 'db.response.status_code'), sqlstate,
                        f'SQLSTATE of {statement!r}')
            check_equal(attr(span, 'error.type'), sqlstate, f'error.type of {statement!r}')
            check_equal(span['status_code'] == STATUS_ERROR, sqlstate is not None,
                        f'error status of {statement!r}')
        (select,) = named(mine, kind, 'SELECT accounts')
        check_equal(attr(select, 'db.query.text'),
                    'SELECT owner, balance FROM accounts WHERE id = ?;', 'sanitised query text')
        check_equal(attr(select, 'db.operation.name'), 'SELECT', 'db.operation.name')
        check_equal(attr(select, 'db.collection.name'), 'accounts', 'db.collection.name')
        (alter,) = named(mine, kind, 'ALTER')
        check_equal(attr(alter, 'db.query.text'), 'ALTER USER probe PASSWORD ?;',
                    'the password is a literal: replaced')
    server = [s for s in pg_spans if s['kind'] == KIND_SERVER]
    check_equal(attr(server[0], 'server.port'), int(pg.port), 'server.port (server)')
    check_equal(attr(server[0], 'client.address'), '127.0.0.1', 'client.address')
    client = [s for s in pg_spans if s['kind'] == KIND_CLIENT]
    check_equal(attr(client[0], 'server.address'), '127.0.0.1', 'server.address')
    check_equal(attr(client[0], 'server.port'), int(pg.port), 'server.port (client)')
    check(PASSWORD not in repr(spans), 'the password is in no span')
    check('alice' not in repr(pg_spans), 'no string literal is in a span')


def test_statement_off():
    """OTLPAUTO_DB_STATEMENT=off: the spans keep their summary, no query text."""
    requires_postgres()
    with Receiver() as receiver:
        with Postgres(receiver) as pg:
            # on stdin: a command line is a span attribute (the process span's)
            run = run_traced(
                [os.path.join(pg.bindir, 'psql'), '-X', '-h', '127.0.0.1', '-p', pg.port,
                 '-U', 'postgres', '-f', '-'], receiver,
                env=dict(ENV, OTLPAUTO_DB_STATEMENT='off'), timeout=60,
                input=f"ALTER USER postgres PASSWORD '{PASSWORD}'")
            pg.stop()
        time.sleep(0.5)
        spans = receiver.spans
    check_equal(run.returncode, 0, 'psql runs')
    (client,) = spans_where(spans, KIND_CLIENT, SCOPE)
    check_equal(client['name'], 'ALTER', 'the summary names the span')
    check_equal(attr(client, 'db.query.text'), None, 'no query text')
    (server,) = spans_where(spans, KIND_SERVER, SCOPE)
    check_equal(attr(server, 'db.query.text'), 'ALTER USER postgres PASSWORD ?',
                'the server (not set off) sanitises')
    check(PASSWORD not in repr(spans), 'the password is in no span')


def test_sqlcommenter():
    """A query carrying sqlcommenter's traceparent comment: the backend's
    SERVER span continues that trace; the comment is not in the text. One
    whose comment says unsampled gets no span (parent-based sampling)."""
    requires_postgres()
    trace_id, span_id = '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7'
    query = f"SELECT 1 /*traceparent='00-{trace_id}-{span_id}-01'*/"
    with Receiver() as receiver:
        with Postgres(receiver) as pg:
            run = pg.psql('-c', query)
            unsampled = pg.psql('-c', f"SELECT 2 /*traceparent='00-{trace_id}-{span_id}-00'*/")
            pg.stop()
        time.sleep(0.5)
        spans = receiver.spans
    check_equal(run.returncode, 0, 'the commented query runs')
    check_equal(unsampled.returncode, 0, 'the unsampled one runs')
    (server,) = spans_where(spans, KIND_SERVER, SCOPE)
    check_equal(server['trace_id'], trace_id, 'the SERVER span is in the comment\'s trace')
    check_equal(server['parent_span_id'], span_id, 'its parent is the comment\'s span')
    check_equal(attr(server, 'db.query.text'), 'SELECT ?', 'the comment is not in the text')


def test_pgbench(mode):
    """pgbench -M mode: a CLIENT and a SERVER span per statement run."""
    requires_postgres()
    with Receiver() as receiver:
        with Postgres(receiver) as pg:
            setup = pg.psql('-c', 'CREATE TABLE counters (id int PRIMARY KEY, n int)', '-c',
                            'INSERT INTO counters SELECT g, 0 FROM generate_series(1, 100) g')
            check(setup.returncode == 0, 'the table is made', setup.stderr)
            script = os.path.join(pg.workdir, 'bench.sql')
            with open(script, 'w', encoding='utf-8') as f:
                f.write(BENCH_SCRIPT)
            bench = run_traced([os.path.join(pg.bindir, 'pgbench'), '-n', '-h', '127.0.0.1',
                                '-p', pg.port, '-U', 'postgres', '-M', mode, '-c', CLIENTS,
                                '-t', TRANSACTIONS, '-f', script, 'postgres'],
                               receiver, env=ENV, timeout=120)
            total = pg.psql('-At', '-c', 'SELECT sum(n) FROM counters').stdout.strip()
            pg.stop()
        time.sleep(0.5)
        spans = receiver.spans

    runs = CLIENTS * TRANSACTIONS
    # -M prepared: each client prepares each statement once, in a cycle of
    # its own (Parse, Sync); its executions bind it by name
    prepares = CLIENTS if mode == 'prepared' else 0
    check_equal(bench.returncode, 0, f'pgbench -M {mode} completes')
    check_equal(total, str(runs), 'every UPDATE ran')
    pg_spans = spans_where(spans, scope=SCOPE)
    # the server also runs the untraced psql's CREATE, INSERT and SELECT sum
    for kind, side, extra in ((KIND_CLIENT, 'CLIENT', 0), (KIND_SERVER, 'SERVER', 1)):
        selects = named(pg_spans, kind, 'SELECT counters')
        updates = named(pg_spans, kind, 'UPDATE counters')
        check_equal(len(selects), runs + prepares + extra,
                    f'a {side} span per SELECT (-M {mode})')
        check_equal(len(updates), runs + prepares, f'a {side} span per UPDATE (-M {mode})')
        check_equal(len([s for s in pg_spans if s['kind'] == kind]),
                    2 * (runs + prepares) + 3 * extra, f'no other {side} span (-M {mode})')
        texts = collections.Counter(attr(s, 'db.query.text') for s in updates)
        text = ('UPDATE counters SET n = n + ? WHERE id = ?;' if mode == 'simple'
                else 'UPDATE counters SET n = n + ? WHERE id = $1;')
        check_equal(texts, {text: prepares, None: runs} if prepares else {text: runs},
                    f'query texts (-M {mode}: executions of a prepared statement have none)')
        check(all(s['status_code'] != STATUS_ERROR for s in selects + updates),
              f'no error (-M {mode})')


COMMENT = re.compile(r" /\*traceparent='00-([0-9a-f]{32})-([0-9a-f]{16})-01'\*/")


def test_propagation():
    """OTLPAUTO_DB_PROPAGATION=comment: psql's queries reach the server with
    a traceparent comment naming psql's CLIENT span (the server says what it
    received: current_query()), so each SERVER span is that span's child in
    its trace; the recorded texts have no comment; a query that carries one
    keeps its own. Without the variable, or without tracecontext in
    OTEL_PROPAGATORS, nothing is added: two traces."""
    requires_postgres()
    own = "SELECT 3 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/"
    with Receiver() as receiver:
        with Postgres(receiver) as pg:
            on = dict(ENV, OTLPAUTO_DB_PROPAGATION='comment', OTEL_LOG_LEVEL='debug')
            argv = [os.path.join(pg.bindir, 'psql'), '-X', '-At', '-h', '127.0.0.1', '-p',
                    pg.port, '-U', 'postgres', '-d', 'postgres']
            commented = run_traced(argv + ['-c', 'SELECT current_query();'], receiver,
                                   env=on, timeout=60)
            kept = run_traced(argv + ['-c', own], receiver, env=on, timeout=60)
            plain = run_traced(argv + ['-c', 'SELECT current_query()'], receiver, env=ENV,
                               timeout=60)
            no_tracecontext = run_traced(argv + ['-c', 'SELECT current_query()'], receiver,
                                         env=dict(on, OTEL_PROPAGATORS='baggage'), timeout=60)
            pg.stop()
        time.sleep(0.5)
        spans = spans_where(receiver.spans, scope=SCOPE)

    check_equal(commented.returncode, 0, 'the query with a comment runs')
    received = commented.stdout.strip()
    match = COMMENT.search(received)
    check(received.startswith('SELECT current_query() /*traceparent=') and
          received.endswith("'*/;"), 'the comment goes before the final semicolon', received)
    clients = sorted(spans_where(spans, KIND_CLIENT), key=lambda s: s['start'])
    servers = sorted(spans_where(spans, KIND_SERVER), key=lambda s: s['start'])
    check_equal(len(clients), 4, 'a CLIENT span per psql')
    check_equal(len(servers), 4, 'a SERVER span per query')
    check_equal(no_tracecontext.stdout.strip(), 'SELECT current_query()',
                'without tracecontext in OTEL_PROPAGATORS the query goes as written')
    # the exit summary counts the queries sent with and without a comment
    for run, line in ((commented, 'otlpauto: database queries: 1 sent with their span\'s '
                       'traceparent comment, 0 without'),
                      (kept, 'otlpauto: database queries: 0 sent with their span\'s '
                       'traceparent comment, 1 without'),
                      (no_tracecontext, None)):
        check_equal([l for l in run.stderr.splitlines()
                     if l.startswith('otlpauto: database queries: ')], [line] if line else [],
                    'the debug summary of comments')
    if match and len(clients) == 4 and len(servers) == 4:
        check_equal(match.groups(), (clients[0]['trace_id'], clients[0]['span_id']),
                    'the comment names the CLIENT span')
        check_equal((servers[0]['trace_id'], servers[0]['parent_span_id']),
                    (clients[0]['trace_id'], clients[0]['span_id']),
                    'the SERVER span is the CLIENT span\'s child')
        check_equal(attr(clients[0], 'db.query.text'), 'SELECT current_query();',
                    'the CLIENT span\'s text has no comment')
        check_equal(attr(servers[0], 'db.query.text'), 'SELECT current_query();',
                    'nor the SERVER span\'s')
        check_equal((servers[1]['trace_id'], servers[1]['parent_span_id']),
                    ('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7'),
                    'a query with its own comment gets no other')
        check_equal(plain.stdout.strip(), 'SELECT current_query()',
                    'without OTLPAUTO_DB_PROPAGATION the query goes as written')
        check(servers[2]['trace_id'] != clients[2]['trace_id'] and
              servers[2]['parent_span_id'] == '',
              'without it the SERVER span is a root of its own trace', servers[2])


def test_propagation_tls():
    """The same inside TLS (sslmode=require against a server with ssl=on):
    psql's query is written with SSL_write, the comment goes into the
    plaintext, the SERVER span (from SSL_read's plaintext) is the CLIENT
    span's child and neither text has the comment."""
    requires_postgres()
    if not shutil.which('openssl'):
        print('openssl is missing: no TLS case', flush=True)
        return
    with Receiver() as receiver:
        with Postgres(receiver, tls=True) as pg:
            run = pg.psql('-At', '-c', 'SELECT current_query(), ssl FROM pg_stat_ssl '
                          'WHERE pid = pg_backend_pid();', receiver=receiver,
                          env={'PGSSLMODE': 'require', 'OTLPAUTO_DB_PROPAGATION': 'comment',
                               'OTEL_LOG_LEVEL': 'debug'})
            pg.stop()
        time.sleep(0.5)
        spans = spans_where(receiver.spans, scope=SCOPE)

    check(run.returncode == 0, 'the query runs over TLS', run.stderr)
    received = run.stdout.strip()
    match = COMMENT.search(received)
    check(match and received.endswith("'*/;|t"), 'the server received the comment, over TLS',
          received)
    check_equal([l for l in run.stderr.splitlines() if 'database queries' in l],
                ['otlpauto: database queries: 1 sent with their span\'s traceparent comment, '
                 '0 without'], 'the debug summary counts the comment')
    clients, servers = spans_where(spans, KIND_CLIENT), spans_where(spans, KIND_SERVER)
    check_equal(len(clients), 1, 'a CLIENT span')
    check_equal(len(servers), 1, 'a SERVER span')
    if match and len(clients) == 1 and len(servers) == 1:
        check_equal(match.groups(), (clients[0]['trace_id'], clients[0]['span_id']),
                    'the comment names the CLIENT span')
        check_equal((servers[0]['trace_id'], servers[0]['parent_span_id']),
                    (clients[0]['trace_id'], clients[0]['span_id']),
                    'the SERVER span is the CLIENT span\'s child, over TLS')
        text = 'SELECT current_query(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();'
        check_equal(attr(clients[0], 'db.query.text'), text, 'the CLIENT text has no comment')
        check_equal(attr(servers[0], 'db.query.text'), text, 'the SERVER text has no comment')


def test_pgbench_propagation(cut=None, tls=False):
    """pgbench -M extended with OTLPAUTO_DB_PROPAGATION=comment: every Parse
    gets the comment; each SERVER span is the child of the CLIENT span of
    the same statement, in its trace. With `cut`, every send pgbench's shim
    makes takes at most that many bytes and every second one on its
    non-blocking socket fails with EAGAIN (tests/programs/shortio.c): the
    rest of a length field and the comment go with later writes; inside TLS
    (tls), OpenSSL's record writes are cut instead, and its SSL_write fails
    until repeated with the same bytes."""
    requires_postgres()
    if tls and not shutil.which('openssl'):
        print('openssl is missing: no TLS case', flush=True)
        return
    env = dict(TLS_ENV if tls else ENV, OTLPAUTO_DB_PROPAGATION='comment',
               OTEL_LOG_LEVEL='debug')
    if tls:
        env['PGSSLMODE'] = 'require'
    if cut:
        shortio = str(builddir() / 'tests' / 'programs' / 'libshortio.so')
        env.update(SHORTIO_MAX=str(cut), SHORTIO_EAGAIN='1',
                   LD_PRELOAD=f'{preload_value()}:{shortio}')
    how = (f' (sends cut to {cut} bytes)' if cut else '') + (' over TLS' if tls else '')
    with Receiver() as receiver:
        with Postgres(receiver, tls=tls) as pg:
            setup = pg.psql('-c', 'CREATE TABLE counters (id int PRIMARY KEY, n int)', '-c',
                            'INSERT INTO counters SELECT g, 0 FROM generate_series(1, 100) g')
            check(setup.returncode == 0, 'the table is made', setup.stderr)
            script = os.path.join(pg.workdir, 'bench.sql')
            with open(script, 'w', encoding='utf-8') as f:
                f.write(BENCH_SCRIPT)
            bench = run_traced([os.path.join(pg.bindir, 'pgbench'), '-n', '-h', '127.0.0.1',
                                '-p', pg.port, '-U', 'postgres', '-M', 'extended', '-c',
                                CLIENTS, '-t', TRANSACTIONS, '-f', script, 'postgres'],
                               receiver, env=env, timeout=120)
            total = pg.psql('-At', '-c', 'SELECT sum(n) FROM counters').stdout.strip()
            pg.stop()
        time.sleep(0.5)
        spans = spans_where(receiver.spans, scope=SCOPE)

    runs = CLIENTS * TRANSACTIONS
    check_equal(bench.returncode, 0, 'pgbench -M extended completes' + how)
    check_equal(total, str(runs), 'every UPDATE ran' + how)
    clients = {s['span_id']: s for s in spans_where(spans, KIND_CLIENT)}
    bench_names = ('SELECT counters', 'UPDATE counters')
    servers = [s for s in spans_where(spans, KIND_SERVER) if s['name'] in bench_names]
    check_equal(len(clients), 2 * runs, 'a CLIENT span per statement' + how)
    # and the untraced psql's SELECT sum(n) FROM counters
    check_equal(len(servers), 2 * runs + 1, 'a SERVER span per statement' + how)
    children = [s for s in servers if s['parent_span_id'] in clients and
                s['trace_id'] == clients[s['parent_span_id']]['trace_id'] and
                s['name'] == clients[s['parent_span_id']]['name']]
    check_equal(len(children), 2 * runs, 'each SERVER span is its CLIENT span\'s child' + how)
    check_equal(len({s['parent_span_id'] for s in children}), 2 * runs,
                'one SERVER span per CLIENT span' + how)
    check_equal([l for l in bench.stderr.splitlines() if 'database queries' in l],
                [f'otlpauto: database queries: {2 * runs} sent with their span\'s traceparent '
                 'comment, 0 without'], 'the debug summary counts every Parse' + how)
    check(all(attr(s, 'db.query.text') == 'UPDATE counters SET n = n + ? WHERE id = $1;'
              for s in spans if s['name'] == 'UPDATE counters'), 'no comment in any text' + how)


def test():
    test_propagation()
    test_propagation_tls()
    test_pgbench_propagation()
    test_pgbench_propagation(cut=7)
    test_pgbench_propagation(cut=2)
    test_pgbench_propagation(tls=True)
    test_pgbench_propagation(cut=7, tls=True)
    test_psql()
    test_psql(tls=True)
    test_statement_off()
    test_sqlcommenter()
    test_pgbench('simple')
    test_pgbench('extended')
    test_pgbench('prepared')


if __name__ == '__main__':
    main(test)
