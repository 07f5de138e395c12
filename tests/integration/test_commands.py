"""system() and popen(): the shell gets TRACEPARENT without the process
environment changing (issue 14), popen'd commands join the trace under a
popen span that lasts until pclose (issue 13), and what both return is what
glibc returns untraced (statuses, errno, signals, modes, descriptors)."""

import base64
import collections
import os
import re
import tempfile
import traceback

from harness import (Receiver, assert_single_trace, assert_tree_whole, check, check_equal,
                     check_holds, main, program, run_traced)

EVERY_CALL = {'OTLPAUTO_FUNCTION_THRESHOLD': '0'}
NO_FUNCTIONS = {'OTLPAUTO_HOOKS': 'process'}
# A ThreadSanitizer-built library cannot start in a program that was not
# built with it: every shell crashes at once. Under TSan only the cases
# about this process's side run, and the shells' statuses are not checked.
TSAN = 'thread' in os.environ.get('OTLPAUTO_SANITIZER', '')
COMMANDS = program('commands')
# Every traced process has a process span named after its executable: the
# shell's is /bin/sh's real name (dash on Debian), the programs' 'commands'.
SHELL = os.path.basename(os.path.realpath('/bin/sh'))
# Shells that start (none under TSan, see above) send their process span.
SHELLS_TRACED = 0 if TSAN else 1


def run(args, expected, env=None, timeout=60, input=None):
    """Runs commands ARGS traced; waits for `expected` spans (and a little
    longer, so that an extra span would be seen)."""
    with Receiver() as receiver:
        result = run_traced([COMMANDS, *args], receiver, env={**EVERY_CALL, **(env or {})},
                            timeout=timeout, input=input)
        spans = receiver.wait_for_spans(expected, timeout=20)
        more = receiver.wait_for_spans(expected + 1, timeout=0.5)
    return result, more if len(more) > len(spans) else spans


def names(spans):
    return dict(collections.Counter(s['name'] for s in spans))


def expected(counts):
    """counts without the names expected 0 times."""
    return {name: n for name, n in counts.items() if n}


def parent_of(spans, span):
    found = [s for s in spans if s['span_id'] == span['parent_span_id']]
    return found[0]['name'] if found else None


def parents(spans, name):
    """Counter of the names of the parents of the spans called name."""
    return dict(collections.Counter(parent_of(spans, s) for s in spans if s['name'] == name))


def status_line(stderr, what):
    found = re.search(rf'{what} status (-?\d+) errno (\d+)', stderr)
    return (int(found.group(1)), int(found.group(2))) if found else None


def test_environment_untouched():
    """Issue 14: system() set TRACEPARENT in the process environment for the
    call's duration, under the feet of threads reading it."""
    calls = 50
    result, spans = run(['environment-race', str(calls)], (1 + SHELLS_TRACED) * calls + 1,
                        env=NO_FUNCTIONS)
    check_equal(result.returncode, 0, 'system with threads: exit status')
    check('TRACEPARENT seen 0 times' in result.stdout,
          'system with threads: TRACEPARENT never appears in the environment',
          result.stdout + result.stderr[-2000:])
    if not TSAN:
        check('failed system calls 0' in result.stdout, 'system with threads: statuses 0',
              result.stdout)
    check_equal(names(spans), expected({'system': calls, SHELL: SHELLS_TRACED * calls,
                                        'commands': 1}),
                'system with threads: one span per call, one per shell')


def test_popen_threads():
    """popen and pclose from several threads, fclose of files in another."""
    threads, calls = 4, 25
    result, spans = run(['popen-threads', str(threads), str(calls)],
                        (1 + SHELLS_TRACED) * threads * calls + 1, env=NO_FUNCTIONS)
    check_equal(result.returncode, 0, 'popen threads: exit status')
    if not TSAN:
        check_equal(result.stdout, 'failed calls 0\n', 'popen threads: every call succeeds')
    check_equal(names(spans), expected({'popen': threads * calls,
                                        SHELL: SHELLS_TRACED * threads * calls, 'commands': 1}),
                'popen threads: one span per popen, one per shell')
    check_holds('popen threads: whole tree', assert_tree_whole, spans)


