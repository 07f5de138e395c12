"""Helpers for the socket, HTTP, nginx and redis tests: processes that run in
the background (servers) under the shim, each with a timeout and stopped by
its pid, and span lookups by attribute.

    with Background([program('http_server'), 'normal', '1'], receiver) as server:
        port = server.wait_for(r'port (\\d+)')
        ...
    server.result  # returncode, stdout, stderr once stopped
"""

import os
import re
import signal
import subprocess
import threading
import time

from harness import DEFAULT_SERVICE_NAME, free_port, lib_path

HOSTS_NAME = 'otlpauto-test.local'
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
STATUS_ERROR = 2


def traced_env(receiver=None, env=None, preload=True, extra_preload=()):
    """The environment run_traced gives its child (see harness.run_traced),
    with more libraries preloaded after the shim when asked."""
    child = {k: v for k, v in os.environ.items() if not k.startswith('OTEL_')}
    libs = ([str(lib_path())] if preload else []) + [str(p) for p in extra_preload]
    if libs:
        child['LD_PRELOAD'] = ' '.join(libs)
    else:
        child.pop('LD_PRELOAD', None)
    endpoint = receiver.url if receiver is not None else f'http://127.0.0.1:{free_port()}'
    child.update({
        'OTEL_EXPORTER_OTLP_ENDPOINT': endpoint,
        'OTEL_BSP_SCHEDULE_DELAY': '200',
        'OTEL_SERVICE_NAME': DEFAULT_SERVICE_NAME,
    })
    for key, value in (env or {}).items():
        if value is None:
            child.pop(key, None)
        else:
            child[key] = str(value)
    return child


class Background:
    """A process in its own session; stdout and stderr are collected by
    threads. stop() asks it to end (stop_signal), waits, then kills the group."""

    def __init__(self, argv, receiver=None, env=None, preload=True, timeout=60,
                 stop_signal=signal.SIGTERM, cwd=None):
        self.argv = [str(a) for a in argv]
        self.stop_signal = stop_signal
        self.deadline = time.monotonic() + timeout
        self.process = subprocess.Popen(
            self.argv, env=traced_env(receiver, env, preload), cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self._out, self._err = [], []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(s, b), daemon=True)
                         for s, b in ((self.process.stdout, self._out),
                                      (self.process.stderr, self._err))]
        for reader in self._readers:
            reader.start()
        self.returncode = None

    def _read(self, stream, into):
        for line in iter(stream.readline, b''):
            with self._changed:
                into.append(line.decode(errors='replace'))
                self._changed.notify_all()

    @property
    def stdout(self):
        with self._changed:
            return ''.join(self._out)

    @property
    def stderr(self):
        with self._changed:
            return ''.join(self._err)

    def wait_for(self, pattern, timeout=10, stream='stdout'):
        """The first group of the first line of `stream` matching pattern."""
        lines = self._out if stream == 'stdout' else self._err
        regex = re.compile(pattern)
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in lines:
                    match = regex.search(line)
                    if match:
                        return match.group(1)
                left = end - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f'{self.argv[0]} printed no {pattern!r}: '
                                         f'{"".join(self._err)[-2000:]}')
                self._changed.wait(min(left, 0.1))

    def wait(self, timeout=None):
        """Waits for the process to end by itself (bounded by its deadline)."""
        left = self.deadline - time.monotonic()
        try:
            self.returncode = self.process.wait(max(0.1, min(left, timeout or left)))
        except subprocess.TimeoutExpired:
            self._kill_group()
            self.returncode = self.process.wait()
        self._join()
        return self.returncode

    def stop(self, grace=10):
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self._kill_group()
        self.returncode = self.process.wait()
        self._kill_group()
        self._join()
        return self.returncode

    def _kill_group(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _join(self):
        for reader in self._readers:
            reader.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def ensure_hosts_entry(name=HOSTS_NAME, address='127.0.0.1'):
    """Appends "address name" to /etc/hosts when no line names it (CI runs as
    root); removes nothing. False when the entry cannot be made."""
    try:
        with open('/etc/hosts', encoding='utf-8') as hosts:
            for line in hosts:
                if name in line.split('#')[0].split()[1:]:
                    return True
        with open('/etc/hosts', 'a', encoding='utf-8') as hosts:
            hosts.write(f'{address} {name}\n')
        return True
    except OSError:
        return False


def attr(span, key, default=None):
    return span['attributes'].get(key, default)


def spans_where(spans, kind=None, scope=None, attrs=None):
    """Spans of that kind and scope whose attributes include `attrs`."""
    return [span for span in spans
            if (kind is None or span['kind'] == kind)
            and (scope is None or span['scope']['name'] == scope)
            and all(span['attributes'].get(k) == v for k, v in (attrs or {}).items())]
