"""Hostile input and programs the shim must not break. Every OTEL_* and
OTLPAUTO_* variable src/config.c reads, set to malformed values, under a real
traced program: only "otlpauto:" warning lines appear, the program's output
and exit status are unchanged. Symbol names, paths and attribute values that
are not UTF-8 are exported as valid UTF-8 (the receiver's decoder rejects
anything else) with U+FFFD. Set-uid and static programs run untouched;
programs that close every descriptor, use vfork, replace malloc, or get the
shim preloaded twice keep working and their spans arrive once. Credentials
in command arguments are redacted. Each traced program image also sends its
process span (named after the executable), counted here like any span."""

import collections
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

from harness import (Receiver, assert_single_trace, assert_tree_whole, builddir, check,
                     check_equal, check_holds, lib_path, main, parent_pairs, preload_value,
                     process_spans, program, run_traced, srcdir)

EVERY_CALL = {'OTLPAUTO_FUNCTION_THRESHOLD': '0'}
SANITIZED = bool(os.environ.get('OTLPAUTO_SANITIZER'))  # set by meson in sanitized builds
# hostile vfork: the parent's process span and frames, its exec span, the
# new image's process span and frames (the vfork child only execs: no
# process span of its own).
VFORK_PAIRS = {('hostile', None): 1, ('main', 'hostile'): 2, ('run_vfork', 'main'): 1,
               ('exec hostile', 'run_vfork'): 1, ('hostile', 'exec hostile'): 1,
               ('do_work', 'main'): 1, ('work_leaf', 'do_work'): 3}
OWN_STDERR = 'hostile: own stderr line'

# Malformed values: not numbers, negative, huge, empty, blank, trailing
# garbage, garbage URLs, bad percent-encoding, key=value lists without '=',
# bytes that are not UTF-8 (surrogate escapes become raw bytes), very long.
BAD_VALUES = ['abc', '-1', '99999999999999999999999999', '', '   ', '12abc',
              'http://user:pw@[::1', 'ht!tp://', '%zz%4', 'novalue,=x,a=%', '\udcff\udcfe',
              'x' * 5000]
# Variables for which any string is acceptable ('abc' needs no warning).
FREE_FORM = {'OTEL_SERVICE_NAME', 'OTEL_EXPORTER_OTLP_ENDPOINT',
             'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_CERTIFICATE',
             'OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CLIENT_KEY',
             'OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY', 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE',
             'OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE', 'OTLPAUTO_FILE',
             'OTLPAUTO_FUNCTION_INCLUDE', 'OTLPAUTO_FUNCTION_EXCLUDE', 'TRACEPARENT'}
# What makes a variable read at all (the sampler argument needs a sampler
# that takes one).
CONTEXT = {'OTEL_TRACES_SAMPLER_ARG': {'OTEL_TRACES_SAMPLER': 'traceidratio'}}


def names(spans):
    return dict(collections.Counter(s['name'] for s in spans))


def run(argv, expected, env=None, timeout=60):
    with Receiver() as receiver:
        result = run_traced(argv, receiver, env={**EVERY_CALL, **(env or {})}, timeout=timeout)
        spans = receiver.wait_for_spans(expected, timeout=10)
        spans = receiver.wait_for_spans(len(spans) + 1, timeout=0.3)
    return result, spans


def config_variables():
    """Every variable name src/config.c reads (so new ones are covered too);
    not the prefixes it builds names from ("OTEL_EXPORTER_OTLP_METRICS_")."""
    text = (srcdir() / 'src' / 'config.c').read_text(encoding='utf-8')
    return sorted(set(re.findall(r'"((?:OTEL|OTLPAUTO)_[A-Z0-9_]*[A-Z0-9])"', text)))


def test_bad_environment():
    variables = config_variables() + ['TRACEPARENT']
    check(len(variables) > 40, 'bad env: the variables are found in config.c', variables)
    started = time.monotonic()
    failures = []
    with Receiver() as receiver:
        for name in variables:
            for value in BAD_VALUES:
                # Short export and exit timeouts bound runs whose endpoint is
                # now unusable; the timeout variables themselves get the value.
                env = {**EVERY_CALL, 'OTEL_BSP_EXPORT_TIMEOUT': '1500',
                       'OTLPAUTO_EXIT_TIMEOUT': '1500ms', **CONTEXT.get(name, {}), name: value}
                result = run_traced([program('hostile'), 'status', '7'], receiver, env=env,
                                    timeout=30)
                shown = value if len(value) < 40 else value[:20] + '...'
                problem = bad_env_problem(name, value, result)
                if problem:
                    failures.append(f'{name}={shown!r}: {problem}')
    runs = len(variables) * len(BAD_VALUES)
    print(f'# bad env: {runs} runs in {time.monotonic() - started:.1f} s', flush=True)
    check(not failures, f'bad env: {len(variables)} variables x {len(BAD_VALUES)} values: '
          'only warnings, output and status unchanged', '\n  '.join(failures[:30]))


