"""USDT probes and uprobe symbols of real system binaries, as the providers
will see them: Debian's python3.11 (built with --with-dtrace) and libc.
Nothing is attached; the bpftrace comparisons check that listings agree."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from pytrace.kernel.elfsyms import ElfHeaders, load_symbol_table, resolve_library
from pytrace.kernel.usdt import find, usdt_probes

pytestmark = pytest.mark.kernel

PYTHON = "/usr/bin/python3.11"

# (size, signed) of each argument, from CPython's Include/pydtrace.d:
# const char * is 8 unsigned bytes, int 4 signed, long 8 signed.
PYTHON_PROBES = {
    "function__entry": [(8, False), (8, False), (4, True)],   # filename, funcname, lineno
    "function__return": [(8, False), (8, False), (4, True)],
    "line": [(8, False), (8, False), (4, True)],
    "gc__start": [(4, True)],                                  # generation
    "gc__done": [(8, True)],                                   # collected
    "import__find__load__start": [(8, False)],                 # modulename
    "import__find__load__done": [(8, False), (4, True)],       # modulename, found
    "audit": [(8, False), (8, False)],                         # event, args
}


@pytest.fixture(scope="module")
def python_bin() -> str:
    if not os.path.exists(PYTHON):
        pytest.skip(f"{PYTHON} is not installed")
    return PYTHON


def readelf_stapsdt(path: str) -> dict[str, tuple[int, int, str]]:
    """name -> (location, semaphore, arguments) per ``readelf -n``."""
    out = subprocess.run(["readelf", "-nW", path], capture_output=True, text=True).stdout
    pat = re.compile(r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: 0x[0-9a-f]+, "
                     r"Semaphore: (0x[0-9a-f]+)\s+Arguments: ?([^\n]*)")
    return {f"{p}:{n}": (int(loc, 16), int(sem, 16), args.strip())
            for p, n, loc, sem, args in pat.findall(out)}


def test_python_probes_listed_with_argument_specs(python_bin: str) -> None:
    probes = usdt_probes(python_bin)
    assert {p.provider for p in probes} == {"python"}
    assert {p.name: [(a.size, a.signed) for a in p.args] for p in probes} == PYTHON_PROBES
    notes = readelf_stapsdt(python_bin)
    headers = ElfHeaders.open(python_bin)
    probes_sec = headers.section(".probes")
    assert probes_sec is not None
    for p in probes:
        loc, sem, args = notes[p.full_name]
        assert (p.pc, p.semaphore, p.arg_spec) == (loc, sem, args)
        assert p.error is None
        # Every argument of this build is a register or a stack slot.
        assert all(a.kind in ("reg", "mem") and a.reg for a in p.args)
        # Python guards every probe with a semaphore in .probes; the kernel
        # wants its file offset (python3.11 is not PIE: offset != address).
        assert p.semaphore_offset == p.semaphore - probes_sec.addr + probes_sec.offset
        assert p.pc_offset is not None and p.pc_offset != p.pc


def test_python_find(python_bin: str) -> None:
    entry = find(python_bin, "python", "function__entry")
    assert len(entry) == 1 and entry[0].arg_spec.count("@") == 3
    assert {p.name for p in find(python_bin, None, "function__*")} == {"function__entry",
                                                                       "function__return"}
    assert find(python_bin, "node", "*") == []


def _bpftrace_list(pattern: str) -> list[str]:
    if not shutil.which("bpftrace"):
        pytest.skip("bpftrace is not installed")
    r = subprocess.run(["bpftrace", "-l", pattern], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.mark.oracle
def test_python_probe_listing_matches_bpftrace(python_bin: str) -> None:
    ours = sorted({f"usdt:{python_bin}:{p.full_name}" for p in usdt_probes(python_bin)})
    assert ours == sorted(_bpftrace_list(f"usdt:{python_bin}:*"))


@pytest.mark.oracle
def test_libc_function_listing_matches_bpftrace() -> None:
    """Same names as bpftrace, debug-file symbols (libc6-dbg) included."""
    libc = resolve_library("libc")
    assert libc is not None
    theirs = _bpftrace_list("uprobe:libc:*")
    assert theirs and all(line.startswith(f"uprobe:{libc}:") for line in theirs)
    ours = sorted(f"uprobe:{libc}:{s.name}" for s in load_symbol_table(libc).match("*"))
    assert ours == sorted(theirs)
