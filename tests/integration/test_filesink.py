"""The otlp/file sink and the descriptors the shim owns. The sink's descriptor
is ours: a program that closes fd 1 and makes its log fd 1 again gets its
number and keeps its log to itself; the program's close, dup2 and
close_range on the sink's own number do not make spans go elsewhere or get
lost. The exporter opens no file while the program runs steadily (thread
names come from the rename hooks, not /proc). A sink that fails says so once
and every lost span is counted; a line cut short does not take the next one
with it. The default file name is never followed through a symbolic link nor
appended to someone else's file; a chosen path may lead through links, except
through one in a sticky world-writable directory that belongs to someone
else (the kernel's protected_symlinks rule). Programs: tests/programs/fdsink.c.
"""

import collections
import os
import re
import resource
import signal
import subprocess
import tempfile

from harness import (check, check_equal, main, otlp_schema, preload_value, program,
                     run_traced, spans_summary)

# The counts here are of the spans fdsink makes with the manual API: the
# process family (the program's process span) is left out.
FILE = {'OTEL_TRACES_EXPORTER': 'otlp/file', 'OTEL_BSP_SCHEDULE_DELAY': '100',
        'OTLPAUTO_HOOKS': 'functions,sockets,dns,http'}
NOBODY = 65534
WAIT_SPANS = {'a': 1, 'b': 1, 'c': 1}  # fdsink wait


def fdsink(*args):
    return [program('fdsink'), *args]


def read_lines(path):
    """(spans of the lines that are OTLP JSON, number of lines that are not);
    metrics lines (the processes' span counts) are OTLP JSON without spans."""
    spans, bad = [], 0
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            if not line.strip():
                continue
            try:
                spans.extend(otlp_schema.decode_json_line(line))
            except (ValueError, KeyError, TypeError):
                bad += 1
    return spans, bad


def names(spans):
    return dict(collections.Counter(s['name'] for s in spans))


DEBUG_LINES = ('otlpauto: spans: ', 'otlpauto: clock: ', 'otlpauto: relay')


def warnings(stderr):
    """Our warning lines, the debug ones (summary, clock, relay) left out."""
    return [line for line in stderr.splitlines()
            if line.startswith('otlpauto: ') and not line.startswith(DEBUG_LINES)]


