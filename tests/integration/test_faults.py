"""Collector faults: memory stays bounded while the collector is down for a
long run of spans produced at full speed; TLS to the collector is verified
by default (an HTTPS receiver with a self-signed certificate is refused with
one warning, and accepted once OTEL_EXPORTER_OTLP_CERTIFICATE names it)."""

import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

from harness import (DROP_REASONS, Receiver, check, check_equal, free_port, main,
                     preload_value, program, run_traced, spans_summary)

SANITIZED = bool(os.environ.get('OTLPAUTO_SANITIZER'))  # set by meson in sanitized builds

# Per thread: a mapping of the thread state (1024 shadow frames and 64
# contexts, ~45 KiB) and of the ring (OTLPAUTO_BUFFER_SPANS=4096 slots of 128
# bytes, 512 KiB), plus the pages of its stack a loop touches.
PER_THREAD_KIB = 45 + 512 + 64
# The exporter: one batch of at most 512 spans with its export model, one
# encoded request, the symbol tables; the bound also allows for libcurl,
# OpenSSL and their libraries (about 8 MiB of RSS on Debian 12), which an
# https endpoint loads (this test's http:// one does not).
EXPORTER_KIB = 16 * 1024
# RSS may move by this much once the run has settled (allocator noise).
SETTLED_SLACK_KIB = 1024