def check_command_tree(spans, what, hook, caller):
    """The spans of a traced program whose `caller` function ran `commands
    leaf` through `hook` (system or popen): one trace, each link exact."""
    check_equal(names(spans), {'commands': 2, 'main': 2, caller: 1, hook: 1, SHELL: 1,
                               'exec commands': 1, 'run_leaf': 1, 'leaf_work': 1},
                f'{what}: exact spans of both programs and the shell')
    check_holds(f'{what}: one trace', assert_single_trace, spans)
    check_holds(f'{what}: whole tree', assert_tree_whole, spans)
    check_equal(parents(spans, hook), {caller: 1}, f'{what}: parent of the {hook} span')
    check_equal(parents(spans, SHELL), {hook: 1}, f'{what}: the shell is a child of the {hook} span')
    check_equal(parents(spans, 'exec commands'), {SHELL: 1},
                f'{what}: the shell execs the command')
    check_equal(parents(spans, 'commands'), {None: 1, 'exec commands': 1},
                f'{what}: the command is a child of the shell\'s exec')
    check_equal(parents(spans, 'main'), {'commands': 2}, f'{what}: each main in its process')
    check_equal(parents(spans, 'leaf_work'), {'run_leaf': 1}, f'{what}: the command\'s tree')
    span = [s for s in spans if s['name'] == hook][0]
    check_equal(span['scope']['name'], 'otlpauto.process', f'{what}: process scope')
    check_equal(span['attributes'].get('process.executable.path'), '/bin/sh',
                f'{what}: process.executable.path')
    return span


def test_system_trace():
    result, spans = run(['system', f'{COMMANDS} leaf 3'], 10)
    check_equal(result.returncode, 0, 'system: exit status')
    check_equal(status_line(result.stderr, 'system'), (3 << 8, 0), 'system: the wait status')
    check_equal(result.stdout, 'leaf 3\n', 'system: the command\'s output')
    span = check_command_tree(spans, 'system', 'system', 'run_system')
    check_equal(span['attributes'].get('process.exit.code'), 3, 'system: process.exit.code')


def test_popen_trace():
    """Issue 13: a popen'd command started a new trace."""
    result, spans = run(['popen-read', f'{COMMANDS} leaf 4'], 10)
    check_equal(result.returncode, 0, 'popen: exit status')
    check_equal(result.stdout, 'leaf 4\n', 'popen: the command\'s output read through the pipe')
    check_equal(status_line(result.stderr, 'pclose'), (4 << 8, 0), 'popen: pclose\'s status')
    span = check_command_tree(spans, 'popen', 'popen', 'run_popen_read')
    check_equal(span['attributes'].get('process.exit.code'), 4, 'popen: process.exit.code')
    check_equal(span['status_code'], 0, 'popen: status unset')
    leaf = [s for s in spans if s['name'] == 'leaf_work'][0]
    check(span['start'] <= leaf['start']
          and leaf['end'] <= span['end'],
          'popen: the span lasts until pclose, around the command\'s spans')


def test_popen_open_at_exit_and_exec():
    """A stream never pclosed: its span is sent when the process exits or
    execs (the command's spans name it as parent). The program returns once
    the command ended, or after its first line: then the shell and the
    command may still send through the relay while the program hosting it
    exits (what they send after its last read, they send themselves)."""
    for mode in ('popen-unclosed', 'popen-unclosed-running'):
        what = f'popen open at exit ({mode})'
        result, spans = run([mode, f'{COMMANDS} leaf 0'], 10)
        check_equal(result.returncode, 0, f'{what}: exit status')
        check_equal(result.stdout, 'leaf 0\n', f'{what}: the command\'s output')
        span = check_command_tree(spans, what, 'popen', 'run_popen_unclosed')
        check_equal(span['attributes'].get('otlpauto.end_reason'), 'process_exit',
                    f'{what}: ended by the exit')

    result, spans = run(['popen-exec', f'{COMMANDS} leaf 5'], 15)
    check_equal(result.returncode, 0, 'popen open at exec: exit status')
    check_equal(result.stdout, 'leaf 5\nleaf 0\n', 'popen open at exec: both outputs')
    check_equal(names(spans), {'commands': 3, 'main': 3, 'run_popen_exec': 1, 'popen': 1,
                               SHELL: 1, 'exec commands': 2, 'run_leaf': 2, 'leaf_work': 2},
                'popen open at exec: exact spans')
    check_holds('popen open at exec: one trace', assert_single_trace, spans)
    check_holds('popen open at exec: whole tree', assert_tree_whole, spans)
    check_equal(parents(spans, 'exec commands'), {SHELL: 1, 'run_popen_exec': 1},
                'popen open at exec: the shell\'s exec under the shell, the program\'s own')
    check_equal(parents(spans, SHELL), {'popen': 1}, 'popen open at exec: the shell under popen')
    popen_span = [s for s in spans if s['name'] == 'popen'][0]
    check_equal(popen_span['attributes'].get('otlpauto.end_reason'), 'exec',
                'popen open at exec: ended by the exec')


