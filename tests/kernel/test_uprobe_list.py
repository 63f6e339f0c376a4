"""``pytrace -l`` and ``-lv`` for uprobes, line for line against bpftrace
0.17 on programs built here (C with and without DWARF, C++, parameter
types of every kind, a static function defined in two files) and on libc
by its short name."""

from __future__ import annotations

import shutil
import subprocess
import time
from io import StringIO
from pathlib import Path

import pytest

from pytrace.kernel.dwarf import dwarf_file
from pytrace.kernel.elfsyms import resolve_library
from tests.unit.test_uprobe_resolve import Progs, build_progs

from .harness import command

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not shutil.which("bpftrace"), reason="needs bpftrace 0.17")]

# Parameter types bpftrace spells in each of its ways: base types,
# typedefs, pointers (to void, to const, const pointers), struct, union,
# enum, anonymous struct, and what it calls <unknown type> (volatile,
# restrict, function pointers, arrays); a variadic function; a parameter
# named only in the definition.
TYPES_C = r"""
#include <stdbool.h>
#include <stddef.h>
typedef unsigned int myu;
enum color { RED, GREEN };
union un { int a; float b; };
struct st { int a; };
typedef struct { int z; } anon_t;
int t1(volatile int a, char *restrict b, int arr[4], int (*fp)(int), myu c, enum color e, union un u,
       struct st s, anon_t an, bool bo) { return a + (b != 0) + arr[0] + (fp != 0) + c + e + u.a + s.a + an.z + bo; }
int t2(char *const p, const char **pp, const char *const *cpp, void *v, const void *cv, unsigned char uc,
       long long ll, float f, double d, size_t sz)
{ return (p != 0) + (pp != 0) + (cpp != 0) + (v != 0) + (cv != 0) + uc + ll + f + d + sz; }
int t3(const struct st *cs, struct st *const sc, const volatile int cvi, struct { int q; } *ap, ...)
{ return cs->a + sc->a + cvi + ap->q; }
void t4(void) {}
int t5(int, int b);
int t5(int a, int b) { return a + b; }
int main(void) { return 0; }
"""
# 'dup' is static in both files, with different parameters: the listing
# shows it once; -lv shows the first file's parameters.  main.c calls
# 'callee' before it is defined (a declaration DIE comes first).
DUP1_C = "static __attribute__((noinline)) int dup(int first_a) { return first_a + 1; }\n" \
         "int f1(int v) { return dup(v); }\n"
DUP2_C = "static __attribute__((noinline)) int dup(long second_b, int x) { return second_b + x; }\n" \
         "int f2(int v) { return dup(v, 1); }\nint f1(int);\nint callee(int alpha, long beta);\n" \
         "int main(void) { return f1(1) + f2(2) + callee(1, 2); }\n" \
         "__attribute__((noinline)) int callee(int alpha, long beta) { return alpha + beta; }\n"


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Progs:
    d = tmp_path_factory.mktemp("uprobe_list")
    (d / "types.c").write_text(TYPES_C)
    subprocess.run(["gcc", "-O0", "-g", "-w", "-o", str(d / "types"), str(d / "types.c")], check=True)
    (d / "dup1.c").write_text(DUP1_C)
    (d / "dup2.c").write_text(DUP2_C)
    subprocess.run(["gcc", "-O1", "-g", "-o", str(d / "dups"), str(d / "dup1.c"), str(d / "dup2.c")], check=True)
    return build_progs(d)


def listing(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command(tool), *args], capture_output=True, text=True, timeout=120)


def same_listing(*args: str) -> list[str]:
    """Both tools list the same lines (exit 0); pytrace's lines."""
    bt, pt = listing("bpftrace", *args), listing("pytrace", *args)
    assert bt.returncode == 0, bt.stderr
    assert pt.returncode == 0 and "Traceback" not in pt.stderr, pt.stderr
    assert pt.stdout == bt.stdout, f"pytrace {args}:\n{pt.stdout}\nbpftrace:\n{bt.stdout}"
    return pt.stdout.splitlines()


def test_functions_of_a_program(progs: Progs) -> None:
    lines = same_listing("-l", f"uprobe:{progs.c}:*")
    assert f"uprobe:{progs.c}:wf_alpha" in lines and f"uprobe:{progs.c}:main" in lines
    # (0.17's globs have '*' only; pytrace's have '?' and '[...]' too.)
    assert same_listing("-l", f"ur:{progs.c}:w*_*ta") == [f"uretprobe:{progs.c}:wf_beta"]
    assert same_listing("-l", f"uprobe:{progs.directory}/wf*:wf_g*") == [
        f"uprobe:{progs.nodbg}:wf_gamma", f"uprobe:{progs.c}:wf_gamma"]


