"""Process lifecycle: every traced program image has a process span (named
after the executable, parent of the top-level spans, with its pid, parent
pid, command line and exit code); forked children (exit and _exit) send
their own spans once, under a process span of their own parented on the
frame open at the fork; a forked child that only execs has none; exec chains
stay one trace through TRACEPARENT (process span > exec span > the new
image's process span); the exec'd program gets LD_PRELOAD and our settings
even from an empty environment; posix_spawn and system hand over context; a
failed exec is an error span and the process goes on."""

import collections
import os
import re
import signal
import subprocess
import tempfile

from harness import (Receiver, assert_single_trace, assert_tree_whole, check, check_equal,
                     check_holds, main, one, parent_pairs, preload_value, process_spans,
                     program, run_traced)

EVERY_CALL = {'OTLPAUTO_FUNCTION_THRESHOLD': '0'}
PROCESS_SCOPE = 'otlpauto.process'
TREE_PAIRS = {('main', 'workload'): 1, ('run_tree', 'main'): 1,
              ('worker_main', 'run_tree'): 3, ('stage_a', 'worker_main'): 3,
              ('stage_b', 'worker_main'): 3, ('leaf', 'stage_a'): 6, ('leaf', 'stage_b'): 3}


def run(args, expected, env=None, timeout=120):
    return run_argv([program('workload'), *args], expected, env, timeout)


def run_argv(argv, expected, env=None, timeout=120):
    with Receiver() as receiver:
        result = run_traced(argv, receiver, env={**EVERY_CALL, **(env or {})}, timeout=timeout)
        spans = receiver.wait_for_spans(expected, timeout=20)
        more = receiver.wait_for_spans(expected + 1, timeout=0.5)
    return result, more if len(more) > len(spans) else spans


def by_id(spans):
    return {s['span_id']: s for s in spans}


def pid_of(span):
    return span['resource']['process.pid']


def exe_name(path):
    return os.path.basename(os.path.realpath(path))


def test_process_span():
    result, spans = run(['tree'], 21)
    check_equal(result.returncode, 0, 'process span: exit status')
    found = process_spans(spans)
    check_equal(len(found), 1, 'process span: one for the process')
    if len(found) != 1:
        return
    process = found[0]
    check_equal((process['name'], process['kind'], process['scope']['name'],
                 process['parent_span_id'], process['status_code']),
                ('workload', 1, PROCESS_SCOPE, '', 0),
                'process span: named after the executable, internal, a root, status unset')
    attrs = process['attributes']
    check_equal({k: v for k, v in attrs.items() if not k.startswith('thread.')},
                {'process.pid': pid_of(process), 'process.parent_pid': os.getpid(),
                 'process.executable.name': 'workload',
                 'process.command_args': [program('workload'), 'tree'],
                 'process.exit.code': 0},
                'process span: pid, parent pid (the test), executable, command line, exit code')
    main_span = one(spans, 'main')
    check_equal(main_span['parent_span_id'], process['span_id'],
                'process span: parent of main')
    check(process['start'] <= main_span['start'] and main_span['end'] <= process['end'],
          'process span: from start-up to exit, main within it')


def test_exit_codes():
    for args, code, how in ((['status', '0'], 0, "main's return"),
                            (['status', '2'], 2, "main's return"),
                            (['exit-deep'], 3, 'exit()')):
        result, spans = run(args, 5 if args[0] == 'exit-deep' else 2)
        check_equal(result.returncode, code, f'exit code {code} ({how}): exit status')
        found = process_spans(spans)
        check_equal([(s['name'], s['attributes'].get('process.exit.code'), s['status_code'],
                      s['attributes'].get('otlpauto.end_reason')) for s in found],
                    [('workload', code, 0, None)],
                    f'exit code {code} ({how}): process.exit.code, status unset, no end reason')


