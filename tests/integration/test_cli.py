"""The otlpauto command: run (each option as the environment the program
sees, exit statuses, spans that arrive), view (trees across files and
processes, corrupt lines, filters, --summary, --chrome, colors), doctor
(dynamic, stripped, static, set-uid, scripts, the collector check), the help,
the version, bad options, and the man page against src/config.h."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness import (Receiver, builddir, check, check_equal, free_port, lib_path, main,
                     program, run_traced, srcdir)

TIMEOUT = 60
MS = 1_000_000
BASE_NS = 1_000_000_000_000_000_000  # the fixtures' time zero
TRACE = '0af7651916cd43dd8448eb211c80319c'
OTHER_TRACE = '11111111111111111111111111111111'
DURATION = re.compile(r'\b\d+(\.\d{3})?(ns|us|ms|s)\b')


def cli_path():
    return os.environ['OTLPAUTO_CLI']


def clean_env(extra=None):
    """The test's environment without OTEL_* or LD_PRELOAD, plus extra (None unsets)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('OTEL_') and k != 'LD_PRELOAD'}
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def cli(*args, env=None, cwd=None, executable=None):
    return subprocess.run([executable or cli_path(), *map(str, args)], env=clean_env(env),
                          cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


def env_of(stdout):
    """/usr/bin/env's output as a dict."""
    return dict(line.split('=', 1) for line in stdout.splitlines() if '=' in line)


def real_lib():
    return os.path.realpath(lib_path())

# ------------------------------------------------------------ help, version, usage


def test_help_and_version():
    version = re.search(r"version: '([^']+)'", (srcdir() / 'meson.build').read_text())[1]
    result = cli('--version')
    check_equal((result.returncode, result.stdout), (0, f'otlpauto {version}\n'), '--version')
    result = cli('--help')
    check(result.returncode == 0 and result.stdout.startswith('Usage: otlpauto COMMAND'),
          '--help', result.stdout + result.stderr)
    for command in ('run', 'view', 'doctor'):
        result = cli(command, '--help')
        check(result.returncode == 0 and result.stdout.startswith(f'Usage: otlpauto {command}'),
              f'{command} --help', result.stdout + result.stderr)


def test_needed_libraries():
    # Every `otlpauto run` loads what the command links: libcurl (doctor's,
    # opened when it checks a collector) would cost it ~30 libraries.
    out = subprocess.run(['readelf', '-dW', cli_path()], capture_output=True, text=True,
                         check=True, timeout=TIMEOUT).stdout
    needed = re.findall(r'\(NEEDED\)\s+Shared library: \[([^\]]+)\]', out)
    check_equal([n for n in needed if 'curl' in n], [], 'the command does not link libcurl')


def test_bad_usage():
    cases = [
        ((), 'Usage: otlpauto COMMAND'),
        (('frobnicate',), "otlpauto: unknown command 'frobnicate'"),
        (('--frobnicate',), "otlpauto: unknown option '--frobnicate'"),
        (('run',), 'otlpauto run: no program given'),
        (('run', '--bogus', '--', 'true'), "otlpauto run: unrecognized option '--bogus'"),
        (('run', '--service'), "otlpauto run: option '--service' requires an argument"),
        (('run', '--threshold', 'soon', '--', 'true'),
         'otlpauto run: --threshold: OTLPAUTO_FUNCTION_THRESHOLD="soon" is not a duration'),
        (('run', '--sampler', 'sometimes', '--', 'true'),
         'otlpauto run: --sampler: OTEL_TRACES_SAMPLER="sometimes" is not one of'),
        (('run', '--sampler', 'traceidratio:2', '--', 'true'),
         'otlpauto run: --sampler: OTEL_TRACES_SAMPLER_ARG="2" is not a sampling ratio'),
        (('run', '--hooks', 'telepathy', '--', 'true'),
         'otlpauto run: --hooks: OTLPAUTO_HOOKS="telepathy" names hooks that are unknown'),
        (('run', '--endpoint', 'ftp://x', '--', 'true'),
         'otlpauto run: --endpoint: OTEL_EXPORTER_OTLP_ENDPOINT="ftp://x" is not an http://'),
        (('run', '--header', 'novalue', '--', 'true'),
         "otlpauto run: --header: 'novalue' is not KEY=VALUE"),
        (('run', '--header', 'bad key=1', '--', 'true'),
         'otlpauto run: --header: OTEL_EXPORTER_OTLP_HEADERS is malformed'),
        (('run', '--console', '--file', 'x', '--', 'true'),
         'otlpauto run: --console and --file cannot be used together'),
        (('view', '--color=sometimes'),
         "otlpauto view: --color: 'sometimes' is not auto, always or never"),
        (('view', '--min-duration', 'long'), "otlpauto view: --min-duration: 'long' is not"),
        (('view', '--trace', 'xyz'), "otlpauto view: --trace: 'xyz' is not a trace id"),
        (('view', '--bogus'), "otlpauto view: unrecognized option '--bogus'"),
        (('doctor',), 'otlpauto doctor: no program given'),
        (('doctor', '/bin/true', '/bin/false'), 'otlpauto doctor: one program at a time'),
        (('doctor', '--bogus'), "otlpauto doctor: unrecognized option '--bogus'"),
    ]
    for args, message in cases:
        result = cli(*args)
        check(result.returncode == 2 and result.stderr.startswith(message)
              and result.stdout == '', f'usage error: otlpauto {" ".join(args)}',
              f'status {result.returncode}, stderr {result.stderr!r}')

# ------------------------------------------------------------ run


def test_run_environment(tmp):
    # A collector that answers: env's process span is delivered, nothing to say.
    receiver = Receiver().start()
    port = receiver.port
    extra_lib = builddir() / 'tests' / 'programs' / 'libsymtest_linked.so'
    result = cli('run', '--endpoint', f'http://127.0.0.1:{port}', '--service', 'svc',
                 '--threshold', '1ms', '--functions', 'a*,b*', '--exclude', 'c*',
                 '--sampler', 'traceidratio:0.5', '--hooks', 'functions,process',
                 '--header', 'a=b', '--header', 'x-key=v 1,2%', '--gzip', '--', '/usr/bin/env',
                 env={'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT': 'http://127.0.0.1:1/v1/traces',
                      'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION': 'none',
                      'LD_PRELOAD': extra_lib})
    seen = env_of(result.stdout)
    check_equal(result.returncode, 0, 'run: env exits 0')
    receiver.stop()
    check_equal(result.stderr, '', 'run: the library accepts every value without a warning')
    expected = {
        'OTEL_TRACES_EXPORTER': 'otlp',
        'OTEL_EXPORTER_OTLP_ENDPOINT': f'http://127.0.0.1:{port}',
        'OTEL_SERVICE_NAME': 'svc',
        'OTLPAUTO_FUNCTION_THRESHOLD': '1ms',
        'OTLPAUTO_FUNCTION_INCLUDE': 'a*,b*',
        'OTLPAUTO_FUNCTION_EXCLUDE': 'c*',
        'OTEL_TRACES_SAMPLER': 'traceidratio',
        'OTEL_TRACES_SAMPLER_ARG': '0.5',
        'OTLPAUTO_HOOKS': 'functions,process',
        'OTEL_EXPORTER_OTLP_HEADERS': 'a=b,x-key=v%201%2C2%25',
        'OTEL_EXPORTER_OTLP_COMPRESSION': 'gzip',
        'LD_PRELOAD': f'{real_lib()}:{extra_lib}',
    }
    for name, value in expected.items():
        check_equal(seen.get(name), value, f'run: {name}')
    for name in ('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION',
                 'OTLPAUTO_FILE'):
        check_equal(seen.get(name), None, f'run: {name} is not left to override the options')

    result = cli('run', '--file', 'spans.jsonl', '--', '/usr/bin/env', cwd=tmp)
    seen = env_of(result.stdout)
    check_equal((seen.get('OTEL_TRACES_EXPORTER'), seen.get('OTLPAUTO_FILE')),
                ('otlp/file', str(tmp / 'spans.jsonl')), 'run --file: absolute OTLPAUTO_FILE')
    check_equal(result.stderr, '', 'run --file: no default file message')

    result = cli('run', '--console', '--sampler', 'always_on', '--', '/usr/bin/env',
                 env={'OTEL_TRACES_SAMPLER_ARG': None})
    seen = env_of(result.stdout)
    check_equal((seen.get('OTEL_TRACES_EXPORTER'), seen.get('OTEL_TRACES_SAMPLER'),
                 seen.get('OTEL_TRACES_SAMPLER_ARG')), ('console', 'always_on', None),
                'run --console --sampler NAME without an argument')

    result = cli('run', '--header', 'a=b', '--', '/usr/bin/env',
                 env={'OTEL_EXPORTER_OTLP_HEADERS': 'k=v'})
    check_equal(env_of(result.stdout).get('OTEL_EXPORTER_OTLP_HEADERS'), 'k=v,a=b',
                'run --header adds to the headers of the environment')
    result = cli('run', '--header', 'a=b', '--', '/usr/bin/env',
                 env={'OTEL_EXPORTER_OTLP_HEADERS': 'k=v',
                      'OTEL_EXPORTER_OTLP_TRACES_HEADERS': 't=1'})
    seen = env_of(result.stdout)
    check_equal((seen.get('OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
                 seen.get('OTEL_EXPORTER_OTLP_HEADERS')), ('t=1,a=b', 'k=v'),
                'run --header goes where the library looks first')

    result = cli('run', '--', '/usr/bin/env', env={'LD_PRELOAD': real_lib()})
    check_equal(env_of(result.stdout).get('LD_PRELOAD'), real_lib(),
                'run: the library is not preloaded twice')


def test_run_default_file(tmp):
    result = cli('run', '/usr/bin/env', cwd=tmp)
    seen = env_of(result.stdout)
    match = re.fullmatch(r'otlpauto: writing spans to (\./otlpauto-env-\d{8}-\d{6}\.jsonl); '
                         r'view them with: otlpauto view \1\n', result.stderr)
    check(match, 'run without a destination: one line says where spans go', result.stderr)
    if match:
        check_equal((seen.get('OTEL_TRACES_EXPORTER'), seen.get('OTLPAUTO_FILE')),
                    ('otlp/file', str(tmp / match[1][2:])),
                    'run without a destination: an absolute file for every process')
    for name, value in (('OTEL_EXPORTER_OTLP_ENDPOINT', 'http://127.0.0.1:1'),
                        ('OTEL_TRACES_EXPORTER', 'console')):
        result = cli('run', '--', '/usr/bin/env', cwd=tmp, env={name: value})
        seen = env_of(result.stdout)
        # (env's process span, sent nowhere or printed, may add its own lines)
        check('writing spans to' not in result.stderr and 'OTLPAUTO_FILE' not in seen
              and seen.get(name) == value,
              f'run with {name} in the environment: no default file', result.stderr)


def test_run_statuses():
    result = cli('run', '--console', '--', 'sh', '-c', 'exit 7')
    check_equal(result.returncode, 7, "run: the program's exit status")
    result = cli('run', '--', '/nonexistent/program')
    check_equal((result.returncode, result.stderr),
                (127, 'otlpauto run: cannot execute /nonexistent/program: '
                      'No such file or directory\n'), 'run: a missing program')
    result = cli('run', '--', '/usr/bin/env', env={'OTLPAUTO_LIB': '/nonexistent/lib.so'})
    check_equal((result.returncode, result.stderr),
                (125, 'otlpauto run: cannot find libotlpauto.so (looked at: '
                      'OTLPAUTO_LIB=/nonexistent/lib.so, which does not exist); set '
                      'OTLPAUTO_LIB to its path\n'), 'run: OTLPAUTO_LIB naming nothing')


def static_busybox():
    """busybox from Debian's busybox-static, or None when it is not installed."""
    status = subprocess.run(['dpkg-query', '-W', '-f=${Status}', 'busybox-static'],
                            capture_output=True, text=True)
    return '/bin/busybox' if status.stdout == 'install ok installed' else None


def go_programs(tmp):
    """tests/programs/go_http.go built with CGO_ENABLED=0 (static) and =1
    (dynamic), or None when there is no go command."""
    go = shutil.which('go')
    if not go:
        return None
    cache = builddir() / 'go-cache'
    built = {}
    for name, cgo in (('static', '0'), ('dynamic', '1')):
        out = tmp / f'go_http_{name}'
        env = dict(os.environ, CGO_ENABLED=cgo, GOCACHE=str(cache), GOPATH=str(cache / 'path'),
                   GO111MODULE='off', GOFLAGS='')
        result = subprocess.run([go, 'build', '-o', out,
                                 srcdir() / 'tests' / 'programs' / 'go_http.go'],
                                env=env, capture_output=True, text=True, timeout=240)
        if not check(result.returncode == 0, f'go build ({name})', result.stderr):
            return None
        built[name] = out
    return built


def test_run_untraceable(tmp):
    """Programs that cannot be traced, or produce no span: run says so, and
    why, and writes no file."""
    statics = [program('cli_static')] if (builddir() / 'tests' / 'programs' /
                                          'cli_static').exists() else []
    if static_busybox():
        statics.append(static_busybox())
    else:
        print('skip: busybox-static is not installed (scripts/setup installs it)')
    go = go_programs(tmp)
    if go:
        statics.append(go['static'])
    else:
        print('skip: no go command (Debian golang-go): Go programs untested')
    for path in statics:
        name = os.path.basename(path)
        result = cli('run', '--', path, cwd=tmp)
        check_equal(result.stderr.splitlines(), [
            f"otlpauto: {path} is statically linked: there is no dynamic loader to preload "
            f"anything, so it cannot be traced; see 'otlpauto doctor {path}'",
            f'otlpauto: no span was produced: {path} is statically linked, it cannot be '
            'traced'], f'run {name}: static, said before and after, no file named')
        check_equal(sorted(p.name for p in tmp.glob('otlpauto-*')), [], f'run {name}: no file')
        spans = tmp / 'spans.jsonl'
        result = cli('run', '--file', spans, '--', path, cwd=tmp)
        check_equal(result.stderr.splitlines()[1:], [
            f'otlpauto: no span was produced, nothing was written to ./spans.jsonl: {path} '
            'is statically linked, it cannot be traced'], f'run --file {name}: the file named')
        check(not spans.exists(), f'run --file {name}: no file')
    if go and os.environ.get('OTLPAUTO_SANITIZER'):
        # (a sanitizer's runtime beside Go's in one process: never tried)
        print('skip: a sanitized build: the dynamically linked Go program is not run')
    elif go:
        path = go['dynamic']
        result = cli('run', '--', path, cwd=tmp)
        check_equal(result.stdout, '200 hello\n', 'run Go: the program works')
        lines = result.stderr.splitlines()
        file = lines[0].split()[4].rstrip(';') if lines else ''
        go_reason = ('is a Go program, which makes its system calls without the C library: '
                     'its own network and file I/O are not seen, the programs it starts are '
                     'traced')
        check_equal(lines[1:], [
            f"otlpauto: {path} {go_reason}; see 'otlpauto doctor {path}'",
            f'otlpauto: no span was produced, nothing was written to {file}: {path} '
            f'{go_reason}'], 'run Go: why no span came, and no file')
        check_equal(sorted(p.name for p in tmp.glob('otlpauto-*')), [], 'run Go: no file')
        (tmp / 'go').mkdir()
        spans = tmp / 'go' / 'spans.jsonl'
        result = cli('run', '--file', spans, '--', path, '/bin/true', cwd=tmp)
        check_equal(result.stderr, f"otlpauto: {path} {go_reason}; see 'otlpauto doctor "
                    f"{path}'\n", 'run Go starting a program: only the warning')
        names = [s['name'] for line in spans.read_text().splitlines()
                 for rs in json.loads(line).get('resourceSpans', []) for ss in rs['scopeSpans']
                 for s in ss['spans']] if spans.exists() else []
        check_equal(names, ['true'], 'run Go: the program it starts is traced, Go is not')
        result, lines = doctor(path)
        check(re.fullmatch(r'Go \(go[0-9.]+\): Go makes its system calls itself, not through '
                           r'the C library\. Not seen: its network and file I/O, its DNS '
                           r'lookups \(unless they go through the C library\'s resolver: '
                           r'GODEBUG=netdns=cgo\), its execs and its exit \(so no process '
                           r'span\)\. Seen: '
                           r'the programs it starts, when they use the C library',
                           lines.get('runtime:', '')), 'doctor Go: what is and is not seen',
              lines.get('runtime:'))
        check_equal((result.returncode, lines.get('verdict:')),
                    (0, 'preloading can work, but it is a Go program: its own network and file '
                     'I/O are not seen, the programs it starts are traced'), 'doctor Go: verdict')
        result, lines = doctor(go['static'])
        check(re.fullmatch(r'Go \(go[0-9.]+\)', lines.get('runtime:', '')),
              'doctor static Go: named', lines.get('runtime:'))
        check_equal(result.returncode, 1, 'doctor static Go: cannot work')

    # Traced, but nothing to write.
    result = cli('run', '--sampler', 'always_off', '--', '/bin/true', cwd=tmp)
    lines = result.stderr.splitlines()
    file = lines[0].split()[4].rstrip(';') if lines else ''
    check_equal(lines[1:], [f'otlpauto: no span was produced, nothing was written to {file}: '
                            'every span of /bin/true was sampled out (1)'],
                'run, every span sampled out: said, with the file')
    result = cli('run', '--file', 'none.jsonl', '--hooks', 'functions', '--', '/bin/true',
                 cwd=tmp)
    check_equal(result.stderr, 'otlpauto: no span was produced, nothing was written to '
                './none.jsonl: nothing was recorded in 1 traced process '
                '(OTLPAUTO_HOOKS=functions)\n', 'run, nothing recorded: said, with the file')
    check_equal(sorted(p.name for p in tmp.glob('*.jsonl')), [], 'run, no span: no file')


def forker_tree(stdout):
    """The tree view should show for one cli_forker run, durations as D: the
    parent's process span (exit 3), the forked child's under the frame open
    at the fork, the exec'd image's under the exec span (exit 0)."""
    pids = dict(line.split() for line in stdout.splitlines())
    path = program('cli_forker')
    return (f'trace ID  D  9 spans\n'
            f'  cli_forker  D  exit=3  [pid {pids["parent"]} cli_forker]\n'
            f'    main  D\n'
            f'      parent_work  D\n'
            f'      cli_forker  D  [pid {pids["child"]} cli_forker]\n'
            f'        child_work  D\n'
            f'        exec cli_forker  D  exe={path}\n'
            f'          cli_forker  D  exit=0\n'
            f'            main  D\n'
            f'              exec_work  D\n')


def normalized(view_output):
    return re.sub(r'trace [0-9a-f]{32}', 'trace ID', DURATION.sub('D', view_output))


def test_run_and_view(tmp):
    spans = tmp / 'forker.jsonl'
    result = cli('run', '--file', spans.name, '--', program('cli_forker'), cwd=tmp)
    check_equal(result.returncode, 3, 'run --file: the exit status of a traced program')
    view = cli('view', spans, '--color=never')
    check_equal((view.returncode, view.stderr), (0, ''), 'view: a run\'s file reads cleanly')
    check_equal(normalized(view.stdout), forker_tree(result.stdout),
                'view: parent, forked child and exec\'d program in one tree')

    # Each process writes its own file when the library names them by pid.
    files = tmp / 'by_pid'
    files.mkdir()
    result = run_traced([program('cli_forker')], cwd=files,
                        env={'OTEL_TRACES_EXPORTER': 'otlp/file'})
    names = sorted(p.name for p in files.iterdir())
    check(len(names) == 2, 'by pid: the parent and the child each write a file', names)
    view = cli('view', '--color=never', *names, cwd=files)
    check_equal(normalized(view.stdout), forker_tree(result.stdout),
                'view: one tree from the files of two processes')

    view = cli('view', '--color=never', cwd=tmp)
    check_equal(view.returncode, 1, 'view without FILE and no otlpauto-*.jsonl: status 1')


def test_run_endpoint():
    with Receiver() as receiver:
        result = cli('run', '--endpoint', receiver.url, '--service', 'cli-svc', '--gzip',
                     '--header', 'x-test=v 1,2', '--', program('cli_forker'),
                     env={'OTEL_BSP_SCHEDULE_DELAY': '200'})
        spans = receiver.wait_for_spans(9, timeout=20)
        spans = receiver.wait_for_spans(10, timeout=0.5)
    check_equal(result.returncode, 3, 'run --endpoint: exit status')
    check_equal(sorted(s['name'] for s in spans),
                ['child_work', 'cli_forker', 'cli_forker', 'cli_forker', 'exec cli_forker',
                 'exec_work', 'main', 'main', 'parent_work'],
                'run --endpoint: every span arrives')
    check_equal({s['resource']['service.name'] for s in spans}, {'cli-svc'},
                'run --service: service.name')
    requests = [r for r in receiver.requests if r.status == 200]
    check(requests and all(r.headers.get('x-test') == 'v 1,2' for r in requests),
          'run --header: sent on every request', [r.headers for r in receiver.requests])
    check(requests and all(r.headers.get('content-encoding') == 'gzip' for r in requests),
          'run --gzip: requests are compressed')

# ------------------------------------------------------------ view fixtures


def attributes(attrs):
    out = []
    for key, value in attrs.items():
        if isinstance(value, bool):
            out.append({'key': key, 'value': {'boolValue': value}})
        elif isinstance(value, int):
            out.append({'key': key, 'value': {'intValue': str(value)}})
        else:
            out.append({'key': key, 'value': {'stringValue': value}})
    return out


def span(trace, span_id, name, start_ms, duration_ms, parent='', kind=1, error=None,
         attrs=None):
    result = {'traceId': trace, 'spanId': span_id, 'name': name, 'kind': kind,
              'startTimeUnixNano': str(BASE_NS + int(start_ms * MS)),
              'endTimeUnixNano': str(BASE_NS + int((start_ms + duration_ms) * MS)),
              'attributes': attributes(attrs or {})}
    if parent:
        result['parentSpanId'] = parent
    if error is not None:
        result['status'] = {'message': error, 'code': 2}
    return result


def request(pid, executable, spans):
    resource = attributes({'service.name': executable, 'process.pid': pid,
                           'process.executable.name': executable})
    return json.dumps({'resourceSpans': [{'resource': {'attributes': resource}, 'scopeSpans': [
        {'scope': {'name': 'test'}, 'spans': spans}]}]})


def write_fixtures(tmp):
    """Two processes of one trace: a client (pid 200) calling a server (pid 100);
    the server's file also holds a span whose parent never arrived, a second
    trace, a truncated line and a line with a bad trace id."""
    client = tmp / 'client.jsonl'
    server = tmp / 'server.jsonl'
    client.write_text(
        request(200, 'client', [
            span(TRACE, '00000000000000c2', 'GET', 5, 30, parent='00000000000000c1', kind=3,
                 error='HTTP 500', attrs={
                     'http.request.method': 'GET', 'url.full': 'http://127.0.0.1:8080/users',
                     'http.response.status_code': 500, 'network.peer.address': '127.0.0.1',
                     'network.peer.port': 8080, 'thread.id': 200}),
            span(TRACE, '00000000000000c3', 'getaddrinfo', 1, 2, parent='00000000000000c1',
                 attrs={'dns.question.name': 'example.com', 'thread.id': 200})]) + '\n'
        + '\n'
        + request(200, 'client', [
            span(TRACE, '00000000000000c1', 'main', 0, 50,
                 attrs={'code.function.name': 'main', 'thread.id': 200})]) + '\n')
    query = {'code.function.name': 'db_query_impl', 'thread.id': 101}
    good = request(100, 'server', [
        span(TRACE, '00000000000000a1', 'GET /users', 10, 20, parent='00000000000000c2',
             kind=2, error='boom', attrs={
                 'http.request.method': 'GET', 'url.path': '/users',
                 'http.response.status_code': 500, 'error.type': '500', 'thread.id': 101,
                 'thread.name': 'worker'}),
        span(TRACE, '00000000000000a2', 'query_db', 12, 10, parent='00000000000000a1',
             attrs=query),
        span(TRACE, '00000000000000a3', 'query_db', 23, 5, parent='00000000000000a1',
             attrs=query),
        span(TRACE, '00000000000000a4', 'orphan', 40, 1, parent='ffffffffffffffff',
             attrs={'thread.id': 100}),
        span(OTHER_TRACE, '00000000000000b1', 'idle', 100, 1, attrs={'thread.id': 100})])
    bad_id = request(100, 'server', [span('xyz', '00000000000000d1', 'lost', 0, 1)])
    # Cut inside the string "name", as a process killed while writing would.
    truncated = good[:good.index('"name"') + 3]
    server.write_text(good + '\n' + truncated + '\n' + '\n' + bad_id + '\n')
    return client, server, len(truncated) - 2


EXPECTED_TREES = (
    f'trace {TRACE}  50.000ms  7 spans\n'
    '  main  50.000ms  [pid 200 client]\n'
    '    getaddrinfo  2.000ms  dns=example.com\n'
    '    GET  30.000ms  client  method=GET  url=http://127.0.0.1:8080/users  status=500'
    '  peer=127.0.0.1:8080  ERROR: HTTP 500\n'
    '      GET /users  20.000ms  server  method=GET  path=/users  status=500'
    '  [pid 100 server]  ERROR: boom (500)\n'
    '        query_db  10.000ms  function=db_query_impl\n'
    '        query_db  5.000ms  function=db_query_impl\n'
    '  orphan  1.000ms  [pid 100 server]  (parent not received)\n'
    '\n'
    f'trace {OTHER_TRACE}  1.000ms  1 span\n'
    '  idle  1.000ms  [pid 100 server]\n')


def test_view_fixtures(tmp):
    client, server, truncated_at = write_fixtures(tmp)
    result = cli('view', client, server)
    check_equal(result.returncode, 0, 'view: status with corrupt lines')
    check_equal(result.stdout, EXPECTED_TREES,
                'view: trees across files, kinds, key attributes, errors, orphans, order')
    warnings = result.stderr.splitlines()
    check_equal(warnings[:1], [f'otlpauto view: {server}:2: invalid JSON at byte '
                               f'{truncated_at}: unterminated string; line skipped'],
                'view: a truncated line is skipped with one warning naming file:line')
    check_equal(warnings[1:], [f'otlpauto view: {server}:4: a span has no valid traceId '
                               '(32 hex digits, not all zero); line skipped'],
                'view: a line with a bad id is skipped with one warning')

    result = cli('view', server, client, server)
    check_equal(result.stdout, EXPECTED_TREES, 'view: file order and repeats do not matter')
    check(result.stderr.endswith('otlpauto view: 5 duplicate spans ignored\n'),
          'view: duplicates are counted', result.stderr)

    result = cli('view', '--color=always', client, server)
    lines = result.stdout.splitlines()
    check_equal(lines[0], f'\033[1mtrace {TRACE}\033[0m  50.000ms  7 spans',
                '--color=always: the trace id in bold')
    check_equal(lines[4], '      \033[1;31mGET /users  20.000ms  server  method=GET  path=/users'
                '  status=500  [pid 100 server]  ERROR: boom (500)\033[0m',
                '--color=always: an error span in red')
    check_equal(lines[7], '  orphan  1.000ms  [pid 100 server]  \033[33m(parent not '
                'received)\033[0m', '--color=always: a missing parent in yellow')
    result = cli('view', '--color', client, server)
    check('\033[' in result.stdout, '--color alone means always')
    result = cli('view', '--color=auto', client, server)
    check_equal(result.stdout, EXPECTED_TREES, '--color=auto: no color into a pipe')

    result = cli('view', '--min-duration', '10ms', client, server)
    check_equal(result.stdout, EXPECTED_TREES.split('\n\n')[0] + '\n',
                '--min-duration: only traces whose root is slower')
    result = cli('view', '--min-duration', '51ms', client, server)
    check_equal(result.stdout, '', '--min-duration above every root: nothing')
    result = cli('view', '--trace', '1111', client, server)
    check_equal(result.stdout, EXPECTED_TREES.split('\n\n')[1], '--trace: an id prefix')
    result = cli('view', '--trace', TRACE.upper(), client, server)
    check_equal(result.stdout, EXPECTED_TREES.split('\n\n')[0] + '\n',
                '--trace: a whole id, any case')

    result = cli('view', tmp / 'missing.jsonl', client)
    check(result.returncode == 1 and result.stderr.startswith(
        f'otlpauto view: cannot open {tmp}/missing.jsonl: No such file or directory'),
        'view: a file that cannot be read: status 1, the rest shown', result.stderr)
    result = cli('view', tmp / 'missing.jsonl')
    check_equal((result.returncode, result.stdout, result.stderr),
                (1, '', f'otlpauto view: cannot open {tmp}/missing.jsonl: '
                        'No such file or directory\n'), 'view: a missing file alone: status 1')
    empty = tmp / 'empty.jsonl'
    empty.write_text('')
    result = cli('view', empty)
    check_equal((result.returncode, result.stdout, result.stderr),
                (1, '', f'otlpauto view: {empty}: empty file, no spans\n'),
                'view: an empty file says so, status 1')
    blank = tmp / 'resources-only.jsonl'
    blank.write_text('\n{"resourceSpans":[]}\n')
    result = cli('view', blank, client)
    check_equal((result.returncode, result.stderr),
                (1, f'otlpauto view: {blank}: no span in it\n'),
                'view: a file without spans says so, status 1, the rest shown')
    check_equal(result.stdout, cli('view', client).stdout, 'view: the other file still shown')


def test_view_cycles(tmp):
    loop = tmp / 'loop.jsonl'
    trace = '22222222222222222222222222222222'
    loop.write_text(request(300, 'loop', [
        span(trace, '00000000000000e1', 'x', 0, 5, parent='00000000000000e2'),
        span(trace, '00000000000000e2', 'y', 1, 1, parent='00000000000000e1'),
        span(trace, '00000000000000e3', 'z', 10, 1, parent='00000000000000e3')]) + '\n')
    result = cli('view', loop)
    check_equal(result.stdout, (
        f'trace {trace}  11.000ms  3 spans\n'
        '  x  5.000ms  [pid 300 loop]  (parent cycle cut here)\n'
        '    y  1.000ms\n'
        '  z  1.000ms  [pid 300 loop]  (parent cycle cut here)\n'),
        'view: parent cycles are cut, every span shown once')


EXPECTED_SUMMARY = (
    '   calls         total          self       average           max  name\n'
    '       1      50.000ms      18.000ms      50.000ms      50.000ms  main\n'
    '       1      30.000ms      10.000ms      30.000ms      30.000ms  GET\n'
    '       1      20.000ms       5.000ms      20.000ms      20.000ms  GET /users\n'
    '       2      15.000ms      15.000ms       7.500ms      10.000ms  query_db\n'
    '       1       2.000ms       2.000ms       2.000ms       2.000ms  getaddrinfo\n'
    '       1       1.000ms       1.000ms       1.000ms       1.000ms  idle\n'
    '       1       1.000ms       1.000ms       1.000ms       1.000ms  orphan\n')


def test_view_summary(tmp):
    client, server, _ = write_fixtures(tmp)
    result = cli('view', '--summary', client, server)
    check_equal(result.stdout, EXPECTED_SUMMARY, '--summary: calls, total, self, average, max')
    result = cli('view', '--summary', '--trace', OTHER_TRACE, client, server)
    check_equal(result.stdout, EXPECTED_SUMMARY.splitlines(True)[0] + EXPECTED_SUMMARY.splitlines(
        True)[6], '--summary with --trace: only that trace')


def test_view_chrome(tmp):
    client, server, _ = write_fixtures(tmp)
    out = tmp / 'chrome.json'
    result = cli('view', '--chrome', out, client, server)
    check_equal((result.returncode, result.stdout), (0, ''), '--chrome: no tree on stdout')
    document = json.loads(out.read_text())
    events = document['traceEvents']
    complete = [e for e in events if e['ph'] == 'X']
    check_equal(sorted(e['name'] for e in complete),
                ['GET', 'GET /users', 'getaddrinfo', 'idle', 'main', 'orphan', 'query_db',
                 'query_db'], '--chrome: one X event per span')
    server_span = next(e for e in complete if e['name'] == 'GET /users')
    check_equal(server_span, {
        'name': 'GET /users', 'cat': 'server', 'ph': 'X',
        'ts': (BASE_NS + 10 * MS) / 1000, 'dur': 20000, 'pid': 100, 'tid': 101,
        'args': {'http.request.method': 'GET', 'url.path': '/users',
                 'http.response.status_code': 500, 'error.type': '500', 'thread.id': 101,
                 'thread.name': 'worker'}}, '--chrome: an event in full')
    metadata = sorted((e['name'], e['pid'], e.get('tid'), e['args']['name'])
                      for e in events if e['ph'] == 'M')
    check_equal(metadata, [('process_name', 100, None, 'server'),
                           ('process_name', 200, None, 'client'),
                           ('thread_name', 100, 101, 'worker')],
                '--chrome: process and thread names')
    result = cli('view', '--chrome', '-', '--trace', OTHER_TRACE, client, server)
    names = [e['name'] for e in json.loads(result.stdout)['traceEvents'] if e['ph'] == 'X']
    check_equal(names, ['idle'], '--chrome - writes to stdout, filters apply')


def test_view_default_file(tmp):
    folder = tmp / 'default'
    folder.mkdir()
    client, server, _ = write_fixtures(tmp)
    shutil.copy(client, folder / 'otlpauto-client-1.jsonl')
    shutil.copy(server, folder / 'otlpauto-server-2.jsonl')
    old = time.time() - 100
    os.utime(folder / 'otlpauto-client-1.jsonl', (old, old))
    result = cli('view', cwd=folder)
    check_equal(result.stdout, (
        f'trace {TRACE}  31.000ms  4 spans\n'
        '  GET /users  20.000ms  server  method=GET  path=/users  status=500'
        '  [pid 100 server]  ERROR: boom (500)  (parent not received)\n'
        '    query_db  10.000ms  function=db_query_impl\n'
        '    query_db  5.000ms  function=db_query_impl\n'
        '  orphan  1.000ms  [pid 100 server]  (parent not received)\n'
        '\n'
        f'trace {OTHER_TRACE}  1.000ms  1 span\n'
        '  idle  1.000ms  [pid 100 server]\n'), 'view without FILE: the newest otlpauto-*.jsonl')

# ------------------------------------------------------------ doctor


def doctor(target, env=None, executable=None):
    result = cli('doctor', target, env=env, executable=executable)
    lines = {}
    for line in result.stdout.splitlines():
        label, _, value = line.partition(' ')
        lines.setdefault(label, value.strip())
    return result, lines


def test_doctor_programs(tmp):
    lib = real_lib()
    result, lines = doctor(program('cli_forker'), env={'OTLPAUTO_LIB': None})
    check_equal(result.returncode, 0, 'doctor instrumented: status 0')
    check(re.fullmatch(r'dynamic \(loader /\S+\): LD_PRELOAD applies', lines.get('linking:', '')),
          'doctor instrumented: dynamic', lines)
    check_equal(lines.get('format:'), 'ELF 64-bit x86-64 position-independent executable'
                if os.uname().machine == 'x86_64' else lines.get('format:'),
                'doctor instrumented: format')
    check_equal(lines.get('functions:'), 'built with -finstrument-functions (imports '
                '__cyg_profile_func_enter): function spans', 'doctor instrumented: functions')
    check_equal(lines.get('symbols:'), 'symbol table present (.symtab): function names resolve',
                'doctor instrumented: symbols')
    check_equal(lines.get('set-id:'), 'no set-uid, set-gid or file capabilities',
                'doctor instrumented: set-id')
    check_equal(lines.get('libc:'), 'glibc (libc.so.6)', 'doctor instrumented: libc')
    check_equal(lines.get('library:'), f'{lib} (exists)',
                'doctor: the library beside the command in the build tree')
    check_equal(lines.get('runtime:'), 'no Go runtime, no io_uring: its I/O goes through the '
                'C library', 'doctor instrumented: runtime')
    check_equal(lines.get('tls:'), 'no TLS library among the needed ones: OpenSSL or GnuTLS '
                'loaded with another library or later is seen', 'doctor instrumented: tls')
    check_equal(lines.get('verdict:'), 'preloading can work', 'doctor instrumented: verdict')

    static_openssl = builddir() / 'tests' / 'programs' / 'tls_static'
    if static_openssl.exists():
        result, lines = doctor(static_openssl)
        check_equal(lines.get('tls:'), 'OpenSSL is linked into the program: its HTTPS requests '
                    'and responses are not seen (only its connections)',
                    'doctor static OpenSSL: not seen')
        check_equal((result.returncode, lines.get('verdict:')),
                    (0, 'preloading can work, but OpenSSL is linked in statically: its HTTPS '
                     'is not seen'), 'doctor static OpenSSL: verdict')
    else:
        print('skip: no libssl.a (libssl-dev): doctor on static OpenSSL untested')
    for name, needed, seen in (('nginx', 'libssl.so', True), ('wget', 'libgnutls.so', True)):
        path = shutil.which(name) or shutil.which(name, path='/usr/sbin')
        if not path:
            print(f'skip: no {name}: doctor on its TLS library untested')
            continue
        result, lines = doctor(path)
        check(needed in lines.get('tls:', '') and
              ('are seen' in lines['tls:']) == seen, f'doctor {name}: {needed} named, '
              f'{"seen" if seen else "not seen"}', lines.get('tls:'))

    uring = builddir() / 'tests' / 'programs' / 'uring_user'
    if uring.exists():
        result, lines = doctor(uring)
        check_equal(lines.get('runtime:'), 'io_uring (liburing.so.2): reads, writes, accepts and '
                    'connects submitted through io_uring bypass the C library and are not seen',
                    'doctor io_uring: what is not seen')
        check_equal((result.returncode, lines.get('verdict:')),
                    (0, 'preloading can work, but I/O it submits through io_uring is not seen'),
                    'doctor io_uring: verdict')
    else:
        print('skip: no liburing-dev (scripts/setup installs it): doctor io_uring untested')

    result, lines = doctor('true')
    check_equal(lines.get('program:'), shutil.which('true'), 'doctor: a name is found in PATH')
    check(lines.get('linking:', '').startswith('dynamic'), 'doctor /bin/true: dynamic')
    check_equal(lines.get('functions:'), 'not built with -finstrument-functions: no function '
                'spans, only process, socket, DNS and HTTP spans',
                'doctor /bin/true: not instrumented')
    check_equal(lines.get('symbols:'), 'stripped (no .symtab): only exported functions '
                '(.dynsym) have names', 'doctor /bin/true: stripped')
    check_equal(result.returncode, 0, 'doctor /bin/true: status 0')

    static = builddir() / 'tests' / 'programs' / 'cli_static'
    if static.exists():
        result, lines = doctor(static)
        check_equal(lines.get('linking:'), 'static: there is no dynamic loader to preload '
                    'anything', 'doctor static: static')
        check_equal(lines.get('functions:'), 'built with -finstrument-functions (defines '
                    '__cyg_profile_func_enter)', 'doctor static: instrumented')
        check_equal(lines.get('libc:'), 'none among the needed libraries (static)',
                    'doctor static: libc')
        check_equal((result.returncode, lines.get('verdict:')),
                    (1, 'preloading cannot work: it is linked statically'),
                    'doctor static: verdict and status')
    else:
        print('skip: no static glibc to build cli_static; doctor on a static binary untested')

    setuid = tmp / 'setuid_copy'
    shutil.copy(program('cli_forker'), setuid)
    os.chmod(setuid, 0o4755)
    result, lines = doctor(setuid)
    check_equal(lines.get('set-id:'), 'set-uid, but you own it: LD_PRELOAD works when you run '
                'it, not for other users', 'doctor set-uid copy of your own')
    if os.geteuid() == 0:
        os.chown(setuid, 65534, 65534)
        os.chmod(setuid, 0o6755)  # chown clears the bits
        result, lines = doctor(setuid)
        check_equal(lines.get('set-id:'), 'set-uid, set-gid (owner 65534:65534): the loader '
                    'runs it in secure-execution mode and ignores LD_PRELOAD',
                    'doctor set-uid copy of another user')
        check_equal((result.returncode, lines.get('verdict:')),
                    (1, 'preloading cannot work: it is set-uid or set-gid'),
                    'doctor set-uid of another user: verdict and status')

    script = tmp / 'script.sh'
    script.write_text('#!/bin/sh -e\nexit 0\n')
    script.chmod(0o755)
    result, lines = doctor(script)
    check_equal(lines.get('script:'), 'run by /bin/sh, which is what gets preloaded',
                'doctor on a script: its interpreter')
    check_equal(result.returncode, 0, 'doctor on a script: status 0')
    text = tmp / 'notes.txt'
    text.write_text('hello\n')
    result, lines = doctor(text)
    check_equal((result.returncode, lines.get('verdict:')),
                (1, f'cannot tell: {text} is not an ELF file'), 'doctor on a text file')
    result = cli('doctor', tmp / 'missing')
    check_equal((result.returncode, result.stderr),
                (1, f'otlpauto doctor: {tmp}/missing: not found\n'), 'doctor on nothing')


def test_doctor_library_search(tmp):
    prefix = tmp / 'prefix'
    (prefix / 'bin').mkdir(parents=True)
    (prefix / 'lib').mkdir()
    shutil.copy(cli_path(), prefix / 'bin' / 'otlpauto')
    shutil.copy(lib_path(), prefix / 'lib' / 'libotlpauto.so')
    result, lines = doctor('/bin/true', env={'OTLPAUTO_LIB': None},
                           executable=prefix / 'bin' / 'otlpauto')
    check_equal(lines.get('library:'), f'{prefix}/lib/libotlpauto.so (exists)',
                'doctor: an installed command finds the library under its prefix')
    result, lines = doctor('/bin/true', env={'OTLPAUTO_LIB': prefix / 'lib' / 'libotlpauto.so'})
    check_equal(lines.get('library:'), f'{prefix}/lib/libotlpauto.so (exists)',
                'doctor: OTLPAUTO_LIB wins')
    result, lines = doctor('/bin/true', env={'OTLPAUTO_LIB': tmp / 'none.so'})
    check_equal((result.returncode, lines.get('library:')),
                (1, f'libotlpauto.so not found (looked at: OTLPAUTO_LIB={tmp}/none.so, which '
                    'does not exist)'), 'doctor: a missing library fails the verdict')


def test_doctor_collector():
    with Receiver() as receiver:
        result, lines = doctor('/bin/true', env={'OTEL_EXPORTER_OTLP_ENDPOINT': receiver.url,
                                                 'OTEL_EXPORTER_OTLP_HEADERS': 'x-k=secret'})
        check_equal(lines.get('collector:'), f'{receiver.traces_url}: reachable, HTTP 200: it '
                    'accepts traces', 'doctor: a collector that answers')
        posts = [r for r in receiver.requests if r.method == 'POST']
        check(len(posts) == 1 and posts[0].body == b'' and posts[0].headers.get('x-k') ==
              'secret' and posts[0].headers.get('content-type') == 'application/x-protobuf',
              'doctor: POSTs an empty protobuf ExportTraceServiceRequest with the headers')
        doctor('/bin/true', env={'OTEL_EXPORTER_OTLP_ENDPOINT': receiver.url,
                                 'OTEL_EXPORTER_OTLP_PROTOCOL': 'http/json'})
        posts = [r for r in receiver.requests if r.method == 'POST']
        check(len(posts) == 2 and posts[1].body == b'{}' and posts[1].status == 200,
              'doctor: an empty JSON request with http/json')
        result, lines = doctor('/bin/true', env={
            'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT': receiver.url + '/elsewhere'})
        check_equal(lines.get('collector:'), f'{receiver.url}/elsewhere: reachable, but HTTP '
                    '404 (no OTLP traces endpoint at this path)', 'doctor: a wrong path')
    port = free_port()
    result, lines = doctor('/bin/true', env={'OTEL_EXPORTER_OTLP_ENDPOINT':
                                             f'http://user:pw@127.0.0.1:{port}'})
    check(lines.get('collector:', '').startswith(
        f'http://***@127.0.0.1:{port}/v1/traces: refused or unreachable'),
        'doctor: a collector that is down, without the password', lines)
    check_equal(result.returncode, 0, 'doctor: a collector that is down is no preload problem')
    result, lines = doctor('/bin/true', env={'OTEL_TRACES_EXPORTER': 'console'})
    check_equal(lines.get('collector:'), 'none: OTEL_TRACES_EXPORTER=console prints spans on '
                'stderr', 'doctor: the console exporter')
    check_equal(lines.get('hooks:'), 'functions,sockets,dns,http,tls,process (OTLPAUTO_HOOKS)',
                'doctor: the hooks by default')
    result, lines = doctor('/bin/true', env={'OTLPAUTO_HOOKS': 'process,files'})
    check_equal(lines.get('hooks:'), 'process,files (OTLPAUTO_HOOKS)', 'doctor: OTLPAUTO_HOOKS')

# ------------------------------------------------------------ the man page


def test_man_page():
    page = (srcdir() / 'doc' / 'otlpauto.1').read_text().replace('\\', '')
    variable = r'\b(?:OTEL|OTLPAUTO)_[A-Z_]*[A-Z]\b'
    # The names the parser reads, and those its header mentions ([TRACES_] both ways).
    names = set(re.findall(rf'"({variable})"', (srcdir() / 'src' / 'config.c').read_text()))
    header = (srcdir() / 'src' / 'config.h').read_text()
    for infix in ('', 'TRACES_'):
        names |= set(re.findall(variable, header.replace('[TRACES_]', infix)))
    names -= {'OTLPAUTO_CONFIG_H'}
    check(len(names) > 40, 'man page: the variables are found in the sources', sorted(names))
    check_equal(sorted(names - set(re.findall(variable, page))), [],
                'man page: every variable of src/config.h and src/config.c')
    for option in ('endpoint', 'service', 'file', 'console', 'threshold', 'functions',
                   'exclude', 'sampler', 'hooks', 'header', 'gzip', 'min-duration', 'trace',
                   'summary', 'chrome', 'color'):
        check(f'--{option}' in page, f'man page: --{option}')
    groff = shutil.which('groff')
    if groff:
        result = subprocess.run([groff, '-man', '-Tutf8', '-ww', '-z', srcdir() / 'doc' /
                                 'otlpauto.1'], capture_output=True, text=True, timeout=TIMEOUT)
        check_equal(result.stderr, '', 'man page: groff -ww finds nothing to warn about')


def all_tests():
    test_help_and_version()
    test_needed_libraries()
    test_bad_usage()
    test_run_statuses()
    test_doctor_collector()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for test in (test_run_environment, test_run_default_file, test_run_untraceable,
                     test_run_and_view,
                     test_view_fixtures, test_view_cycles, test_view_summary, test_view_chrome,
                     test_view_default_file, test_doctor_programs, test_doctor_library_search):
            folder = tmp / test.__name__
            folder.mkdir()
            test(folder)
    test_run_endpoint()
    test_man_page()


if __name__ == '__main__':
    main(all_tests)
