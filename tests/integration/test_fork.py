"""Fork-like process creation (issue 14): a fork never waits for a collector
that refuses or black-holes connections; children made without atfork
handlers (_Fork, clone, clone with CLONE_VFORK, syscall(SYS_fork)) exit at
once and send no span of their parent's; a fork during the socket hooks'
table set-up leaves the child a usable table; vfork keeps its semantics
(shared memory, parent suspended, no commit of a copy)."""

import collections
import contextlib
import os
import re
import socket

from harness import (Receiver, assert_single_trace, assert_tree_whole, check, check_equal,
                     check_holds, free_port, main, program, run_traced)

EVERY_CALL = {'OTLPAUTO_FUNCTION_THRESHOLD': '0'}
SANITIZER = os.environ.get('OTLPAUTO_SANITIZER', '')
# The bound a child's exit flush would wait for the parent's exporter.
EXPORT_TIMEOUT_MS = 5000
CHILD_MS = r'child ms ([\d.]+)'


def names(spans):
    return dict(collections.Counter(s['name'] for s in spans))


def check_exit(result, what):
    return check(result.returncode == 0 and not result.timed_out, f'{what}: exits 0 in time',
                 f'status {result.returncode}, timed out {result.timed_out}: '
                 f'{result.stderr[-2000:]}')


def number(pattern, text):
    found = re.search(pattern, text)
    return float(found.group(1)) if found else None