def vm_rss_kib(pid):
    try:
        with open(f'/proc/{pid}/status', encoding='ascii') as status:
            for line in status:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def test_memory_while_collector_down(seconds=10, threads=4):
    """Spans produced flat out for `seconds` against a port nobody listens
    on: every batch fails after its retries, the rings and the queue stay
    full, and RSS must plateau (no growth with the number of failed
    exports) under a bound computed from the ring and queue sizes."""
    what = f'collector down for {seconds} s, {threads} threads'
    env = {key: value for key, value in os.environ.items() if not key.startswith('OTEL_')}
    env.update({'LD_PRELOAD': preload_value(),
                'OTEL_EXPORTER_OTLP_ENDPOINT': f'http://127.0.0.1:{free_port()}',
                'OTEL_BSP_SCHEDULE_DELAY': '200', 'OTEL_BSP_EXPORT_TIMEOUT': '1000',
                'OTLPAUTO_EXIT_TIMEOUT': '1s',
                'OTLPAUTO_FUNCTION_THRESHOLD': '0', 'OTEL_LOG_LEVEL': 'debug'})
    process = subprocess.Popen([program('stress'), 'produce', str(seconds), str(threads)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    samples = []  # (seconds since start, KiB)
    try:
        started = process.stdout.readline().decode().strip()
        t0 = time.monotonic()
        while process.poll() is None and time.monotonic() - t0 < seconds + 30:
            rss = vm_rss_kib(process.pid)
            if rss is not None:
                samples.append((time.monotonic() - t0, rss))
            time.sleep(0.2)
        out, err = process.communicate(timeout=30)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    out, err = out.decode(), err.decode()
    elapsed = time.monotonic() - t0
    check_equal(started, 'started', f'{what}: program started')
    check(process.returncode == 0 and out.startswith('calls '), f'{what}: program finishes',
          (process.returncode, out, err[-500:]))
    # seconds of production, then a flush bounded by the 1 s exit timeout
    check(elapsed < seconds + 3, f'{what}: exit bounded by the exit timeout', f'{elapsed:.1f} s')
    summary = spans_summary(err) or {}
    calls = int(out.split()[1]) if out.startswith('calls ') else -1
    # prod_leaf calls, prod_worker, run_produce, main, the process span
    produced = calls + threads + 3
    dropped = sum(summary.get(k, 0) for k in DROP_REASONS)
    check_equal(summary.get('exported', 0) + dropped, produced,
                f'{what}: every span counted as dropped with a reason')
    warnings = [line for line in err.splitlines() if line.startswith('otlpauto: gave up')]
    check(warnings, f'{what}: the failure is reported')
    if SANITIZED:
        print('# RSS bound not checked: the sanitizer runtime owns the heap', flush=True)
        return
    baseline = samples[0][1] if samples else 0
    settled = [kib for t, kib in samples if 2 <= t <= seconds / 2]
    late = [kib for t, kib in samples if seconds / 2 < t <= seconds]
    peak = max(kib for _, kib in samples) if samples else 0
    bound = baseline + threads * PER_THREAD_KIB + EXPORTER_KIB
    print(f'# {what}: RSS at start {baseline} KiB, settled max {max(settled, default=0)} KiB, '
          f'late max {max(late, default=0)} KiB, peak {peak} KiB, bound {bound} KiB; '
          f'{calls} calls, {summary}', flush=True)
    check(settled and late, f'{what}: RSS sampled through the run', samples)
    check(max(late, default=0) <= max(settled, default=0) + SETTLED_SLACK_KIB,
          f'{what}: RSS plateaus (no growth in the second half)',
          f'{max(settled, default=0)} -> {max(late, default=0)} KiB')
    check(peak <= bound, f'{what}: RSS under {bound} KiB', f'peak {peak} KiB')


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1; None without openssl."""
    openssl = shutil.which('openssl')
    if not openssl:
        return None
    cert, key = os.path.join(directory, 'cert.pem'), os.path.join(directory, 'key.pem')
    subprocess.run([openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
                    '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
                    '-addext', 'subjectAltName=IP:127.0.0.1'],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class TlsReceiver(Receiver):
    """The test receiver behind TLS: the handshake happens on accept; a
    client that refuses the certificate just closes (the server logs nothing)."""

    def __init__(self, cert, key):
        super().__init__()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        # Receiver keeps its server in _server; wrapping its listening
        # socket is all TLS needs.
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    @property
    def url(self):
        return f'https://127.0.0.1:{self.port}'


def test_tls(directory):
    made = make_certificate(directory)
    if not check(made is not None, 'TLS: openssl is installed to make a certificate'):
        return
    cert, key = made
    env = {'OTLPAUTO_FUNCTION_THRESHOLD': '0', 'OTEL_BSP_EXPORT_TIMEOUT': '3000'}
    argv = [program('hostile'), 'status', '4']

    with TlsReceiver(cert, key) as receiver:
        result = run_traced(argv, receiver, env=env, timeout=60)
        time.sleep(0.5)
        spans = receiver.spans
    check_equal((result.returncode, result.stdout), (4, 'work done\n'),
                'TLS, collector certificate unknown: the program is unaffected')
    warnings = [line for line in result.stderr.splitlines() if line.startswith('otlpauto:')]
    check(len(warnings) == 1 and ('certificate' in warnings[0].lower()
                                  or 'ssl' in warnings[0].lower()),
          'TLS, collector certificate unknown: exactly one warning, about the certificate',
          warnings)
    check_equal(len(spans), 0, 'TLS, collector certificate unknown: nothing is sent')
    check(result.elapsed < 5, 'TLS, collector certificate unknown: exit is bounded',
          f'{result.elapsed:.1f} s')

    with TlsReceiver(cert, key) as receiver:
        result = run_traced(argv, receiver, timeout=60,
                            env={**env, 'OTEL_EXPORTER_OTLP_CERTIFICATE': cert})
        spans = receiver.wait_for_spans(6, timeout=10)
    check_equal((result.returncode, result.stdout), (4, 'work done\n'),
                'TLS with OTEL_EXPORTER_OTLP_CERTIFICATE: program output and status')
    check_equal(sorted(s['name'] for s in spans),
                ['do_work', 'hostile', 'main', 'work_leaf', 'work_leaf', 'work_leaf'],
                'TLS with OTEL_EXPORTER_OTLP_CERTIFICATE: the spans arrive')
    check_equal([line for line in result.stderr.splitlines() if line.startswith('otlpauto:')],
                [], 'TLS with OTEL_EXPORTER_OTLP_CERTIFICATE: no warning')


def test():
    test_memory_while_collector_down()
    with tempfile.TemporaryDirectory() as directory:
        test_tls(directory)


main(test)
