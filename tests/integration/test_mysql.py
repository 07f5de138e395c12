"""MySQL/MariaDB spans from the wire: mariadbd started in a temporary data
directory (mariadb-install-db as an unprivileged user) on a loopback port and
the mariadb client, each under the shim. The server's connection threads get
a SERVER span per query, the client a CLIENT span per query, with the
database attributes and sanitised query texts; an ERR packet's code is the
status code. A literal password never reaches a span. With
OTLPAUTO_DB_PROPAGATION=comment a traced client appends sqlcommenter's
traceparent comment to its queries: the server's spans are its children.
With TLS (mariadbd with a certificate, the client's --ssl) the login and the
queries go inside TLS after the client's SSLRequest, and the same spans come
from the plaintext of SSL_read and SSL_write."""

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

SCOPE = 'otlpauto.mysql'
ENV = {'OTLPAUTO_HOOKS': 'sockets,dns,http'}
TLS_ENV = {'OTLPAUTO_HOOKS': 'sockets,dns,http,tls'}
PASSWORD = 'hunter2-do-not-export'
# Each statement a COM_QUERY of its own: (statement, span name, error code).
SCRIPT = [
    ('CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int)',
     'CREATE accounts', None),
    ("INSERT INTO accounts VALUES (1, 'alice', 100)", 'INSERT accounts', None),
    ('SELECT owner, balance FROM accounts WHERE id = 1', 'SELECT accounts', None),
    ('UPDATE accounts SET balance = balance + 7 WHERE id = 1', 'UPDATE accounts', None),
    ("INSERT INTO accounts VALUES (1, 'mallory', 0)", 'INSERT accounts', '1062'),
    ('SELEC 1', 'SELEC', '1064'),
    ("CREATE USER probe IDENTIFIED BY 'x'", 'CREATE', None),
    (f"ALTER USER probe IDENTIFIED BY '{PASSWORD}'", 'ALTER', None),
    ('DELETE FROM accounts WHERE id = 1', 'DELETE accounts', None),
]


def as_unprivileged():
    """nobody when we are root: the data directory is not root's."""
    if os.geteuid() != 0:
        return []
    return ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']


class MariaDB:
    """A fresh data directory in a temporary directory, mariadbd under the shim."""

    def __init__(self, receiver, tls=False):
        self.env = TLS_ENV if tls else ENV
        self.workdir = tempfile.mkdtemp(prefix='otlpauto-mysql-')
        if os.geteuid() == 0:
            os.chown(self.workdir, 65534, 65534)
        datadir = os.path.join(self.workdir, 'data')
        self.port = free_port()
        install = subprocess.run(as_unprivileged() + [
            'mariadb-install-db', '--no-defaults', f'--datadir={datadir}',
            '--auth-root-authentication-method=normal', '--skip-test-db'],
            capture_output=True, text=True, timeout=120)
        check(install.returncode == 0, 'mariadb-install-db creates the data directory',
              install.stderr[-2000:])
        ssl = []
        if tls:
            cert, key = (os.path.join(self.workdir, name) for name in ('server.crt', 'server.key'))
            req = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                                  'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj',
                                  '/CN=127.0.0.1', '-keyout', key, '-out', cert],
                                 capture_output=True, text=True, timeout=60)
            check_equal(req.returncode, 0, 'openssl makes the server certificate')
            if os.geteuid() == 0:
                os.chown(key, 65534, 65534)
            ssl = [f'--ssl-cert={cert}', f'--ssl-key={key}']
        self.server = Background(as_unprivileged() + [
            shutil.which('mariadbd') or '/usr/sbin/mariadbd', '--no-defaults',
            f'--datadir={datadir}', f'--port={self.port}', '--bind-address=127.0.0.1',
            f'--socket={self.workdir}/sock', f'--pid-file={self.workdir}/pid',
            '--skip-log-bin'] + ssl, receiver,
            env=dict(self.env, LD_PRELOAD=preload_value()), timeout=240,
            stop_signal=signal.SIGTERM)

    def client(self, *args, receiver=None, stdin=None, env=None):
        argv = ['mariadb', '-h127.0.0.1', f'-P{self.port}', '-uroot'] + [str(a) for a in args]
        if receiver is not None:
            return run_traced(argv, receiver, env=dict(self.env, **(env or {})), timeout=60,
                              input=stdin)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, input=stdin)

    def __enter__(self):
        self.server.__enter__()
        # mariadb-admin ping logs in and sends COM_PING: no span
        end = time.monotonic() + 60
        while time.monotonic() < end and self.server.process.poll() is None:
            ping = subprocess.run(['mariadb-admin', '-h127.0.0.1', f'-P{self.port}', '-uroot',
                                   '--connect-timeout=5', 'ping'],
                                  capture_output=True, timeout=30)
            if ping.returncode == 0:
                return self
            time.sleep(0.2)
        check(False, 'mariadbd accepts connections', self.server.stderr[-2000:])
        raise AssertionError('mariadbd did not start')

    def stop(self):
        """SIGTERM to mariadbd, by its pid: a clean shutdown."""
        check_equal(self.server.stop(grace=60), 0, 'mariadbd shuts down cleanly')

    def __exit__(self, *exc):
        self.server.__exit__(*exc)
        shutil.rmtree(self.workdir, ignore_errors=True)