def bad_env_problem(name, value, result):
    """What is wrong with a run under a malformed variable, or ''."""
    if result.timed_out or result.elapsed > 10:
        return f'took {result.elapsed:.1f} s'
    if (result.returncode, result.stdout) != (7, 'work done\n'):
        return f'status {result.returncode}, output {result.stdout!r}'
    lines = result.stderr.splitlines()
    own = [line for line in lines if line == OWN_STDERR]
    ours = [line for line in lines if line.startswith('otlpauto: ')]
    if len(own) != 1 or len(own) + len(ours) != len(lines):
        return f'stderr {lines!r}'
    if len(ours) > 4:
        return f'{len(ours)} warning lines: {ours!r}'
    if value == 'abc' and name not in FREE_FORM and not any(name in line for line in ours):
        return f'no warning names the variable: {ours!r}'
    return ''


def test_bad_setting_once_per_tree():
    """A traced script with a bad setting: one warning for the whole tree, not
    one per command; a command whose settings differ is warned about, and so
    is otlpauto run's program, once."""
    script = 'for i in 1 2 3 4 5; do /bin/true; done; OTEL_BSP_SCHEDULE_DELAY=worse /bin/true'
    env = {'OTEL_BSP_SCHEDULE_DELAY': 'bad', 'OTEL_TRACES_EXPORTER': 'none'}
    with Receiver() as receiver:
        result = run_traced(['bash', '-c', script], receiver, env=env, timeout=30)
    warned = [line for line in result.stderr.splitlines() if 'OTEL_BSP_SCHEDULE_DELAY' in line]
    check((result.returncode, len(warned), sum('"worse"' in w for w in warned)) == (0, 2, 1),
          'bad setting: warned once by the shell, once by the command that changed it',
          result.stderr)
    out = tempfile.mkdtemp(prefix='otlpauto-warn-')
    run_env = {k: v for k, v in os.environ.items() if not k.startswith('OTEL_')
               and k != 'LD_PRELOAD'}
    run_env['OTEL_BSP_SCHEDULE_DELAY'] = 'bad'
    result = subprocess.run([str(builddir() / 'tools' / 'otlpauto' / 'otlpauto'), 'run', '--file',
                             os.path.join(out, 'spans.jsonl'), '--', 'bash', '-c',
                             'for i in 1 2 3; do /bin/true; done'],
                            env=run_env, capture_output=True, text=True, timeout=30)
    shutil.rmtree(out)
    warned = [line for line in result.stderr.splitlines() if 'OTEL_BSP_SCHEDULE_DELAY' in line]
    check((result.returncode, len(warned)) == (0, 1), 'bad setting under otlpauto run: once',
          result.stderr)


def test_utf8_symbols():
    result, spans = run([program('hostile'), 'utf8'], 6)
    check_equal((result.returncode, result.stdout), (0, 'utf8 done\n'), 'UTF-8 symbols: program')
    bad = next((s for s in spans if s['name'].endswith('_bad')), None)
    good = next((s for s in spans if s['name'].endswith('_good')), None)
    check(bad is not None and '\ufffd' in bad['name'] and bad['name'].endswith('_bad'),
          'UTF-8 symbols: a symbol with bytes 0xff 0xfe arrives with U+FFFD', names(spans))
    check(good is not None and good['name'] == 'utf8_\u00e9_good',
          'UTF-8 symbols: a valid UTF-8 symbol arrives unchanged', names(spans))
    check(bad is not None and bad['attributes'].get('code.function.name') == bad['name'],
          'UTF-8 symbols: code.function.name is sanitised too')


