"""Helpers for the integration tests (tests/integration/test_<name>.py).

Environment (set by meson): OTLPAUTO_LIB, OTLPAUTO_SRCDIR, OTLPAUTO_BUILDDIR.

    from harness import Receiver, run_traced, program, check, check_holds, ...
    with Receiver() as receiver:
        result = run_traced([program('hello')], receiver)
        spans = receiver.wait_for_spans(3)
    check(result.returncode == 0, 'exit status', result.stderr)
    check_holds('tree is whole', assert_tree_whole, spans)
    report()   # prints "N passed, M failed", exits 1 on a failure

Or wrap the whole test: main(test_function) runs it, counts an uncaught
exception as a failure, then reports.
"""

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS_DIR))

import otlp_schema  # noqa: E402  (re-exported for the tests)
from receiver import Receiver, free_port  # noqa: E402  (re-exported)

__all__ = [
    'otlp_schema', 'Receiver', 'free_port', 'TESTS_DIR', 'lib_path', 'srcdir',
    'builddir', 'preload_value', 'program', 'Result', 'spans_summary', 'DROP_REASONS',
    'run_traced', 'by_name', 'one', 'process_spans', 'without_process_spans', 'parent_pairs',
    'children_of', 'assert_single_trace', 'assert_tree_whole', 'Checks',
    'check', 'check_equal', 'check_holds', 'report', 'main', 'skip',
]

SKIP = 77  # meson's exit status for a skipped test
DEFAULT_SERVICE_NAME = 'otlpauto-test'


def _env_path(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f'{name} is not set; run the test through meson test')
    return Path(value)


def lib_path():
    return _env_path('OTLPAUTO_LIB')


def srcdir():
    return _env_path('OTLPAUTO_SRCDIR')


def builddir():
    return _env_path('OTLPAUTO_BUILDDIR')


def preload_value():
    """LD_PRELOAD naming the shim. A sanitized build's runtime must come
    first in the process (meson sets OTLPAUTO_PRELOAD_FIRST then)."""
    first = os.environ.get('OTLPAUTO_PRELOAD_FIRST')
    return f'{first}:{lib_path()}' if first else str(lib_path())


def program(name):
    """Path of a test program built under $OTLPAUTO_BUILDDIR/tests/programs/."""
    path = builddir() / 'tests' / 'programs' / name
    if not path.exists():
        raise FileNotFoundError(f'test program {path} is not built')
    return str(path)

# ------------------------------------------------------------ running


@dataclasses.dataclass
class Result:
    argv: list
    returncode: int     # negative: killed by that signal
    stdout: str
    stderr: str
    elapsed: float      # seconds
    timed_out: bool