def requires_mariadb():
    for tool in ('mariadbd', 'mariadb-install-db', 'mariadb', 'mariadb-admin'):
        if not shutil.which(tool) and not os.path.exists(f'/usr/sbin/{tool}'):
            skip(f'{tool} is not installed')
    if os.geteuid() == 0 and not shutil.which('setpriv'):
        skip('setpriv is missing')


def test_client():
    """The mariadb client runs SCRIPT statement by statement (--force: on
    past errors): one CLIENT and one SERVER span per statement, named by its
    summary, errors with their code; no literal in any span."""
    requires_mariadb()
    script = ''.join(statement + ';\n' for statement, _, _ in SCRIPT)
    with Receiver() as receiver:
        with MariaDB(receiver) as db:
            made = db.client('-e', 'CREATE DATABASE shop')
            check(made.returncode == 0, 'the database is made', made.stderr)
            run = db.client('--force', 'shop', receiver=receiver, stdin=script)
            off = db.client('shop', receiver=receiver, stdin=f"ALTER USER probe IDENTIFIED BY "
                            f"'{PASSWORD}'", env={'OTLPAUTO_DB_STATEMENT': 'off'})
            db.stop()
        time.sleep(0.5)
        spans = receiver.spans

    check_equal(run.returncode, 0, 'the client runs the script (--force: past its errors)')
    check('Duplicate entry' in run.stderr and 'SQL syntax' in run.stderr,
          'the two failing statements fail', run.stderr)
    check_equal(off.returncode, 0, 'the second client runs')
    db_spans = spans_where(spans, scope=SCOPE)
    check_equal(spans_where(spans, scope='otlpauto.http'), [], 'no HTTP span')
    # the untraced CREATE DATABASE is the server's first span
    expected = [('CREATE DATABASE shop', 'CREATE', None)] + SCRIPT + [
        ('ALTER (statement off)', 'ALTER', None)]
    for kind, side in ((KIND_CLIENT, 'CLIENT'), (KIND_SERVER, 'SERVER')):
        mine = sorted((s for s in db_spans if s['kind'] == kind), key=lambda s: s['start'])
        want = expected if kind == KIND_SERVER else expected[1:]
        check_equal(len(mine), len(want), f'a {side} span per statement')
        for (statement, name, code), span in zip(want, mine):
            check_equal(span['name'], name, f'{side} span name of {statement!r}')
            check_equal(attr(span, 'db.system.name'), 'mariadb', 'db.system.name')
            check_equal(attr(span, 'db.response.status_code'), code,
                        f'error code of {statement!r}')
            check_equal(attr(span, 'error.type'), code, f'error.type of {statement!r}')
            check_equal(span['status_code'] == STATUS_ERROR, code is not None,
                        f'error status of {statement!r}')
        select = [s for s in mine if s['name'] == 'SELECT accounts']
        check_equal(len(select), 1, f'one {side} SELECT')
        check_equal(attr(select[0], 'db.query.text'),
                    'SELECT owner, balance FROM accounts WHERE id = ?', 'sanitised query text')
        check_equal(attr(select[0], 'db.namespace'), 'shop', 'db.namespace')
        check_equal(attr(select[0], 'db.collection.name'), 'accounts', 'db.collection.name')
        alters = [s for s in mine if s['name'] == 'ALTER']
        check_equal([attr(s, 'db.query.text') for s in alters],
                    ['ALTER USER probe IDENTIFIED BY ?',
                     None if kind == KIND_CLIENT else 'ALTER USER probe IDENTIFIED BY ?'],
                    f'{side}: the password replaced; no text where the statement is off')
    server = [s for s in db_spans if s['kind'] == KIND_SERVER]
    check_equal(attr(server[0], 'server.port'), int(db.port), 'server.port (server)')
    check_equal(attr(server[0], 'client.address'), '127.0.0.1', 'client.address')
    client = [s for s in db_spans if s['kind'] == KIND_CLIENT]
    check_equal(attr(client[0], 'server.address'), '127.0.0.1', 'server.address')
    check_equal(attr(client[0], 'server.port'), int(db.port), 'server.port (client)')
    check(PASSWORD not in repr(spans), 'the password is in no span')
    check('alice' not in repr(db_spans), 'no string literal is in a span')


