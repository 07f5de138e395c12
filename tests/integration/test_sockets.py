"""Connect and DNS spans from a Python program under the shim: exact span
counts, attributes, error spans, the address->name cache, non-blocking
connects, families switched off, and no span for the exporter's own traffic.
The program's output is the same with and without the shim; the spans are
children of python's process span (written while the process family is on).
Then file spans (OTLPAUTO_HOOKS=...,files): open, read, write, fsync, close,
the positioned reads and writes, and sqlite3's reads of its database."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

from harness import (Receiver, assert_single_trace, check, check_equal, check_holds, main,
                     process_spans, program, run_traced, skip)
from netutil import (HOSTS_NAME, KIND_INTERNAL, STATUS_ERROR, attr, ensure_hosts_entry,
                     spans_where)

PYTHON = '/usr/bin/python3'

# Every call below makes exactly one span, except the numeric lookup (none)
# and gethostbyname_ex (two: CPython calls getaddrinfo, then gethostbyname_r).
SCRIPT = r'''
import select, socket, sys
port, closed, unix_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
name = sys.argv[4]
infos = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)
s = socket.socket(); s.connect(infos[0][4]); s.close()
s = socket.socket()
print('refused', s.connect_ex(('127.0.0.1', closed))); s.close()
try:
    socket.getaddrinfo(name, 'no-such-service-otlpauto')
except socket.gaierror as e:
    print('gaierror', e.errno)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(('127.0.0.1', 9)); u.close()
x = socket.socket(socket.AF_UNIX); x.connect(unix_path); x.close()
n = socket.socket(); n.setblocking(False)
print('nonblocking', n.connect_ex(('127.0.0.1', port)) in (0, 115))
select.select([], [n], [], 5)
print('so_error', n.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)); n.close()
print(socket.gethostbyname_ex(name)[2])
socket.getaddrinfo('127.0.0.1', port)
print(socket.getnameinfo(('127.0.0.1', 80), socket.NI_NUMERICSERV)[0])
'''


FILES_SCRIPT = r'''
import os, sys
path = sys.argv[1]
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b'x' * 10); os.write(fd, b'y' * 10); os.fsync(fd); os.close(fd)
fd = os.open(path, os.O_RDONLY); print(os.read(fd, 100)); os.close(fd)
try:
    os.open(path + '.nodir/x', os.O_RDONLY)
except OSError as e:
    print('error', e.errno)
'''


def file_spans():
    """OTLPAUTO_HOOKS=default,files: open, read, write, fsync and close of a
    regular file above OTLPAUTO_FILE_THRESHOLD are spans with file.path."""
    workdir = tempfile.mkdtemp(prefix='otlpauto-files-')
    path = os.path.join(workdir, 'data.txt')
    argv = [PYTHON, '-c', FILES_SCRIPT, path]
    runs = {}
    try:
        for name, env in (('on', {'OTLPAUTO_HOOKS': 'default,files',
                                  'OTLPAUTO_FILE_THRESHOLD': '0'}),
                          ('off', {'OTLPAUTO_FILE_THRESHOLD': '0'}),
                          ('slow only', {'OTLPAUTO_HOOKS': 'default,files',
                                         'OTLPAUTO_FILE_THRESHOLD': '10s'})):
            with Receiver() as receiver:
                result = run_traced(argv, receiver, timeout=30, env=env)
                runs[name] = (result, receiver.spans)
    finally:
        for leftover in (path,):
            if os.path.exists(leftover):
                os.unlink(leftover)
        os.rmdir(workdir)
    result, spans = runs['on']
    check_equal(result.stdout, "b'xxxxxxxxxxyyyyyyyyyy'\nerror 2\n", 'files: program output')
    mine = spans_where(spans, KIND_INTERNAL, 'otlpauto.files', {'file.path': path})
    check_equal(sorted(s['name'] for s in mine),
                ['file close', 'file close', 'file fsync', 'file open', 'file open',
                 'file read', 'file write', 'file write'], 'files: spans of the file')
    check(all(s['status_code'] != STATUS_ERROR for s in mine), 'files: no error')
    failed = spans_where(spans, KIND_INTERNAL, 'otlpauto.files',
                         {'file.path': path + '.nodir/x'})
    check(len(failed) == 1 and failed[0]['status_code'] == STATUS_ERROR and
          attr(failed[0], 'error.type') == 'ENOENT', 'files: failed open',
          failed and failed[0]['attributes'])
    check_equal(spans_where(runs['off'][1], scope='otlpauto.files'), [],
                'files: off by default')
    check_equal(spans_where(runs['slow only'][1], scope='otlpauto.files'), [],
                'files: nothing above a 10s threshold')


def positioned_spans():
    """pread, pwrite, preadv, pwritev, preadv2, pwritev2, their 64 variants
    and the fortified preads, each once on a file: a "file read" or "file
    write" span each, with file.path; nothing when the family is off."""
    workdir = tempfile.mkdtemp(prefix='otlpauto-pio-')
    path = os.path.join(workdir, 'data.bin')
    argv = [program('positioned_io'), path]
    try:
        untraced = run_traced(argv, preload=False, timeout=30)
        runs = {}
        for name, hooks in (('on', 'process,files'), ('off', 'process')):
            with Receiver() as receiver:
                result = run_traced(argv, receiver, timeout=30,
                                    env={'OTLPAUTO_HOOKS': hooks, 'OTLPAUTO_FILE_THRESHOLD': '0'})
                count = 17 if name == 'on' else 1
                receiver.wait_for_spans(count, timeout=10)
                runs[name] = (result, receiver.wait_for_spans(count + 1, timeout=0.5))
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(workdir)
    result, spans = runs['on']
    check_equal((result.returncode, result.stdout), (0, untraced.stdout),
                'positioned I/O: output unchanged')
    mine = spans_where(spans, KIND_INTERNAL, 'otlpauto.files', {'file.path': path})
    names = sorted(s['name'] for s in mine)
    check_equal(names, ['file close', 'file open'] + ['file read'] * 8 + ['file write'] * 6,
                'positioned I/O: a span for each of the 14 calls, with the path')
    check_equal(len(spans), 17, 'positioned I/O: and the process span, nothing else')
    check_equal(spans_where(runs['off'][1], scope='otlpauto.files'), [],
                'positioned I/O: no span with the family off')