def test_utf8_path_and_attributes(directory):
    """A program run (and exec'd) through a symlink whose name has bytes
    0xff 0xfe, with a resource attribute that percent-decodes to them."""
    link = os.path.join(os.fsencode(directory), b'\xff\xfe-hostile')
    os.symlink(os.fsencode(program('hostile')), link)
    result, spans = run([os.fsdecode(link), 'vfork'], 10,
                        env={'OTEL_RESOURCE_ATTRIBUTES': 'bad.bytes=%FF%FEx'})
    check_equal((result.returncode, result.stdout), (0, 'work done\nchild 0\n'),
                'UTF-8 path: the program runs')
    exec_spans = [s for s in spans if s['name'].startswith('exec ')]
    expected_name = 'exec \ufffd\ufffd-hostile'
    check(len(exec_spans) == 1 and exec_spans[0]['name'] == expected_name,
          'UTF-8 path: the exec span name has U+FFFD', [s['name'] for s in exec_spans])
    path = exec_spans[0]['attributes'].get('process.executable.path', '') if exec_spans else ''
    check(path.endswith('/\ufffd\ufffd-hostile'), 'UTF-8 path: process.executable.path', path)
    args = {tuple(s['resource'].get('process.command_args', ())) for s in spans}
    check(any(a and a[0].endswith('/\ufffd\ufffd-hostile') for a in args),
          'UTF-8 path: process.command_args[0] has U+FFFD', args)
    process_args = [s['attributes']['process.command_args'][0] for s in process_spans(spans)]
    check(len(process_args) == 2 and all(a.endswith('/\ufffd\ufffd-hostile')
                                         for a in process_args),
          'UTF-8 path: the process spans\' process.command_args[0] have U+FFFD', process_args)
    values = {s['resource'].get('bad.bytes') for s in spans}
    check_equal(values, {'\ufffd\ufffdx'}, 'UTF-8 resource attribute value has U+FFFD')