def test_sqlcommenter():
    """A query carrying sqlcommenter's traceparent comment (the client keeps
    comments with --comments): the SERVER span continues that trace."""
    requires_mariadb()
    trace_id, span_id = '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7'
    with Receiver() as receiver:
        with MariaDB(receiver) as db:
            run = db.client('--comments', '-e',
                            f"SELECT 1 /*traceparent='00-{trace_id}-{span_id}-01'*/")
            db.stop()
        time.sleep(0.5)
        spans = receiver.spans
    check(run.returncode == 0, 'the commented query runs', run.stderr)
    (server,) = spans_where(spans, KIND_SERVER, SCOPE)
    check_equal(server['trace_id'], trace_id, 'the SERVER span is in the comment\'s trace')
    check_equal(server['parent_span_id'], span_id, 'its parent is the comment\'s span')
    check_equal(attr(server, 'db.query.text'), 'SELECT ?', 'the comment is not in the text')


COMMENT = re.compile(r" /\*traceparent='00-([0-9a-f]{32})-([0-9a-f]{16})-01'\*/")
# The server tells the text it received.
WHAT_CAME = 'SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()'


def test_propagation(cut=None, tls=False):
    """OTLPAUTO_DB_PROPAGATION=comment: the mariadb client's query reaches
    the server with a traceparent comment naming its CLIENT span, so the
    SERVER span is that span's child in its trace; the recorded texts have
    no comment. Without the variable nothing is added: two traces. With
    `cut`, every send the client's shim makes takes at most that many bytes
    (tests/programs/shortio.c): the comment, which ends the packet, still
    all goes before the client waits for the answer. With tls, the client's
    --ssl: the comment goes into the plaintext of its SSL_write (with `cut`,
    OpenSSL's record writes are cut)."""
    requires_mariadb()
    if tls and not shutil.which('openssl'):
        print('openssl is missing: no TLS case', flush=True)
        return
    env = {'OTLPAUTO_DB_PROPAGATION': 'comment'}
    if cut:
        shortio = str(builddir() / 'tests' / 'programs' / 'libshortio.so')
        env.update(SHORTIO_MAX=str(cut), LD_PRELOAD=f'{preload_value()}:{shortio}')
    ssl = ['--ssl'] if tls else []
    with Receiver() as receiver:
        with MariaDB(receiver, tls=tls) as db:
            commented = db.client(*ssl, '-N', '-B', '-e', WHAT_CAME, receiver=receiver, env=env)
            plain = db.client(*ssl, '-N', '-B', '-e', WHAT_CAME, receiver=receiver)
            db.stop()
        time.sleep(0.5)
        spans = spans_where(receiver.spans, scope=SCOPE)

    check(commented.returncode == 0, 'the query with a comment runs', commented.stderr)
    received = commented.stdout.strip()
    match = COMMENT.search(received)
    check(received.startswith(WHAT_CAME + ' /*traceparent=') and received.endswith("'*/"),
          'the comment is appended', received)
    clients = sorted(spans_where(spans, KIND_CLIENT), key=lambda s: s['start'])
    servers = sorted(spans_where(spans, KIND_SERVER), key=lambda s: s['start'])
    check_equal(len(clients), 2, 'a CLIENT span per client')
    check_equal(len(servers), 2, 'a SERVER span per query')
    if match and len(clients) == 2 and len(servers) == 2:
        check_equal(match.groups(), (clients[0]['trace_id'], clients[0]['span_id']),
                    'the comment names the CLIENT span')
        check_equal((servers[0]['trace_id'], servers[0]['parent_span_id']),
                    (clients[0]['trace_id'], clients[0]['span_id']),
                    'the SERVER span is the CLIENT span\'s child')
        text = ('SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = '
                'CONNECTION_ID()')
        check_equal(attr(clients[0], 'db.query.text'), text,
                    'the CLIENT span\'s text has no comment')
        check_equal(attr(servers[0], 'db.query.text'), text, 'nor the SERVER span\'s')
        check_equal(plain.stdout.strip(), WHAT_CAME,
                    'without OTLPAUTO_DB_PROPAGATION the query goes as written')
        check(servers[1]['trace_id'] != clients[1]['trace_id'] and
              servers[1]['parent_span_id'] == '',
              'without it the SERVER span is a root of its own trace', servers[1])