def sqlite_spans():
    """sqlite3 reads its database with pread64 only: each read is a span."""
    sqlite = shutil.which('sqlite3')
    if not sqlite:
        print('skip: no sqlite3 (Debian sqlite3; scripts/setup installs it)')
        return
    workdir = tempfile.mkdtemp(prefix='otlpauto-sqlite-')
    db = os.path.join(workdir, 'test.db')
    try:
        subprocess.run([sqlite, db, 'create table t(x); insert into t values (1), (2), (3);'],
                       check=True, timeout=30)
        query = [sqlite, db, 'select sum(x) from t;']
        expected_reads = None
        strace = shutil.which('strace')
        if strace:
            traced = subprocess.run([strace, '-f', '-qq', '-e', 'trace=pread64', '-P', db,
                                     *query], capture_output=True, text=True, timeout=30)
            expected_reads = traced.stderr.count('pread64(')
        with Receiver() as receiver:
            result = run_traced(query, receiver, timeout=30,
                                env={'OTLPAUTO_HOOKS': 'process,files',
                                     'OTLPAUTO_FILE_THRESHOLD': '0'})
            spans = receiver.wait_for_spans(2, timeout=10)
            spans = receiver.wait_for_spans(len(spans) + 1, timeout=0.5)
    finally:
        shutil.rmtree(workdir)
    check_equal(result.stdout, '6\n', 'sqlite3: the query works')
    reads = spans_where(spans, KIND_INTERNAL, 'otlpauto.files', {'file.path': db})
    reads = [s for s in reads if s['name'] == 'file read']
    if expected_reads is not None:
        check_equal(len(reads), expected_reads, 'sqlite3: a span per pread64 (as strace counts)')
    check(reads, 'sqlite3: its reads of the database are spans', len(reads))


def accept_forever(listener):
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.close()