def test_cpp_listed_mangled_matched_demangled(progs: Progs) -> None:
    lines = same_listing("-l", f"uprobe:{progs.cxx}:*")
    assert f"uprobe:{progs.cxx}:_ZN2ns1fEii" in lines
    assert same_listing("-l", f'uprobe:{progs.cxx}:"ns::*"') == [
        f"uprobe:{progs.cxx}:{m}" for m in ("_ZN2ns1fEi", "_ZN2ns1fEii", "_ZNK2ns1K3getEi")]


def test_parameters_from_dwarf(progs: Progs) -> None:
    lines = same_listing("-lv", f"uprobe:{progs.c}:*")
    at = lines.index(f"uprobe:{progs.c}:wf_beta")
    assert lines[at + 1: at + 3] == ["    const char* s", "    struct pt* p"]
    lines = same_listing("-lv", f"uprobe:{progs.directory}/types:t*")
    assert "    const char* const* cpp" in lines and "    <unknown type>* fp" in lines
    assert "    struct <anonymous>* ap" in lines and "    const <unknown type>* cv" in lines
    lines = same_listing("-lv", f"uprobe:{progs.directory}/dups:*")
    at = lines.index(f"uprobe:{progs.directory}/dups:dup")
    assert lines[at + 1] == "    int first_a"
    at = lines.index(f"uprobe:{progs.directory}/dups:callee")
    assert lines[at + 1: at + 3] == ["    int alpha", "    long int beta"]
    # C++: DIEs carry the unmangled name, so nothing but main and extern "C".
    lines = same_listing("-lv", f"uprobe:{progs.cxx}:*")
    at = lines.index(f"uprobe:{progs.cxx}:plain_c")
    assert lines[at + 1] == "    int v" and lines[lines.index(f"uprobe:{progs.cxx}:_ZN2ns1fEii") + 1][0] != " "
    # Only uprobes: 0.17 shows no parameters for uretprobes.
    assert same_listing("-lv", f"uretprobe:{progs.c}:wf_beta") == [f"uretprobe:{progs.c}:wf_beta"]


def test_no_dwarf_warns_once(progs: Progs) -> None:
    lines = same_listing("-lv", f"uprobe:{progs.nodbg}:wf_*")
    assert len(lines) == 3
    pt = listing("pytrace", "-lv", f"uprobe:{progs.nodbg}:wf_*")
    assert pt.stderr == f'pytrace: warning: no DWARF found for "{progs.nodbg}", cannot show parameter info\n'


def test_libc_by_short_name() -> None:
    lines = same_listing("-l", "uprobe:libc:getp*")
    assert lines and all(ln.startswith(f"uprobe:{resolve_library('libc')}:getp") for ln in lines)
    libc = resolve_library("libc")
    assert libc is not None
    if dwarf_file(libc) is None:
        pytest.skip("no libc DWARF (libc6-dbg) for -lv")
    assert same_listing("-lv", "uprobe:libc:__libc_malloc")[1:] == ["    size_t bytes"]


def test_errors_say_what() -> None:
    r = listing("pytrace", "-l", "uprobe:/etc/hostname:*")
    assert r.returncode == 1 and r.stderr == "pytrace: cannot list uprobes of /etc/hostname: not an ELF file\n"
    r = listing("pytrace", "-l", "uprobe:libnosuchlibrary:*")
    assert r.returncode == 1 and "no such binary or library: libnosuchlibrary" in r.stderr


def test_listing_libc_is_fast() -> None:
    """The provider's share of ``pytrace -l 'uprobe:LIBC:*'``: symbol tables
    of libc and its debug file read, matched and formatted (~15 ms here;
    bpftrace 0.17 takes ~50 ms for the whole command)."""
    from pytrace import listing as pt_listing
    libc = resolve_library("libc")
    best = 10.0
    for _ in range(3):
        out = StringIO()
        start = time.perf_counter()
        n = pt_listing.list_probes(f"uprobe:{libc}:*", out)
        best = min(best, time.perf_counter() - start)
    assert n > 2000 and out.getvalue().count("\n") == n
    assert best < 0.1, best
    bt = listing("bpftrace", "-l", f"uprobe:{libc}:*")
    assert out.getvalue() == bt.stdout


def test_a_process_probes_with_p() -> None:
    """'-l -p PID' lists the process's uprobes and USDT probes, and
    'uprobe:*' with -p its executable's functions, named from the process's
    root; an executable's canonical PLT entries (imported functions whose
    address it takes, undefined with a value) are listed, as bcc does."""
    python = "/usr/bin/python3.11"
    if not Path(python).exists():
        pytest.fail(f"{python} is needed (Debian's python3.11 package)")
    proc = subprocess.Popen([python, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)
        lines = same_listing("-l", "-p", str(proc.pid))
        assert any(ln.startswith(f"usdt:/proc/{proc.pid}/root{python}:python:") for ln in lines)
        assert f"uprobe:/proc/{proc.pid}/root{python}:XML_Parse" in lines
        same_listing("-l", "uprobe:*", "-p", str(proc.pid))
    finally:
        proc.kill()
        proc.wait()
