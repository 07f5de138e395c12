"""The shared object itself: it exports the hooks and the public API and
nothing else (the version script's list), and its stack is not executable."""

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


main(test)