def test_utf8_http_header():
    """A traced HTTP server gets a request whose path and User-Agent hold
    bytes that are not UTF-8: url.path and user_agent.original arrive valid."""
    env = {key: value for key, value in os.environ.items() if not key.startswith('OTEL_')}
    with Receiver() as receiver:
        env.update({'LD_PRELOAD': preload_value(), 'OTEL_EXPORTER_OTLP_ENDPOINT': receiver.url,
                    'OTEL_BSP_SCHEDULE_DELAY': '200'})
        server = subprocess.Popen([program('http_server'), 'normal', '1'], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            port = int(server.stdout.readline().split()[1])
            with socket.create_connection(('127.0.0.1', port), timeout=10) as conn:
                conn.sendall(b'GET /caf\xe9/\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                             b'User-Agent: agent\xff\xfe/1\r\nConnection: close\r\n\r\n')
                answer = conn.recv(4096)
            server.wait(timeout=30)
        finally:
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.stdout.close()
        spans = receiver.wait_for_spans(1, timeout=10)
    check(answer.startswith(b'HTTP/1.1 200'), 'UTF-8 header: the server answers', answer[:40])
    servers = [s for s in spans if s['kind'] == 2]
    attributes = servers[0]['attributes'] if len(servers) == 1 else {}
    check_equal((attributes.get('url.path'), attributes.get('user_agent.original')),
                ('/caf\ufffd/\ufffd', 'agent\ufffd\ufffd/1'),
                'UTF-8 header: path and User-Agent arrive with U+FFFD')


def test_setuid(directory):
    """euid != ruid sets AT_SECURE: the loader ignores our LD_PRELOAD and the
    shim would stay off if it were loaded; the program behaves normally."""
    if os.geteuid() != 0 or SANITIZED:
        # A sanitized program ignores ASAN_OPTIONS when set-uid, and
        # LeakSanitizer cannot run there.
        print('# set-uid: skipped, needs root to chown the copy and an unsanitized build',
              flush=True)
        return
    copy = os.path.join(directory, 'hostile-setuid')
    shutil.copy(program('hostile'), copy)
    os.chown(copy, 65534, -1)  # nobody
    os.chmod(copy, stat.S_ISUID | 0o755)
    os.chmod(directory, 0o755)
    with Receiver() as receiver:
        result = run_traced([copy, 'secure'], receiver, env=EVERY_CALL, timeout=30)
        time.sleep(0.5)
        requests = receiver.requests
    if result.stdout.startswith('secure 0'):
        print(f'# set-uid: skipped, {directory} is mounted nosuid', flush=True)
        return
    check_equal((result.returncode, result.stdout, result.stderr), (0, 'secure 1\n', ''),
                'set-uid: runs in secure mode, output unchanged, no warning')
    check_equal(len(requests), 0, 'set-uid: no spans')


def test_static():
    try:
        static = program('hostile_static')
    except FileNotFoundError:
        print('# static: skipped, no static glibc (or a sanitized build)', flush=True)
        return
    with Receiver() as receiver:
        result = run_traced([static, 'status', '7'], receiver, env=EVERY_CALL, timeout=30)
        time.sleep(0.5)
        requests = receiver.requests
    check_equal((result.returncode, result.stdout, result.stderr),
                (7, 'work done\n', OWN_STDERR + '\n'), 'static: output unchanged')
    check_equal(len(requests), 0, 'static: no spans')


def test_close_everything(how):
    what = f'closing every fd ({how})'
    result, spans = run([program('hostile'), 'close', how], 11)
    check_equal((result.returncode, result.stdout), (0, 'closed\n'), f'{what}: program')
    check_equal(names(spans), {'hostile': 1, 'main': 1, 'close_everything': 1, 'do_work': 2,
                               'work_leaf': 6},
                f'{what}: spans before and after arrive, once')


def test_vfork():
    result, spans = run([program('hostile'), 'vfork'], 10)
    check_equal((result.returncode, result.stdout), (0, 'work done\nchild 0\n'), 'vfork: program')
    check_equal(parent_pairs(spans), VFORK_PAIRS, 'vfork + exec: every span, once')
    check_holds('vfork + exec: one trace', assert_single_trace, spans)
    check_holds('vfork + exec: whole tree', assert_tree_whole, spans)


def test_malloc_replaced():
    if SANITIZED:
        print('# malloc replaced: skipped, a sanitizer owns malloc', flush=True)
        return
    result, spans = run([program('bumpalloc')], 11)
    check(result.returncode == 0 and result.stdout.startswith('allocated '),
          'malloc replaced: program', (result.returncode, result.stdout, result.stderr[-500:]))
    check_equal(names(spans), {'bumpalloc': 1, 'main': 1, 'run_alloc': 1, 'alloc_thread': 2,
                               'alloc_leaf': 6},
                'malloc replaced: every span arrives')
    check_holds('malloc replaced: whole tree', assert_tree_whole, spans)


def test_double_preload(directory):
    copy = os.path.join(directory, 'copy', 'libotlpauto.so')
    os.makedirs(os.path.dirname(copy))
    shutil.copy(lib_path(), copy)
    for what, preload in (('same path twice', f'{preload_value()}:{lib_path()}'),
                          ('two copies', f'{preload_value()}:{copy}')):
        result, spans = run([program('hostile'), 'vfork'], 10, env={'LD_PRELOAD': preload})
        check_equal((result.returncode, result.stdout), (0, 'work done\nchild 0\n'),
                    f'preloaded {what}: program')
        check_equal(parent_pairs(spans), VFORK_PAIRS, f'preloaded {what}: every span, once')
        check_holds(f'preloaded {what}: whole tree', assert_tree_whole, spans)
        result, spans = run([program('stress'), 'threads-seq', '5'], 13,
                            env={'LD_PRELOAD': preload})
        check_equal(names(spans), {'stress': 1, 'main': 1, 'run_threads_seq': 1, 'seq_worker': 5,
                                   'seq_leaf': 5}, f'preloaded {what}: thread spans, once')


def test_command_args_redacted():
    result, spans = run([program('hostile'), 'status', '0', 'http://user:pw@host/x'], 6)
    redacted = (program('hostile'), 'status', '0', 'http://REDACTED@host/x')
    args = {tuple(s['resource'].get('process.command_args', ())) for s in spans}
    check_equal(args, {redacted}, 'process.command_args: URL userinfo redacted')
    check_equal([tuple(s['attributes']['process.command_args']) for s in process_spans(spans)],
                [redacted], 'process.command_args: redacted on the process span too')
    check('pw@' not in result.stderr, 'no credential in our log lines')


def test():
    test_bad_environment()
    test_bad_setting_once_per_tree()
    test_utf8_symbols()
    test_utf8_http_header()
    with tempfile.TemporaryDirectory() as directory:
        test_utf8_path_and_attributes(directory)
    with tempfile.TemporaryDirectory(dir=builddir()) as directory:
        test_setuid(directory)
    test_static()
    for how in ('loop', 'close_range', 'closefrom'):
        test_close_everything(how)
    test_vfork()
    test_malloc_replaced()
    with tempfile.TemporaryDirectory() as directory:
        test_double_preload(directory)
    test_command_args_redacted()


main(test)
