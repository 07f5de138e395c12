"""The shared object itself: it exports the hooks and the public API and
nothing else (the version script's list), its stack is not executable, and
it needs nothing but glibc to load (every other library is opened when a
feature first needs it)."""

import os
import re
import subprocess

from harness import check, check_equal, lib_path, main, srcdir


def exported_symbols():
    out = subprocess.run(['nm', '-D', '--defined-only', str(lib_path())], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def version_script_globals():
    text = (srcdir() / 'src' / 'libotlpauto.map').read_text()
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    global_part = text.split('global:', 1)[1].split('local:', 1)[0]
    return {name.strip() for name in global_part.split(';') if name.strip()}


# glibc's objects: whatever else a preloaded library needs, every traced
# process maps and relocates, used or not.
GLIBC_OBJECTS = re.compile(r'(libc|libdl|libpthread|librt|libm)\.so\.\d+$|ld-linux[-\w]*\.so\.\d+$')
# A sanitized build (scripts/sanitize) also needs its sanitizer's runtime.
SANITIZED = bool(os.environ.get('OTLPAUTO_SANITIZER'))
SANITIZER_OBJECTS = re.compile(r'lib(a|ub|t|l)san\.so\.\d+$')


def needed_objects():
    out = subprocess.run(['readelf', '-dW', str(lib_path())], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return re.findall(r'\(NEEDED\)\s+Shared library: \[([^\]]+)\]', out)


def undefined_symbols():
    out = subprocess.run(['nm', '-D', '--undefined-only', str(lib_path())], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def check_dependencies():
    needed = needed_objects()
    check('libc.so.6' in needed, 'DT_NEEDED names libc', needed)
    check_equal([n for n in needed if not GLIBC_OBJECTS.match(n)
                 and not (SANITIZED and SANITIZER_OBJECTS.match(n))], [],
                'DT_NEEDED names only glibc objects')
    if SANITIZED:
        # Its runtime defines libc's functions without glibc's versions.
        print('# undefined symbols: not checked in a sanitized build', flush=True)
        return
    # A strong reference glibc does not version would need another library at
    # load time (with -z now, a missing one stops the program from starting).
    strays = sorted(name for kind, name in undefined_symbols()
                    if kind == 'U' and '@GLIBC_' not in name)
    check_equal(strays, [], 'every undefined symbol is glibc\'s (or weak)')


def test():
    exported = exported_symbols()
    allowed = version_script_globals()
    patterns = [re.compile(re.escape(p).replace(r'\*', '.*') + '$') for p in allowed]
    strays = sorted(s for s in exported if not any(p.match(s) for p in patterns))
    check_equal(strays, [], 'every exported symbol is a hook or the public API')
    check(not any(s.startswith('oa_') for s in exported), 'no internal oa_* symbol exported')
    check('__cyg_profile_func_enter' in exported and 'otlpauto_api_v1' in exported,
          'the function hooks and the API table are exported', sorted(exported)[:10])
    headers = subprocess.run(['readelf', '-lW', str(lib_path())], capture_output=True,
                             text=True, check=True, timeout=30).stdout
    stack = [line for line in headers.splitlines() if 'GNU_STACK' in line]
    check(len(stack) == 1 and ' RWE ' not in stack[0] and stack[0].split()[-2] == 'RW',
          'GNU_STACK is RW, not executable (-z noexecstack)', stack)
    check_dependencies()


main(test)