def read_text(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read()


def test_reopened_stdout(tmp):
    """close(1), a span goes out (the sink opens), then the program opens its
    log: it must get fd 1, and the spans must stay out of it."""
    spans_path, log = os.path.join(tmp, 'reopen.jsonl'), os.path.join(tmp, 'reopen.log')
    result = run_traced(fdsink('reopen', log), env={**FILE, 'OTLPAUTO_FILE': spans_path},
                        timeout=30)
    check_equal(result.returncode, 0, 'reopen: exit status')
    check('log fd 1\n' in result.stderr, 'reopen: the program\'s log gets fd 1 back',
          result.stderr)
    check_equal(read_text(log), 'program output\n', 'reopen: no span in the program\'s log')
    spans, bad = read_lines(spans_path)
    check_equal((names(spans), bad), ({'before': 1, 'after': 1}, 0),
                'reopen: every span in the sink, once')


def test_hijacked_sink(tmp):
    """The program closes the sink's own number, dup2s its log onto it, then
    close_ranges everything: the spans stay in the sink."""
    spans_path, log = os.path.join(tmp, 'hijack.jsonl'), os.path.join(tmp, 'hijack.log')
    result = run_traced(fdsink('hijack', spans_path, log),
                        env={**FILE, 'OTLPAUTO_FILE': spans_path, 'OTEL_LOG_LEVEL': 'debug'},
                        timeout=30)
    check_equal(result.returncode, 0, 'hijack: exit status')
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    fds = [int(line.split()[2]) for line in result.stderr.splitlines()
           if line.startswith('sink fd ')]
    check(fds and fds[0] >= min(soft, 1024) - 64,
          'hijack: the sink\'s descriptor is above the low numbers', (fds, soft))
    check_equal(read_text(log), 'program output\n',
                'hijack: after dup2 onto the sink\'s number, no span in the program\'s file')
    spans, bad = read_lines(spans_path)
    check_equal((names(spans), bad),
                ({'first': 1, 'after-close': 1, 'after-dup2': 1, 'after-close-range': 1}, 0),
                'hijack: close, dup2, close_range: every span in the sink, once')
    summary = spans_summary(result.stderr) or {}
    check_equal((summary.get('exported'), summary.get('export_failed')), (4, 0),
                'hijack: counted as exported')


def test_no_low_descriptor_while_running(tmp):
    """Four threads make spans and rename themselves while the main thread,
    fd 1 closed, opens /dev/null over and over: each open must get fd 1
    (before, the exporter read each thread's name from /proc every 250 ms
    and took the lowest free number for it)."""
    spans_path = os.path.join(tmp, 'lowfd.jsonl')
    result = run_traced(fdsink('lowfd', '1500'), env={**FILE, 'OTLPAUTO_FILE': spans_path},
                        timeout=60)
    check_equal(result.returncode, 0, 'low fds: exit status')
    found = re.search(r'lowfd: (\d+) opens, (\d+) not fd 1, (\d+) spans', result.stderr)
    opens, stolen, made = map(int, found.groups()) if found else (0, -1, -1)
    check(opens > 1000 and stolen == 0, 'low fds: every open of the program got fd 1',
          result.stderr)
    spans, bad = read_lines(spans_path)
    check_equal((len(spans), bad), (made, 0), 'low fds: every span in the sink')
    thread_names = set(s['attributes'].get('thread.name') for s in spans)
    expected = {'worker-0', 'worker-1', 'worker-2', 'crossed-3',
                'renamed-0', 'renamed-1', 'renamed-2', 'renamed-3'}
    check(expected <= thread_names <= expected | {'worker-3'},
          'low fds: thread names follow renames by the thread and by another thread',
          sorted(map(str, thread_names)))


def test_dev_full():
    result = run_traced([program('workload'), 'tree'],
                        env={**FILE, 'OTLPAUTO_FILE': '/dev/full', 'OTEL_LOG_LEVEL': 'debug',
                             'OTLPAUTO_FUNCTION_THRESHOLD': '0'}, timeout=30)
    check_equal(result.returncode, 0, '/dev/full: exit status')
    check_equal(warnings(result.stderr),
                ['otlpauto: cannot write to /dev/full: No space left on device; '
                 'spans are dropped'], '/dev/full: one warning line')
    summary = spans_summary(result.stderr) or {}
    check_equal((summary.get('exported'), summary.get('export_failed')), (0, 20),
                '/dev/full: every span counted as export failed')


def test_line_cut_short(tmp):
    """RLIMIT_FSIZE cuts the first request's line short, then is lifted: the
    cut line is skipped by a reader, the next one is whole, and the counts
    say which spans were lost."""
    spans_path = os.path.join(tmp, 'fsize.jsonl')
    result = run_traced(fdsink('fsize', '3000'),
                        env={**FILE, 'OTLPAUTO_FILE': spans_path, 'OTEL_LOG_LEVEL': 'debug'},
                        timeout=30)
    check_equal(result.returncode, 0, 'cut line: exit status')
    spans, bad = read_lines(spans_path)
    summary = spans_summary(result.stderr) or {}
    check_equal(bad, 1, 'cut line: one line is not JSON')
    check_equal(names(spans).get('later'), 5, 'cut line: the spans after it arrive whole')
    check_equal((summary.get('exported'), summary.get('export_failed')),
                (len(spans), 55 - len(spans)), 'cut line: the lost spans are counted')
    lines = warnings(result.stderr)
    check(len(lines) == 1 and 'File too large' in lines[0], 'cut line: one warning line',
          result.stderr)


def run_waiting(cwd, env, plant=lambda pid: None):
    """fdsink wait in cwd: plant(pid) runs before it makes its spans."""
    child_env = {key: value for key, value in os.environ.items()
                 if not key.startswith('OTEL_')}
    child_env.update({'LD_PRELOAD': preload_value(), 'OTEL_LOG_LEVEL': 'debug', **FILE, **env})
    process = subprocess.Popen(fdsink('wait'), cwd=cwd, env=child_env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        plant(process.pid)
        stdout, stderr = process.communicate(b'go\n', timeout=30)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
    return process.returncode, stdout.decode(errors='replace'), stderr.decode(errors='replace')


def check_refused(what, result, path, reason, target):
    status, _, stderr = result
    check_equal(status, 0, f'{what}: exit status')
    check_equal(warnings(stderr),
                [f'otlpauto: not writing spans to {path}: {reason}; spans are dropped'],
                f'{what}: refused, said once')
    check_equal(read_text(target), 'precious\n', f'{what}: the target is untouched')
    summary = spans_summary(stderr) or {}
    check_equal((summary.get('exported'), summary.get('export_failed')), (0, 3),
                f'{what}: the spans are counted as lost')


def run_planted(directory, plant):
    """fdsink wait in directory, plant(path) making otlpauto-<pid>.jsonl
    there first. Returns the result and that path."""
    paths = []

    def at_pid(pid):
        paths.append(os.path.join(directory, f'otlpauto-{pid}.jsonl'))
        plant(paths[0])
    return run_waiting(directory, {}, at_pid), paths[0]


def test_default_name(sticky, target):
    """In a sticky world-writable directory (the test runs as root): a link,
    someone else's file or a hard link named otlpauto-<pid>.jsonl is not
    written."""
    def symlink_of(owner):
        def plant(path):
            os.symlink(target, path)
            os.lchown(path, owner, owner)
        return plant

    def foreign_file(path):
        with open(path, 'w', encoding='utf-8') as f:
            f.write('precious\n')
        os.chmod(path, 0o666)
        os.chown(path, NOBODY, NOBODY)

    cases = (('another user\'s symbolic link', symlink_of(NOBODY), 'it is a symbolic link', target),
             ('our own symbolic link', symlink_of(0), 'it is a symbolic link', target),
             ('another user\'s file', foreign_file, f'it belongs to uid {NOBODY}', None),
             ('a hard link', lambda path: os.link(target, path), 'it has 2 hard links', target))
    for what, plant, reason, untouched in cases:
        result, path = run_planted(sticky, plant)
        check_refused(f'default name, {what}', result, path, reason, untouched or path)
        os.unlink(path)
    status, _, stderr = run_waiting(sticky, {})
    files = [f for f in os.listdir(sticky) if f.startswith('otlpauto-')]
    spans, bad = read_lines(os.path.join(sticky, files[0])) if len(files) == 1 else ([], 0)
    check_equal((status, warnings(stderr), names(spans), bad), (0, [], WAIT_SPANS, 0),
                'default name: a new file of ours is written')


def test_chosen_path(tmp, sticky, target):
    """OTLPAUTO_FILE may be a link unless one on the way sits in a sticky
    world-writable directory and belongs to someone else; there, a file of
    someone else's is refused too."""
    theirs = os.path.join(sticky, 'theirs.jsonl')
    os.symlink(target, theirs)
    os.lchown(theirs, NOBODY, NOBODY)
    reason = f'{theirs} is a symbolic link of uid {NOBODY} in a sticky world-writable directory'
    check_refused('chosen path, another user\'s link in a sticky directory',
                  run_waiting(tmp, {'OTLPAUTO_FILE': theirs}), theirs, reason, target)
    mine = os.path.join(tmp, 'mine.jsonl')
    os.symlink(theirs, mine)
    check_refused('chosen path, our link to another user\'s link in a sticky directory',
                  run_waiting(tmp, {'OTLPAUTO_FILE': mine}), mine, reason, target)
    foreign = os.path.join(sticky, 'foreign.jsonl')
    with open(foreign, 'w', encoding='utf-8') as f:
        f.write('precious\n')
    os.chmod(foreign, 0o666)
    os.chown(foreign, NOBODY, NOBODY)
    check_refused('chosen path, another user\'s file in a sticky directory',
                  run_waiting(tmp, {'OTLPAUTO_FILE': foreign}), foreign,
                  f'{foreign} belongs to uid {NOBODY} in a sticky world-writable directory',
                  foreign)
    for what, link_dir, owner in (('our link in a sticky directory', sticky, 0),
                                  ('another user\'s link elsewhere', tmp, NOBODY)):
        followed = os.path.join(tmp, f'followed-{owner}.jsonl')
        link = os.path.join(link_dir, f'link-{owner}.jsonl')
        os.symlink(followed, link)
        os.lchown(link, owner, owner)
        status, _, stderr = run_waiting(tmp, {'OTLPAUTO_FILE': link})
        spans, bad = read_lines(followed) if os.path.exists(followed) else ([], 0)
        check_equal((status, warnings(stderr), names(spans), bad), (0, [], WAIT_SPANS, 0),
                    f'chosen path, {what}: followed')
    status, stdout, stderr = run_waiting(tmp, {'OTLPAUTO_FILE': '/dev/stdout'})
    spans = [s for line in stdout.splitlines() for s in otlp_schema.decode_json_line(line)]
    check_equal((status, warnings(stderr), names(spans)), (0, [], WAIT_SPANS),
                'chosen path: /dev/stdout works')


def test():
    with tempfile.TemporaryDirectory() as tmp:
        test_reopened_stdout(tmp)
        test_hijacked_sink(tmp)
        test_no_low_descriptor_while_running(tmp)
        test_line_cut_short(tmp)
    test_dev_full()
    if os.geteuid() != 0:
        print('# symbolic links: skipped, needs root to chown what is planted', flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        sticky = os.path.join(tmp, 'sticky')
        os.mkdir(sticky)
        os.chmod(sticky, 0o1777)
        target = os.path.join(tmp, 'target')
        with open(target, 'w', encoding='utf-8') as f:
            f.write('precious\n')
        test_default_name(sticky, target)
        test_chosen_path(tmp, sticky, target)


main(test)