@contextlib.contextmanager
def black_hole():
    """A collector that accepts connections (the kernel does, from the
    backlog) and never answers: the exporter waits on the network."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen(64)
        yield f'http://127.0.0.1:{sock.getsockname()[1]}'


def fork_loop(forks, endpoint):
    """Runs the fork loop traced, spans going to endpoint; returns (what the
    program printed as median ms per fork, total ms), or None."""
    result = run_traced([program('forks'), 'fork-loop', str(forks)], None,
                        env={**EVERY_CALL, 'OTEL_EXPORTER_OTLP_ENDPOINT': endpoint,
                             'OTEL_BSP_SCHEDULE_DELAY': '20', 'OTEL_BSP_EXPORT_TIMEOUT': '1000'},
                        timeout=120)
    if not check_exit(result, f'{forks} forks to {endpoint}'):
        return None
    return (number(r'median_ms ([\d.]+)', result.stdout),
            number(r'forks \d+ ms ([\d.]+)', result.stdout))


def test_forks_with_collector_down(forks):
    """The exporter is sending while the program forks (a batch every
    20 ms, each tried for up to 1 s): a refused connection means backoff
    sleeps, a black hole an attempt that waits for an answer. Before, the
    exporter held the mark a fork waits for (up to 50 ms) through both:
    each fork took 50 ms more than with the collector up."""
    untraced = run_traced([program('forks'), 'fork-loop', str(forks)], preload=False,
                          timeout=120)
    check_exit(untraced, 'fork loop untraced')
    print(f'# {forks} forks untraced: {number(r"median_ms ([0-9.]+)", untraced.stdout):.2f} ms '
          'per fork', flush=True)
    with Receiver() as receiver:
        up = fork_loop(forks, receiver.url)
    if up is None:
        return
    print(f'# {forks} forks, collector up: {up[1]:.0f} ms in all, {up[0]:.2f} ms per fork',
          flush=True)
    for collector in ('refusing', 'black-holing'):
        what = f'{forks} forks, collector {collector}'
        with contextlib.ExitStack() as stack:
            endpoint = (f'http://127.0.0.1:{free_port()}' if collector == 'refusing'
                        else stack.enter_context(black_hole()))
            down = fork_loop(forks, endpoint)
        if down is None:
            continue
        print(f'# {what}: {down[1]:.0f} ms in all, {down[0]:.2f} ms per fork', flush=True)
        if 'thread' in SANITIZER:
            continue  # a fork costs about 0.5 s, give or take far more than 50 ms
        # Before, most forks waited 50 ms, or fewer forks did (on an idle
        # machine the exporter's rounds leave gaps): both show in the loop.
        check(down[0] < up[0] + 25 and down[1] < up[1] + forks * (25 if SANITIZER else 10),
              f'{what}: a fork does not wait for the exporter',
              f'median {down[0]:.1f} ms per fork, {down[1]:.0f} ms in all; with the '
              f'collector up {up[0]:.1f} and {up[1]:.0f}')


def test_child_without_atfork(how, leave, during_load=False):
    """A child made without atfork handlers finds the parent's exporter
    state. Before, its exit waited for that exporter (which it does not
    have) for the whole export timeout, and forever when the parent was
    loading libcurl. Now it is reset at its first span, exit or exec: made
    by _Fork or clone, as by fork (its spans parent on the frame open at the
    fork); made by syscall(SYS_fork), whatever was on its stack at its first
    span counts as the parent's (nothing marks the fork there), so
    child_work and leaf are not sent. A child made during the load needs no
    libcurl: it sends through the relay its parent hosts. Each process has
    its process span (`forks`); the child's is the parent of its spans and
    the child of the frame open at the fork."""
    what = f'{how} child leaving with {leave}' + (' during the load' if during_load else '')
    if 'thread' in SANITIZER:
        # It knows of fork() only: in such a child it sees the parent's
        # threads still running, and reports races with them.
        print(f'# {what}: skipped under ThreadSanitizer', flush=True)
        return
    argv = [program('forks'), 'raw-fork', how, leave]
    untraced = run_traced(argv, preload=False, timeout=60)
    env = {**EVERY_CALL, 'OTEL_BSP_EXPORT_TIMEOUT': str(EXPORT_TIMEOUT_MS)}
    if during_load:
        argv.append('during-load')
        # libcurl serves the endpoint only when a proxy is configured (the
        # built-in client serves plain http://); bypassed for every host.
        env.update(all_proxy='http://127.0.0.1:9', no_proxy='*')
    with Receiver() as receiver:
        result = run_traced(argv, receiver, env=env, timeout=60)
        expected = {'forks': 2, 'main': 1, 'run_raw_fork': 1, 'leaf': 1}
        if how != 'sys-fork':
            expected.update(child_work=1, leaf=2)
        spans = receiver.wait_for_spans(sum(expected.values()), timeout=20)
        spans = receiver.wait_for_spans(len(spans) + 1, timeout=0.5)
    if not check_exit(result, what):
        return
    child_ms = number(CHILD_MS, result.stdout)
    print(f'# {what}: child exits after {child_ms:.1f} ms '
          f'(untraced {number(CHILD_MS, untraced.stdout):.1f})', flush=True)
    check(child_ms < EXPORT_TIMEOUT_MS / 5, f'{what}: the child does not wait for an exporter',
          f'{child_ms:.0f} ms')
    check_equal(names(spans), expected, f'{what}: spans, once each')
    check_holds(f'{what}: one trace', assert_single_trace, spans)
    check_holds(f'{what}: whole tree', assert_tree_whole, spans)
    if 'child_work' in expected:
        by_id = {s['span_id']: s for s in spans}
        parents = {by_id[s['parent_span_id']]['name'] for s in spans
                   if s['name'] == 'child_work' and s['parent_span_id'] in by_id}
        check_equal(parents, {'forks'}, f'{what}: the child\'s spans under its process span')
        grandparents = {by_id[by_id[s['parent_span_id']]['parent_span_id']]['name']
                        for s in spans if s['name'] == 'child_work'
                        and by_id.get(s['parent_span_id'], {}).get('parent_span_id') in by_id}
        check_equal(grandparents, {'run_raw_fork'}, f'{what}: the child\'s process span '
                    'parents on the frame open at the fork')
        pids = {s['resource']['process.pid'] for s in spans if s['name'] == 'child_work'}
        check(len(pids) == 1 and pids != {s['resource']['process.pid'] for s in spans
                                          if s['name'] == 'main'},
              f'{what}: the child reports its own pid', pids)


def test_fork_during_table_setup():
    """Another thread is building the socket hooks' table (held inside it)
    when the program forks; the child opens a socket. Before, it waited for
    that builder, which it does not have, forever."""
    what = 'fork while the fd table is built'
    with Receiver() as receiver:
        result = run_traced([program('forks'), 'fd-init'], receiver, env=EVERY_CALL,
                            timeout=60)
        spans = receiver.wait_for_spans(4, timeout=20)
        spans = receiver.wait_for_spans(5, timeout=0.5)
    check_exit(result, what)
    check_equal(result.stdout, 'child ok\n', f'{what}: the child\'s socket call returns')
    check_equal(names(spans), {'forks': 2, 'main': 1, 'run_fd_init': 1},
                f'{what}: spans (and the parent\'s and the child\'s process spans)')


def test_vfork_semantics():
    """vfork stays vfork: the child runs first, in its parent's memory (its
    exec error reaches the parent the way programs report it), with every
    hook passing through but exec, whose span its parent sends."""
    what = 'vfork'
    if SANITIZER:
        print(f'# {what}: skipped under sanitizers (vfork runs as fork there)', flush=True)
        return
    with Receiver() as receiver:
        result = run_traced([program('forks'), 'vfork-shared'], receiver, env=EVERY_CALL,
                            timeout=60)
        spans = receiver.wait_for_spans(5, timeout=20)
        spans = receiver.wait_for_spans(6, timeout=0.5)
    check_exit(result, what)
    check_equal(result.stdout, 'shared 1 errno 2\n',
                f'{what}: the child\'s stores are the parent\'s')
    check_equal(names(spans), {'forks': 1, 'main': 1, 'run_vfork_shared': 1, 'exec missing': 1,
                               'leaf': 1},
                f'{what}: spans (none from the child\'s instrumented call, nor a process span)')
    check_holds(f'{what}: one trace', assert_single_trace, spans)
    check_holds(f'{what}: whole tree', assert_tree_whole, spans)
    check_equal(len({s['resource']['process.pid'] for s in spans}), 1,
                f'{what}: one process sends them all')


def commit_room_mb():
    """MB that can still be committed under vm.overcommit_memory=2."""
    info = {}
    with open('/proc/meminfo', encoding='ascii') as f:
        for line in f:
            key, value = line.split(':')
            info[key] = int(value.split()[0])
    return (info['CommitLimit'] - info['Committed_AS']) // 1024


def test_vfork_strict_overcommit():
    """Under vm.overcommit_memory=2 a fork commits a copy of every private
    writable mapping; a vfork commits nothing. A process holding 60% of the
    room left can vfork, not fork. Only where the machine is set so: the
    setting is system-wide, not a test's to change."""
    what = 'vfork under strict overcommit'
    with open('/proc/sys/vm/overcommit_memory', encoding='ascii') as f:
        mode = f.read().strip()
    if mode != '2':
        print(f'# {what}: skipped, vm.overcommit_memory is {mode}', flush=True)
        return
    if 'address' in SANITIZER or 'thread' in SANITIZER:
        print(f'# {what}: skipped under a sanitizer (its shadow memory is committed)',
              flush=True)
        return
    mb = str(commit_room_mb() * 6 // 10)
    forked = run_traced([program('forks'), 'vfork-big', mb, 'fork'], None, env=EVERY_CALL)
    vforked = run_traced([program('forks'), 'vfork-big', mb, 'vfork'], None, env=EVERY_CALL)
    check(forked.stdout.startswith('fork Cannot allocate memory'),
          f'{what}: the test is meaningful (fork fails)', forked.stdout)
    check(vforked.stdout.startswith('ok'), f'{what}: vfork succeeds', vforked.stdout)


def test():
    # A fork costs about half a second under ThreadSanitizer: fewer there.
    test_forks_with_collector_down(20 if SANITIZER else 200)
    for how in ('_Fork', 'clone', 'clone-vfork', 'sys-fork'):
        for leave in ('exit', '_exit'):
            test_child_without_atfork(how, leave)
    for how in ('_Fork', 'clone'):
        test_child_without_atfork(how, 'exit', during_load=True)
    test_fork_during_table_setup()
    test_vfork_semantics()
    test_vfork_strict_overcommit()


main(test)
