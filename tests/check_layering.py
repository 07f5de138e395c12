"""The core (src/) refers to no symbol defined in hooks/: families plug into
the core through its registry (src/family.h), never the other way round.

Reads the symbol tables of the built static libraries with nm (the LTO
plugin's view when objects hold only intermediate code) and fails listing
every src/ object's undefined symbol that a hooks/ object defines.

usage: check_layering.py NM ARCHIVE...
"""
import re
import subprocess
import sys

# nm -P -A: "lib.a[dir/member.o]: symbol TYPE [value size]"
LINE = re.compile(r"^[^\[]*\[(?P<member>[^\]]+)\]: (?P<symbol>\S+) (?P<type>\S)")


def members(nm, archive):
    out = subprocess.run([nm, "-P", "-A", archive], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            yield m["member"].rsplit("/", 1)[-1], m["symbol"], m["type"]


def main():
    nm, archives = sys.argv[1], sys.argv[2:]
    hook_defined = {}
    core_undefined = []
    core_objects = 0
    for archive in archives:
        seen = set()
        for member, symbol, kind in members(nm, archive):
            # Meson names objects after their source path: hooks_x.c.o, src_y.c.o.
            if member.startswith("hooks_") and kind not in "Uw":
                hook_defined[symbol] = member
            elif not member.startswith("hooks_"):
                seen.add(member)
                if kind == "U":
                    core_undefined.append((member, symbol))
        core_objects += len(seen)
    if not hook_defined or not core_objects:
        sys.exit(f"nothing read: {len(hook_defined)} hook symbols, {core_objects} core objects")
    bad = sorted({(m, s, hook_defined[s]) for m, s in core_undefined if s in hook_defined})
    for member, symbol, definer in bad:
        print(f"{member} uses {symbol}, defined in {definer}")
    if bad:
        sys.exit(1)
    print(f"{core_objects} core objects use none of {len(hook_defined)} hook symbols")


main()