def test_data():
    """Bytes through popen pipes arrive intact, both ways."""
    payload = base64.b64encode(os.urandom(3 << 19)).decode()  # 2 MiB of text
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, 'source')
        with open(source, 'w', encoding='ascii') as f:
            f.write(payload)
        result, _ = run(['popen-read', f'cat {source}'], 1, env=NO_FUNCTIONS)
        check_equal(result.returncode, 0, 'popen r: exit status')
        check(result.stdout == payload, 'popen r: 2 MiB read intact',
              f'{len(result.stdout)} bytes')
        target = os.path.join(tmp, 'target')
        result, spans = run(['popen-write', f'cat > {target}'], 1, input=payload, env=NO_FUNCTIONS)
        check_equal(result.returncode, 0, 'popen w: exit status')
        with open(target, encoding='ascii') as f:
            check(f.read() == payload, 'popen w: 2 MiB written intact')
        check_equal(status_line(result.stderr, 'pclose'), (0, 0), 'popen w: pclose\'s status')
        check_equal(names(spans).get('popen'), 1, 'popen w: one span')


def test_same_results_as_untraced():
    """The battery of commands.c's parity mode prints what system, popen,
    pclose and fclose return (statuses of exit 0, exit 3, a killed shell, a
    missing command; errno; modes; SIGINT/SIGQUIT; descriptors inherited or
    not; a forked child's pclose; SIGCHLD ignored): the same traced."""
    untraced = run_traced([COMMANDS, 'parity'], preload=False, timeout=60)
    check_equal(untraced.returncode, 0, 'parity untraced: exit status')
    result, spans = run(['parity'], 27, env=NO_FUNCTIONS)
    check_equal(result.returncode, 0, 'parity traced: exit status')
    check_equal(result.stdout, untraced.stdout, 'parity: the same results as untraced')
    counts = names(spans)
    check_equal((counts.get('system'), counts.get('popen')), (8, 19),
                'parity: one span per system and per popen that ran a shell')
    codes = collections.Counter(s['attributes'].get('process.exit.code')
                                for s in spans if s['name'] == 'system')
    check_equal(dict(codes), {0: 2, 3: 1, 127: 1, 4: 1, None: 3},
                'parity: system spans\' process.exit.code (none when killed or not waited)')
    errors = [s['attributes'].get('error.type') for s in spans
              if s['name'] in ('system', 'popen') and s['status_code'] == 2]
    check_equal(sorted(errors), ['ECHILD', 'ECHILD'],
                'parity: error status where the wait failed (SIGCHLD ignored)')


def test_cancel():
    """A thread cancelled in system(): the shell is killed and reaped and
    SIGINT is restored, as untraced; the span is sent with an error."""
    untraced = run_traced([COMMANDS, 'cancel'], preload=False, timeout=60)
    result, spans = run(['cancel'], 2, env=NO_FUNCTIONS)
    check_equal(result.returncode, 0, 'cancel: exit status')
    check_equal(result.stdout, 'cancelled yes, shell gone, SIGINT not ignored, '
                'SIGCHLD not blocked, in time\n', 'cancel: cancelled as glibc\'s system')
    check_equal(result.stdout, untraced.stdout, 'cancel: the same as untraced')
    check_equal(names(spans), {'system': 1, 'commands': 1},
                'cancel: exact spans (the killed shell sends none)')
    system_span = [s for s in spans if s['name'] == 'system'][0]
    check_equal((system_span['status_code'], system_span['attributes'].get('error.type')),
                (2, 'ECANCELED'), 'cancel: the system span ends in error')


def test_family_off():
    """Without the process family: glibc's own system and popen, no spans."""
    result, spans = run(['system', f'{COMMANDS} leaf 0'], 5,
                        env={'OTLPAUTO_HOOKS': 'functions'})
    check_equal(status_line(result.stderr, 'system'), (0, 0), 'family off: system status')
    check_equal(names(spans), {'main': 2, 'run_system': 1, 'run_leaf': 1, 'leaf_work': 1},
                'family off: no system span')
    result, spans = run(['popen-read', f'{COMMANDS} leaf 0'], 5,
                        env={'OTLPAUTO_HOOKS': 'functions'})
    check_equal((result.stdout, status_line(result.stderr, 'pclose')), ('leaf 0\n', (0, 0)),
                'family off: popen output and status')
    check_equal(names(spans), {'main': 2, 'run_popen_read': 1, 'run_leaf': 1, 'leaf_work': 1},
                'family off: no popen span')


def test():
    cases = [test_environment_untouched, test_popen_threads]
    if TSAN:
        print('# cases with traced shells: skipped under ThreadSanitizer', flush=True)
    else:
        cases += [test_system_trace, test_popen_trace, test_popen_open_at_exit_and_exec,
                  test_data, test_same_results_as_untraced, test_cancel, test_family_off]
    for each in cases:
        try:
            each()
        except Exception:  # noqa: BLE001  (one failure; the other cases still run)
            traceback.print_exc()
            check(False, f'{each.__name__} ran to the end', 'uncaught exception')


main(test)