# A program using the binary protocol: DBD::MariaDB with server-side
# prepared statements (COM_STMT_PREPARE, then COM_STMT_EXECUTE per id).
PERL_PREPARED = r'''
use strict;
use DBI;
my $dbh = DBI->connect("DBI:MariaDB:database=shop;host=127.0.0.1;port=$ARGV[0]", "root", "",
                       {RaiseError => 1, PrintError => 0, mariadb_server_prepare => 1});
my $sth = $dbh->prepare("SELECT owner FROM accounts WHERE id = ?");
for my $id (1, 2, 3) {
    $sth->execute($id);
    while (my @row = $sth->fetchrow_array) { print "$row[0]\n" }
}
undef $sth;
$dbh->disconnect;
'''


def test_prepared():
    """perl DBD::MariaDB, server-side prepared: a CLIENT and a SERVER span
    for the prepare (its text) and for each of the 3 executions (the
    prepare's summary, no text). With OTLPAUTO_DB_PROPAGATION=comment the
    prepare and the connection's SET queries reach the server with the
    comment: their SERVER spans are the CLIENT spans' children; an
    execution carries no text, so its SERVER span stays a root."""
    requires_mariadb()
    if subprocess.run(['perl', '-MDBD::MariaDB', '-e', '1'], capture_output=True,
                      timeout=30).returncode:
        skip('perl DBD::MariaDB (libdbd-mariadb-perl) is not installed')
    with Receiver() as receiver:
        with MariaDB(receiver) as db:
            made = db.client('-e', 'CREATE DATABASE shop; CREATE TABLE shop.accounts '
                             "(id int PRIMARY KEY, owner text); INSERT INTO shop.accounts "
                             "VALUES (1, 'alice'), (2, 'bob')")
            check(made.returncode == 0, 'the table is made', made.stderr)
            run = run_traced(['perl', '-e', PERL_PREPARED, db.port], receiver,
                             env=dict(ENV, OTLPAUTO_DB_PROPAGATION='comment'), timeout=60)
            db.stop()
        time.sleep(0.5)
        spans = spans_where(receiver.spans, scope=SCOPE)

    check(run.returncode == 0, 'the perl program runs', run.stderr)
    check_equal(run.stdout.split(), ['alice', 'bob'], 'the executions return the rows')
    clients = sorted(spans_where(spans, KIND_CLIENT), key=lambda s: s['start'])
    # the untraced client's 3 queries, then perl's
    servers = sorted(spans_where(spans, KIND_SERVER), key=lambda s: s['start'])[3:]
    for side, mine in (('CLIENT', clients), ('SERVER', servers)):
        selects = [s for s in mine if s['name'] == 'SELECT accounts']
        check_equal([attr(s, 'db.query.text') for s in selects],
                    ['SELECT owner FROM accounts WHERE id = ?', None, None, None],
                    f'{side}: a prepare (its text) and 3 executions (none)')
        check(all(s['status_code'] != STATUS_ERROR for s in mine), f'{side}: no error')
        check_equal({s['name'] for s in mine} - {'SELECT accounts'}, {'SET'},
                    f'{side}: the connection\'s SET queries')
    check_equal(len(servers), len(clients), 'a SERVER span per CLIENT span')
    by_id = {s['span_id']: s for s in clients}
    for client, server in zip(clients, servers):
        texted = attr(client, 'db.query.text') is not None
        parented = server['parent_span_id'] == client['span_id'] and \
            server['trace_id'] == client['trace_id']
        check_equal(parented, texted,
                    f'{client["name"]} {attr(client, "db.query.text")}: the SERVER span is '
                    f'the CLIENT span\'s child when the command has a text')
        if not texted:
            check_equal(server['parent_span_id'] in by_id, False,
                        'an execution\'s SERVER span is not the child of a CLIENT span')