def test():
    if not ensure_hosts_entry():
        skip(f'cannot add {HOSTS_NAME} to /etc/hosts')
    tcp = socket.create_server(('127.0.0.1', 0))
    closed_port = socket.create_server(('127.0.0.1', 0))
    closed = closed_port.getsockname()[1]
    closed_port.close()
    workdir = tempfile.mkdtemp(prefix='otlpauto-sockets-')
    unix_path = os.path.join(workdir, 'sock')
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen(8)
    for listener in (tcp, unix):
        threading.Thread(target=accept_forever, args=(listener,), daemon=True).start()
    port = tcp.getsockname()[1]
    argv = [PYTHON, '-c', SCRIPT, port, closed, unix_path, HOSTS_NAME]
    try:
        untraced = run_traced(argv, preload=False, timeout=30)
        with Receiver() as receiver:
            result = run_traced(argv, receiver, timeout=30)
            spans = receiver.wait_for_spans(11, timeout=10)
            spans = receiver.wait_for_spans(12, timeout=0.5)
            receiver_port = receiver.port
        with Receiver() as receiver:
            run_traced(argv, receiver, timeout=30, env={'OTLPAUTO_HOOKS': 'dns'})
            dns_only = receiver.wait_for_spans(5, timeout=10)
            dns_only = receiver.wait_for_spans(6, timeout=0.5)
        with Receiver() as receiver:
            run_traced(argv, receiver, timeout=30, env={'OTLPAUTO_HOOKS': 'sockets'})
            sockets_only = receiver.wait_for_spans(5, timeout=10)
            sockets_only = receiver.wait_for_spans(6, timeout=0.5)
    finally:
        tcp.close()
        unix.close()
        os.unlink(unix_path)
        os.rmdir(workdir)

    check_equal(result.returncode, 0, 'traced program exits 0')
    check_equal(result.stdout, untraced.stdout, 'program output unchanged')
    check('refused 111' in result.stdout, 'refused connect seen by the program', result.stdout)
    check_equal(len(spans), 11, 'exactly 11 spans (5 DNS, 5 connect, the process span)')
    python = os.path.basename(os.path.realpath(PYTHON))
    found = process_spans(spans)
    check_equal([s['name'] for s in found], [python], 'one process span, python\'s')
    check_holds('one trace', assert_single_trace, spans)
    check(found and all(s['parent_span_id'] == found[0]['span_id'] for s in spans
                        if s not in found),
          'DNS and connect spans are children of the process span')

    dns = spans_where(spans, KIND_INTERNAL, 'otlpauto.dns')
    check_equal(len(dns), 5, 'DNS spans')
    lookups = spans_where(dns, attrs={'dns.question.name': HOSTS_NAME})
    check_equal(len(lookups), 4, 'lookups of the hosts name')
    ok = [s for s in lookups if s['status_code'] != STATUS_ERROR]
    check_equal(len(ok), 3, 'successful lookups (getaddrinfo twice, gethostbyname_r)')
    check(all(s['name'] == f'DNS lookup {HOSTS_NAME}' for s in lookups), 'DNS span name')
    check(all(attr(s, 'dns.answers') == ['127.0.0.1'] for s in ok),
          'dns.answers: an array of strings', [attr(s, 'dns.answers') for s in ok])
    failed = [s for s in lookups if s['status_code'] == STATUS_ERROR]
    check_equal([attr(s, 'error.type') for s in failed], ['EAI_SERVICE'], 'failed lookup')
    reverse = spans_where(dns, attrs={'dns.question.name': '127.0.0.1'})
    check_equal(len(reverse), 1, 'getnameinfo span')
    check(reverse and attr(reverse[0], 'dns.answers') == ['localhost'], 'reverse answer',
          reverse and reverse[0]['attributes'])

    connects = spans_where(spans, KIND_INTERNAL, 'otlpauto.sockets')
    check_equal(len(connects), 5, 'connect spans')
    tcp_ok = [s for s in connects if s['name'] == f'socket connect 127.0.0.1:{port}']
    check_equal(len(tcp_ok), 2, 'blocking and non-blocking connects to the listener')
    for span in tcp_ok:
        check_equal(span['attributes'].get('network.peer.address'), '127.0.0.1', 'peer address')
        check_equal(attr(span, 'network.peer.port'), port, 'peer port')
        check_equal(attr(span, 'network.transport'), 'tcp', 'transport tcp')
        check_equal(attr(span, 'network.type'), 'ipv4', 'network.type')
        check_equal(attr(span, 'server.address'), HOSTS_NAME, 'server.address from the lookup')
        check(span['status_code'] != STATUS_ERROR, 'connect succeeded')
    refused = [s for s in connects if s['name'] == f'socket connect 127.0.0.1:{closed}']
    check(len(refused) == 1 and refused[0]['status_code'] == STATUS_ERROR
          and attr(refused[0], 'error.type') == 'ECONNREFUSED', 'refused connect span',
          refused and refused[0]['attributes'])
    udp = spans_where(connects, attrs={'network.transport': 'udp'})
    check(len(udp) == 1 and udp[0]['name'] == 'socket connect 127.0.0.1:9', 'UDP connect span')
    unix_spans = spans_where(connects, attrs={'network.transport': 'unix'})
    check(len(unix_spans) == 1 and unix_spans[0]['name'] == f'socket connect {unix_path}'
          and attr(unix_spans[0], 'network.peer.address') == unix_path, 'unix connect span',
          unix_spans and unix_spans[0])
    check(all(attr(s, 'server.port') != receiver_port and
              attr(s, 'network.peer.port') != receiver_port for s in spans),
          "no span for the exporter's own connection")

    check_equal(len(dns_only), 5, 'OTLPAUTO_HOOKS=dns: 5 spans (the process family is off)')
    check(all(s['scope']['name'] == 'otlpauto.dns' for s in dns_only), 'only DNS spans')
    check_equal(len(sockets_only), 5, 'OTLPAUTO_HOOKS=sockets: 5 spans')
    check(all(s['scope']['name'] == 'otlpauto.sockets' for s in sockets_only),
          'only connect spans')


def test_all():
    test()
    file_spans()
    positioned_spans()
    sqlite_spans()


if __name__ == '__main__':
    main(test_all)