def test_killed_by_signal():
    """A child of the test killed by SIGTERM (the shim flushes on it): its
    process span ends in error, error.type the signal's name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('OTEL_')}
    with Receiver() as receiver:
        env.update({'LD_PRELOAD': preload_value(), 'OTLPAUTO_FUNCTION_THRESHOLD': '0',
                    'OTEL_EXPORTER_OTLP_ENDPOINT': receiver.url,
                    'OTEL_BSP_EXPORT_TIMEOUT': '5000'})
        process = subprocess.Popen([program('workload'), 'wait-signal'], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
        try:
            ready = process.stdout.readline().decode().strip()
            os.kill(process.pid, signal.SIGTERM)
            process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        spans = receiver.wait_for_spans(5, timeout=10)
        spans = receiver.wait_for_spans(6, timeout=0.5)
    check_equal((ready, process.returncode), ('ready', -signal.SIGTERM),
                'SIGTERM: started, then died of it')
    found = process_spans(spans)
    check_equal([(s['name'], s['status_code'], s['status_message'],
                  s['attributes'].get('error.type'), 'process.exit.code' in s['attributes'])
                 for s in found],
                [('workload', 2, 'SIGTERM', 'SIGTERM', False)],
                'SIGTERM: the process span is an error, error.type SIGTERM, no exit code')
    check_equal(parent_pairs(spans).get(('main', 'workload')), 1,
                'SIGTERM: main still under the process span')


def test_family_off():
    """Without the process family no process span is written, and no span
    names one: main is the root (or the child of TRACEPARENT's span), as are
    a forked child's spans' frames."""
    remote_trace, remote_span = '4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7'
    off = {'OTLPAUTO_HOOKS': 'functions'}
    _, spans = run(['fork', '2'], 6, env=off)
    check_equal(parent_pairs(spans), {('main', None): 1, ('run_forks', 'main'): 1,
                                      ('child_work', 'run_forks'): 2, ('leaf', 'child_work'): 2},
                'process family off: no process span, main the root, children under the fork')
    _, spans = run(['longjmp'], 6,
                   env={**off, 'TRACEPARENT': f'00-{remote_trace}-{remote_span}-01'})
    check_equal(len(spans), 6, 'process family off, TRACEPARENT: function spans only')
    main_span = [s for s in spans if s['name'] == 'main']
    check_equal([(s['trace_id'], s['parent_span_id']) for s in main_span],
                [(remote_trace, remote_span)],
                'process family off, TRACEPARENT: main is the remote span\'s child')
    check_holds('process family off, TRACEPARENT: whole tree', assert_tree_whole, spans,
                remote_span)


def test_forks(children, how):
    result, spans = run(['fork', str(children), how], 3 + 3 * children)
    check_equal(result.returncode, 0, f'{children} forks ({how}): exit status')
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': 1 + children, 'main': 1, 'run_forks': 1,
                               'child_work': children, 'leaf': children},
                f'{children} forks ({how}): every child span arrives, once')
    check_holds(f'forks ({how}): one trace', assert_single_trace, spans)
    check_holds(f'forks ({how}): whole tree, no duplicates', assert_tree_whole, spans)
    check_equal(parent_pairs(spans),
                {('workload', None): 1, ('main', 'workload'): 1, ('run_forks', 'main'): 1,
                 ('workload', 'run_forks'): children, ('child_work', 'workload'): children,
                 ('leaf', 'child_work'): children},
                f'forks ({how}): each child\'s process span parents on the frame open at '
                'the fork and is the parent of the child\'s spans')
    pids = {pid_of(s) for s in spans}
    check_equal(len(pids), children + 1, f'forks ({how}): each child reports its own pid')
    ids = by_id(spans)
    parent_pid = pid_of(one(spans, 'main'))
    wrong = [pid_of(s) for s in process_spans(spans) if pid_of(s) != parent_pid and not (
        s['attributes'].get('process.pid') == pid_of(s)
        and s['attributes'].get('process.parent_pid') == parent_pid
        and s['attributes'].get('process.exit.code') == 0
        and 'otlpauto.end_reason' not in s['attributes']
        and ids[s['parent_span_id']]['start'] <= s['start'])]
    check_equal(wrong, [], f'forks ({how}): a child\'s process span has its pid, the parent\'s '
                'pid, exit code 0, and starts at the fork')
    mismatched = [s for s in spans if s['name'] == 'child_work'
                  and pid_of(ids[s['parent_span_id']]) != pid_of(s)]
    check_equal(mismatched, [], f'forks ({how}): child_work under its own process\'s span')


def test_fork_then_exec():
    """A forked child that made spans before it execs keeps its process span
    (ended by the exec), and the exec span is its child. In cli_forker the
    child's function span ended before the exec; in `workload fork-exec` the
    frame that execs is still open."""
    result, spans = run_argv([program('cli_forker')], 9, env={'OTLPAUTO_FUNCTION_THRESHOLD': None})
    check_equal(result.returncode, 3, 'fork, work, exec: exit status')
    check_holds('fork, work, exec: whole tree', assert_tree_whole, spans)
    check_holds('fork, work, exec: one trace', assert_single_trace, spans)
    check_equal(parent_pairs(spans),
                {('cli_forker', None): 1, ('main', 'cli_forker'): 2, ('parent_work', 'main'): 1,
                 ('cli_forker', 'main'): 1, ('child_work', 'cli_forker'): 1,
                 ('exec cli_forker', 'cli_forker'): 1, ('cli_forker', 'exec cli_forker'): 1,
                 ('exec_work', 'main'): 1},
                'fork, work, exec: the child\'s process span holds its work and its exec span')
    child = [s for s in process_spans(spans)
             if s['attributes'].get('otlpauto.end_reason') == 'exec']
    check_equal(len(child), 1, 'fork, work, exec: the child\'s process span ends at the exec')

    result, spans = run(['fork-exec'], 8)
    check_equal(result.returncode, 0, 'fork, exec inside a function: exit status')
    check_holds('fork, exec inside a function: whole tree', assert_tree_whole, spans)
    check_equal(parent_pairs(spans),
                {('workload', None): 1, ('main', 'workload'): 2, ('run_fork_exec', 'main'): 1,
                 ('workload', 'run_fork_exec'): 1, ('child_exec', 'workload'): 1,
                 ('exec workload', 'child_exec'): 1, ('workload', 'exec workload'): 1},
                'fork, exec inside a function: the open frame, under the child\'s process '
                'span, is the exec span\'s parent')


def test_exec_chain():
    depth = 4
    result, spans = run(['exec', str(depth)], 5 * depth + 4)
    check_equal(result.returncode, 0, 'exec chain: exit status')
    counts = collections.Counter(s['name'] for s in spans)
    check_equal(dict(counts), {'workload': depth + 1, 'main': depth + 1,
                               'exec_level': depth + 1, 'leaf': depth + 1,
                               'exec workload': depth},
                'exec chain: every level\'s spans arrive')
    check_holds('exec chain: one trace through TRACEPARENT', assert_single_trace, spans)
    check_holds('exec chain: whole tree', assert_tree_whole, spans)
    check_equal(parent_pairs(spans),
                {('workload', None): 1, ('workload', 'exec workload'): depth,
                 ('main', 'workload'): depth + 1, ('exec_level', 'main'): depth + 1,
                 ('leaf', 'exec_level'): depth + 1, ('exec workload', 'exec_level'): depth},
                'exec chain: each new image\'s process span is a child of the exec span')
    ended = [s for s in spans if s['attributes'].get('otlpauto.end_reason') == 'exec']
    check_equal(collections.Counter(s['name'] for s in ended),
                {'main': depth, 'exec_level': depth, 'workload': depth},
                'exec chain: frames and process spans open at exec are ended and sent')
    images = sorted(process_spans(spans), key=lambda s: s['start'])
    check_equal([(s['attributes'].get('process.command_args'),
                  s['attributes'].get('otlpauto.end_reason'),
                  s['attributes'].get('process.exit.code')) for s in images],
                [([program('workload'), 'exec', str(n)], 'exec' if n else None,
                  None if n else 0) for n in range(depth, -1, -1)],
                'exec chain: one process span per image, its command line; only the last exits')
    pids = {pid_of(s) for s in spans}
    check_equal(len(pids), 1, 'exec chain: exec keeps the pid')
    exec_span = [s for s in spans if s['name'] == 'exec workload'][0]
    check_equal(exec_span['scope']['name'], PROCESS_SCOPE, 'exec: process scope')
    check_equal(exec_span['attributes'].get('process.executable.path'), program('workload'),
                'exec: process.executable.path')


def test_exec_with_empty_environment():
    """env -i drops everything: the shim restores LD_PRELOAD and its settings
    so the new program is traced and joins the trace."""
    if 'address' in os.environ.get('OTLPAUTO_SANITIZER', ''):
        # env -i also drops ASAN_OPTIONS, and the restored LD_PRELOAD names
        # the library alone: an ASan-built program then refuses to start.
        print('# env -i: skipped under AddressSanitizer', flush=True)
        return
    result, spans = run_argv(['/usr/bin/env', '-i', program('workload'), 'tree'], 23)
    check_equal(result.returncode, 0, 'env -i: exit status')
    check_equal(parent_pairs(spans),
                {('env', None): 1, ('exec workload', 'env'): 1,
                 ('workload', 'exec workload'): 1, **TREE_PAIRS},
                'env -i: the exec\'d program is traced, under env\'s exec span')
    check_holds('env -i: one trace', assert_single_trace, spans)
    check_equal({s['resource']['service.name'] for s in spans}, {'otlpauto-test'},
                'env -i: OTEL_* settings reach the new program')


def test_spawn_and_system():
    python = exe_name('/usr/bin/python3')
    shell = exe_name('/bin/sh')
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, 'spawn.py')
        with open(script, 'w', encoding='utf-8') as f:
            f.write('import os, subprocess, sys\n'
                    'os.system(sys.argv[1] + " tree")\n'
                    'subprocess.run([sys.argv[1], "tree"], check=True)\n')
        # python's and sh's process spans, the system span, two exec spans
        # (from sh's and python's forked children) and two runs of the tree
        # (its process span and 20 function spans).
        result, spans = run_argv(['/usr/bin/python3', script, program('workload')], 47,
                                 timeout=60)
    check_equal(result.returncode, 0, 'spawn/system: exit status')
    tree_twice = {pair: 2 * n for pair, n in TREE_PAIRS.items()}
    check_equal(parent_pairs(spans),
                {(python, None): 1, ('system', python): 1, (shell, 'system'): 1,
                 ('exec workload', shell): 1, ('exec workload', python): 1,
                 ('workload', 'exec workload'): 2, **tree_twice},
                'spawn/system: both children traced, under the system span and python')
    system = one(spans, 'system')
    check_equal(system['attributes'].get('process.exit.code'), 0, 'system: exit code')
    check_holds('spawn/system: one trace', assert_single_trace, spans)
    check_holds('spawn/system: whole tree', assert_tree_whole, spans)


def test_clock_inherited():
    """A traced program hands its clock decision (OTLPAUTO_TSC_HZ) to the
    programs it execs, also through an emptied environment: only the first
    decides (CPUID or a short measurement), the others take its rate."""
    if 'address' in os.environ.get('OTLPAUTO_SANITIZER', ''):
        print('# clock through env -i: skipped under AddressSanitizer', flush=True)
        return
    result, _ = run(['exec', '2'], 11, env={'OTEL_LOG_LEVEL': 'debug'})
    check_equal(result.returncode, 0, 'clock: exit status')
    clocks = re.findall(r'^otlpauto: clock: (.*) \((.*)\)$', result.stderr, re.M)
    check(len(clocks) == 3, 'clock: one decision per program', clocks)
    if len(clocks) == 3:
        check(clocks[0][1] != 'inherited', 'clock: the first program decides', clocks)
        check_equal(clocks[1:], [(clocks[0][0], 'inherited')] * 2,
                    'clock: the exec\'d programs take its decision')
    with Receiver() as receiver:
        result = run_traced(['/usr/bin/env', '-i', program('workload'), 'tree'], receiver,
                            env={**EVERY_CALL, 'OTEL_LOG_LEVEL': 'debug'})
    clocks = re.findall(r'^otlpauto: clock: (.*) \((.*)\)$', result.stderr, re.M)
    check(len(clocks) == 2 and clocks[1] == (clocks[0][0], 'inherited'),
          'clock: passed on through env -i', clocks)
def test_shell_loop():
    """bash runs /bin/true three times from forked children that only exec,
    then execs /bin/false itself: bash's process span, per command an exec
    span and the command's process span."""
    script = 'for i in 1 2 3; do /bin/true; done; /bin/false'
    result, spans = run_argv(['/bin/bash', '-c', script], 9)
    check_equal(result.returncode, 1, 'bash loop: exit status (false\'s)')
    check_equal(len(spans), 9, 'bash loop: 1 bash + 4 exec + 4 process spans')
    check_holds('bash loop: one trace', assert_single_trace, spans)
    check_holds('bash loop: whole tree', assert_tree_whole, spans)
    check_equal(parent_pairs(spans),
                {('bash', None): 1, ('exec true', 'bash'): 3, ('true', 'exec true'): 3,
                 ('exec false', 'bash'): 1, ('false', 'exec false'): 1},
                'bash loop: bash > exec span > the command\'s process span')
    bash = one(spans, 'bash')
    check_equal((bash['attributes'].get('process.command_args'),
                 bash['attributes'].get('otlpauto.end_reason'),
                 'process.exit.code' in bash['attributes']),
                (['/bin/bash', '-c', script], 'exec', False),
                'bash loop: bash\'s process span ends at its exec of false')
    codes = collections.Counter((s['name'], s['attributes'].get('process.exit.code'))
                                for s in process_spans(spans) if s['name'] != 'bash')
    check_equal(dict(codes), {('true', 0): 3, ('false', 1): 1},
                'bash loop: exit codes of true and false')
    bash_pid = pid_of(bash)
    trues = [s for s in spans if s['name'] == 'true']
    check(all(s['attributes']['process.parent_pid'] == bash_pid and pid_of(s) != bash_pid
              for s in trues), 'bash loop: true runs in children of bash',
          [(pid_of(s), s['attributes']['process.parent_pid']) for s in trues])
    check_equal(pid_of(one(spans, 'false')), bash_pid, 'bash loop: false replaces bash')
    check_equal({s['attributes']['process.executable.path'] for s in spans
                 if s['name'].startswith('exec ')}, {'/bin/true', '/bin/false'},
                'bash loop: exec spans name the paths')


def test_failed_exec():
    """bash execs a missing program directly (the only command): the exec
    fails with ENOENT, bash goes on, prints its error and exits 127."""
    result, spans = run_argv(['/bin/bash', '-c', '/nonexistent/prog'], 2)
    check_equal(result.returncode, 127, 'failed exec: bash exits 127')
    check_equal(parent_pairs(spans), {('bash', None): 1, ('exec prog', 'bash'): 1},
                'failed exec: bash\'s process span and its failed exec span')
    check_holds('failed exec: whole tree', assert_tree_whole, spans)
    if len(spans) != 2:
        return
    exec_span, bash = one(spans, 'exec prog'), one(spans, 'bash')
    check_equal((exec_span['status_code'], exec_span['attributes'].get('error.type'),
                 exec_span['attributes'].get('process.executable.path')),
                (2, 'ENOENT', '/nonexistent/prog'), 'failed exec: exec span in error, ENOENT')
    check_equal((bash['attributes'].get('process.exit.code'),
                 bash['attributes'].get('otlpauto.end_reason'), bash['status_code']),
                (127, None, 0), 'failed exec: bash\'s process span goes on to exit 127')
    check(bash['start'] <= exec_span['start'] and exec_span['end'] <= bash['end'],
          'failed exec: the exec span lies within bash\'s process span')

    # Not the last command: bash forks, the child's exec fails, the child
    # reports and exits 127; then bash execs true.
    result, spans = run_argv(['/bin/bash', '-c', '/nonexistent/prog; /bin/true'], 5)
    check_equal(result.returncode, 0, 'failed exec in a forked child: bash goes on')
    check_holds('failed exec in a forked child: whole tree', assert_tree_whole, spans)
    check_equal(parent_pairs(spans), {('bash', None): 1, ('bash', 'bash'): 1,
                                      ('exec prog', 'bash'): 1, ('exec true', 'bash'): 1,
                                      ('true', 'exec true'): 1},
                'failed exec in a forked child: the spans')
    failed = [s for s in spans if s['name'] == 'exec prog']
    child = [s for s in process_spans(spans) if s['name'] == 'bash' and s['parent_span_id']]
    if len(failed) == 1 and len(child) == 1:
        check_equal((failed[0]['parent_span_id'], pid_of(failed[0]),
                     child[0]['attributes'].get('process.exit.code')),
                    (child[0]['span_id'], pid_of(child[0]), 127),
                    'failed exec in a forked child: under the child\'s process span (exit 127)')


def test():
    test_process_span()
    test_exit_codes()
    test_killed_by_signal()
    test_family_off()
    test_forks(20, 'exit')
    test_forks(10, '_exit')
    test_fork_then_exec()
    test_exec_chain()
    test_exec_with_empty_environment()
    test_spawn_and_system()
    test_clock_inherited()
    test_shell_loop()
    test_failed_exec()


main(test)