def test_tls():
    """The client's --ssl to a mariadbd with a certificate: its SSLRequest,
    then the login and the queries inside TLS; one CLIENT and one SERVER
    span per statement from the TLS plaintext, as over plaintext."""
    requires_mariadb()
    if not shutil.which('openssl'):
        print('openssl is missing: no TLS case', flush=True)
        return
    statements = SCRIPT[:3] + [("SHOW STATUS LIKE 'Ssl_version'", 'SHOW', None)]
    script = ''.join(statement + ';\n' for statement, _, _ in statements)
    with Receiver() as receiver:
        with MariaDB(receiver, tls=True) as db:
            made = db.client('-e', 'CREATE DATABASE shop')
            check(made.returncode == 0, 'the database is made', made.stderr)
            run = db.client('--ssl', 'shop', receiver=receiver, stdin=script)
            db.stop()
        time.sleep(0.5)
        spans = receiver.spans
    check(run.returncode == 0, 'the client runs the script over TLS', run.stderr)
    check(re.search(r'Ssl_version\s+TLSv1', run.stdout), 'the session is TLS', run.stdout)
    db_spans = spans_where(spans, scope=SCOPE)
    for kind, side in ((KIND_CLIENT, 'CLIENT'), (KIND_SERVER, 'SERVER')):
        mine = sorted((s for s in db_spans if s['kind'] == kind), key=lambda s: s['start'])
        # the untraced CREATE DATABASE is the server's first span (plaintext)
        if kind == KIND_SERVER:
            mine = mine[1:]
        check_equal([s['name'] for s in mine], [name for _, name, _ in statements],
                    f'a {side} span per statement over TLS')
        select = [s for s in mine if s['name'] == 'SELECT accounts']
        check_equal([attr(s, 'db.query.text') for s in select],
                    ['SELECT owner, balance FROM accounts WHERE id = ?'],
                    f'{side}: the sanitised text over TLS')
        check_equal([attr(s, 'db.namespace') for s in select], ['shop'],
                    f'{side}: the login\'s database, read inside TLS')
    check('alice' not in repr(db_spans), 'no string literal is in a span')


def test():
    test_tls()
    test_propagation()
    test_propagation(cut=5)
    test_propagation(tls=True)
    test_propagation(cut=5, tls=True)
    test_prepared()
    test_client()
    test_sqlcommenter()


if __name__ == '__main__':
    main(test)