def run_traced(argv, receiver=None, env=None, timeout=60, preload=True,
               input=None, cwd=None):
    """Run argv under the shim and wait for it; returns a Result.

    The child gets LD_PRELOAD=$OTLPAUTO_LIB (unless preload is false), the
    receiver's URL as OTEL_EXPORTER_OTLP_ENDPOINT (or, without a receiver, a
    port nobody listens on, so that nothing leaks to a real collector), a
    200 ms batch delay, a 30 s exit timeout (exact span counts must not
    depend on the machine's load; tests of the exit set their own) and a
    service name; OTEL_* variables of the calling environment are dropped.
    `env` is merged last; a None value unsets.
    The child runs in its own process group, which gets SIGKILL on timeout
    and, to reap stray grandchildren, after the child exits.
    """
    child_env = {key: value for key, value in os.environ.items()
                 if not key.startswith('OTEL_')}
    if preload:
        child_env['LD_PRELOAD'] = preload_value()
    else:
        child_env.pop('LD_PRELOAD', None)
    endpoint = receiver.url if receiver is not None else f'http://127.0.0.1:{free_port()}'
    child_env.update({
        'OTEL_EXPORTER_OTLP_ENDPOINT': endpoint,
        'OTEL_BSP_SCHEDULE_DELAY': '200',
        'OTLPAUTO_EXIT_TIMEOUT': '30s',
        'OTEL_SERVICE_NAME': DEFAULT_SERVICE_NAME,
    })
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = str(value)

    started = time.monotonic()
    process = subprocess.Popen(
        [str(arg) for arg in argv], env=child_env, cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    timed_out = False
    try:
        stdout, stderr = process.communicate(
            input=input.encode() if isinstance(input, str) else input,
            timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process.pid)
        stdout, stderr = process.communicate()
    elapsed = time.monotonic() - started
    _kill_group(process.pid)
    return Result(argv=list(argv), returncode=process.returncode,
                  stdout=stdout.decode(errors='replace'),
                  stderr=stderr.decode(errors='replace'),
                  elapsed=elapsed, timed_out=timed_out)


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_SUMMARY = re.compile(r'otlpauto: spans: exported (\d+), sampled out (\d+), dropped: '
                      r'ring full (\d+), queue full (\d+), export failed (\d+), '
                      r'rejected (\d+), unsent at exit (\d+), ended after exit (\d+), '
                      r'connection full (\d+)')
DROP_REASONS = ('ring_full', 'queue_full', 'export_failed', 'rejected', 'unsent_at_exit',
                'ended_after_exit', 'connection_full')


def spans_summary(stderr):
    """The counters of the exit line OTEL_LOG_LEVEL=debug prints, as a dict
    (exported, sampled_out and each of DROP_REASONS), or None when there is
    no such line."""
    found = _SUMMARY.search(stderr)
    if not found:
        return None
    return dict(zip(('exported', 'sampled_out') + DROP_REASONS, map(int, found.groups())))

# ------------------------------------------------------------ span queries


def by_name(spans, name):
    """Spans named `name`, in arrival order."""
    return [span for span in spans if span['name'] == name]


def one(spans, name):
    """The single span named `name`; AssertionError if there are 0 or several."""
    found = by_name(spans, name)
    if len(found) != 1:
        raise AssertionError(f'expected one span {name!r}, found {len(found)} '
                             f'(names: {sorted({s["name"] for s in spans})})')
    return found[0]


def process_spans(spans):
    """The process spans among `spans` (one per traced program image, named
    after the executable): scope otlpauto.process with process.command_args,
    which the exec, spawn and system spans of the same scope do not have."""
    return [span for span in spans
            if span['scope']['name'] == 'otlpauto.process'
            and 'process.command_args' in span['attributes']]


def without_process_spans(spans):
    """`spans` without the process spans, in arrival order."""
    ids = {span['span_id'] for span in process_spans(spans)}
    return [span for span in spans if span['span_id'] not in ids]


def parent_pairs(spans):
    """{(name, parent's name): count} over `spans`; the parent's name is None
    for a span without parent and '?' for one whose parent is not among
    `spans`."""
    names = {(span['trace_id'], span['span_id']): span['name'] for span in spans}
    pairs = {}
    for span in spans:
        parent = span['parent_span_id']
        key = (span['name'], names.get((span['trace_id'], parent), '?') if parent else None)
        pairs[key] = pairs.get(key, 0) + 1
    return pairs


def children_of(spans, parent):
    """Direct children of the span dict `parent`."""
    return [span for span in spans
            if span['trace_id'] == parent['trace_id']
            and span['parent_span_id'] == parent['span_id']]


def assert_single_trace(spans):
    """The one trace id shared by all spans; AssertionError otherwise."""
    trace_ids = {span['trace_id'] for span in spans}
    if len(trace_ids) != 1:
        raise AssertionError(f'expected spans of one trace, got {len(spans)} spans '
                             f'in {len(trace_ids)} traces')
    return trace_ids.pop()


def assert_tree_whole(spans, remote_parent=''):
    """Each trace among `spans` is a whole tree: no duplicate span ids, and
    every parent_span_id is a received span of the same trace, or
    `remote_parent` (the span id a traceparent header named), or empty."""
    problems = []
    ids_by_trace = {}
    for span in spans:
        ids = ids_by_trace.setdefault(span['trace_id'], set())
        if span['span_id'] in ids:
            problems.append(f'duplicate span id {span["span_id"]} ({span["name"]!r})')
        ids.add(span['span_id'])
    for span in spans:
        parent = span['parent_span_id']
        if parent and parent != remote_parent and parent not in ids_by_trace[span['trace_id']]:
            problems.append(f'span {span["name"]!r} ({span["span_id"]}) has missing '
                            f'parent {parent}')
    if problems:
        raise AssertionError('; '.join(problems))

# ------------------------------------------------------------ checks


class Checks:
    """Counts checks, prints one line per check, and a summary in report()."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, condition, what, detail=''):
        """Count one check; print `detail` when it fails. Returns condition."""
        if condition:
            self.passed += 1
            print(f'ok   - {what}', flush=True)
        else:
            self.failed += 1
            suffix = f': {detail}' if detail != '' else ''
            print(f'FAIL - {what}{suffix}', flush=True)
        return bool(condition)

    def check_equal(self, actual, expected, what):
        return self.check(actual == expected, what,
                          f'got {actual!r}, expected {expected!r}')

    def check_holds(self, what, function, *args, **kwargs):
        """Call function (e.g. an assert_* helper); an AssertionError fails
        the check. Returns the function's result (None on failure)."""
        try:
            result = function(*args, **kwargs)
        except AssertionError as error:
            self.check(False, what, str(error))
            return None
        self.check(True, what)
        return result

    def report(self):
        """Print the summary and exit: 1 if any check failed (or none ran)."""
        print(f'{self.passed} passed, {self.failed} failed', flush=True)
        sys.exit(1 if self.failed or not self.passed else 0)


_checks = Checks()
check = _checks.check
check_equal = _checks.check_equal
check_holds = _checks.check_holds
report = _checks.report


def main(test):
    """Run test(); an uncaught exception counts as a failed check. Reports."""
    try:
        test()
    except Exception:  # noqa: BLE001  (any crash is one failure, then report)
        traceback.print_exc()
        check(False, f'{test.__name__} ran to the end', 'uncaught exception')
    report()


def skip(reason):
    """Exit with meson's "skipped" status."""
    print(f'SKIP: {reason}', flush=True)
    sys.exit(SKIP)
