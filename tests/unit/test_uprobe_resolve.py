"""uprobe/uretprobe attach points resolved at compile time
(pytrace.providers.uprobe): wildcard expansion, offsets, addresses, C++
names, library short names, -p, and the diagnostics of each mistake.
Symbol values and file offsets are checked against nm, objdump and
pyelftools; library paths against ``ldconfig -p``.

The C and C++ programs here are also the targets of the kernel tests
(tests/kernel/test_uprobe_*.py): ``build_progs`` builds them once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

from pytrace.kernel.info import FakeKernel
from pytrace.providers.base import ResolvedAttach
from pytrace.providers.uprobe import TargetError, parse_target
from tests.conftest import compile_text

pytestmark = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("g++")), reason="needs gcc and g++")

# wfprog N [delay_ms] [linger_ms]: N rounds of known calls; delay_ms before
# them (time to start a tracer with -p), linger_ms after (stacks and
# symbols resolve while the process lives).  Each round: wf_alpha(i, 100)
# returns i+100, wf_beta("hi", {5, 6}) returns 'h'+5 = 109, wf_gamma(i)
# returns 2i, other_fn(i) returns i-1, and libc's getppid() runs once.
C_SRC = r"""
#include <stdlib.h>
#include <unistd.h>
struct pt { int x; long y; };
__attribute__((noinline)) int wf_alpha(int a, long b) { return a + (int)b; }
__attribute__((noinline)) int wf_beta(const char *s, struct pt *p) { return s[0] + (p ? p->x : 0); }
__attribute__((noinline)) unsigned long wf_gamma(unsigned long v) { return v * 2; }
__attribute__((noinline)) long other_fn(long v) { return v - 1; }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    if (argc > 2) usleep(atoi(argv[2]) * 1000);
    struct pt p = {5, 6};
    volatile long acc = 0;
    for (int i = 0; i < n; i++) {
        acc += wf_alpha(i, 100);
        acc += wf_beta("hi", &p);
        acc += wf_gamma(i);
        acc += other_fn(i);
        acc += getppid() > 0;
    }
    if (argc > 3) usleep(atoi(argv[3]) * 1000);
    return 0;
}
"""

# cxxprog N [delay_ms] [linger_ms]: per round ns::f(i) = i+1, ns::f(i, 2) =
# i+2, K{7}.get(i) = i+7, plain_c(i) = 3i.
CXX_SRC = r"""
#include <cstdlib>
#include <unistd.h>
namespace ns {
__attribute__((noinline)) int f(int a) { return a + 1; }
__attribute__((noinline)) int f(int a, int b) { return a + b; }
struct K { int v; __attribute__((noinline)) int get(int x) const { return v + x; } };
}
extern "C" __attribute__((noinline)) int plain_c(int v) { return v * 3; }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    if (argc > 2) usleep(atoi(argv[2]) * 1000);
    volatile int acc = 0;
    ns::K k{7};
    for (int i = 0; i < n; i++) { acc += ns::f(i); acc += ns::f(i, 2); acc += k.get(i); acc += plain_c(i); }
    if (argc > 3) usleep(atoi(argv[3]) * 1000);
    return 0;
}
"""

FLAGS = ("-O1", "-g", "-fno-omit-frame-pointer")


class Progs(NamedTuple):
    c: Path        # wfprog, PIE, with DWARF
    nodbg: Path    # the same without -g
    cxx: Path      # cxxprog
    directory: Path


def build_progs(directory: Path) -> Progs:
    """Compile both programs (and wfprog without debug info) into ``directory``."""
    (directory / "wfprog.c").write_text(C_SRC)
    (directory / "cxxprog.cc").write_text(CXX_SRC)
    c, nodbg, cxx = directory / "wfprog", directory / "wfnodbg", directory / "cxxprog"
    subprocess.run(["gcc", *FLAGS, "-o", str(c), str(directory / "wfprog.c")], check=True)
    subprocess.run(["gcc", "-O1", "-fno-omit-frame-pointer", "-o", str(nodbg), str(directory / "wfprog.c")],
                   check=True)
    subprocess.run(["g++", *FLAGS, "-o", str(cxx), str(directory / "cxxprog.cc")], check=True)
    return Progs(c, nodbg, cxx, directory)


def nm_values(path: Path) -> dict[str, int]:
    out = subprocess.run(["nm", "--defined-only", str(path)], capture_output=True, text=True, check=True).stdout
    return {p[2]: int(p[0], 16) for p in (line.split() for line in out.splitlines()) if len(p) == 3}


def nm_sizes(path: Path) -> dict[str, int]:
    out = subprocess.run(["nm", "-S", "--defined-only", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {p[3]: int(p[1], 16) for p in (line.split() for line in out.splitlines()) if len(p) == 4}


def file_offset_of(path: Path, vaddr: int) -> int:
    """vaddr -> file offset through the PT_LOAD segments, by pyelftools."""
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as fh:
        for seg in ELFFile(fh).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
                return int(vaddr - seg["p_vaddr"] + seg["p_offset"])
    raise AssertionError(f"{vaddr:#x} is in no PT_LOAD segment of {path}")


def insn_starts(path: Path, func: str) -> list[int]:
    """Offsets of the instructions of ``func`` from its entry, per objdump."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--disassemble={func}", str(path)],
                         capture_output=True, text=True, check=True).stdout
    addrs = [int(m.group(1), 16) for m in re.finditer(r"^\s*([0-9a-f]+):\t", out, re.MULTILINE)]
    return [a - addrs[0] for a in addrs]


def ldconfig_path(soname: str) -> str:
    out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(rf"^\s*{re.escape(soname)} \(libc6,x86-64\) => (\S+)$", line)
        if m:
            return m.group(1)
    raise AssertionError(f"ldconfig -p has no {soname}")


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Progs:
    return build_progs(tmp_path_factory.mktemp("uprobe"))


def resolve(kernel: FakeKernel, attach: str, **kw: object) -> tuple[list[ResolvedAttach], str]:
    comp, diags = compile_text(f"{attach} {{ @ = count(); }}", kernel, **kw)
    return [a for p in comp.probes for a in p.attaches], diags.render()


# ------------------------------------------------------------------ the forms

def test_parse_target_forms() -> None:
    assert parse_target(["uprobe", "/b", "f"], None, "uprobe") == ("/b", "f", 2, 0, None)
    assert parse_target(["uprobe", "/b", "f+0x10"], None, "uprobe") == ("/b", "f", 2, 16, None)
    assert parse_target(["uprobe", "/b", "0x401136"], None, "uprobe") == ("/b", "", 2, 0, 0x401136)
    assert parse_target(["uprobe", "/b", "4198710"], None, "uprobe").address == 0x401136
    assert parse_target(["uprobe", "/b", "ns", "", "f"], None, "uprobe").func == "ns::f"
    assert parse_target(["uprobe", "/b", "cpp", "ns", "", "f"], None, "uprobe")[1:3] == ("ns::f", 3)
    assert parse_target(["uprobe", "/b", "ns::operator+"], None, "uprobe").func == "ns::operator+"
    assert parse_target(["uprobe", "/b", "operator+="], None, "uprobe").func == "operator+="
    assert parse_target(["uprobe", "f"], 42, "uprobe") == (None, "f", 1, 0, None)
    for parts, pid, kind, message in [
            (["uprobe", "f"], None, "uprobe", "a binary and a function are needed"),
            (["uprobe", "/b", "f", "x"], None, "uprobe", "too many parts for a uprobe probe"),
            (["uprobe", "/b", ""], None, "uprobe", "the function is missing"),
            (["uprobe", "", "f"], None, "uprobe", "the binary is missing"),
            (["uretprobe", "/b", "f+8"], None, "uretprobe", "a uretprobe cannot have an offset"),
            (["uprobe", "/b", "f+8z"], None, "uprobe", "invalid offset '8z'"),
            (["uprobe", "/b", "f+zz"], None, "uprobe", "invalid offset 'zz'"),
            (["uprobe", "/b", "+8"], None, "uprobe", "the function is missing"),
            (["uprobe", "/b", "0xzz"], None, "uprobe", "invalid address '0xzz'")]:
        with pytest.raises(TargetError, match=re.escape(message)):
            parse_target(parts, pid, kind)


def test_wildcard_expands_to_one_attach_per_function(fake_kernel: FakeKernel, progs: Progs) -> None:
    attaches, text = resolve(fake_kernel, f"uprobe:{progs.c}:wf_*")
    assert text == ""
    assert [a.target for a in attaches] == [f"uprobe:{progs.c}:wf_{n}" for n in ("alpha", "beta", "gamma")]
    nm = nm_values(progs.c)
    for a in attaches:
        name = a.target.rpartition(":")[2]
        assert a.detail["file_offset"] == file_offset_of(progs.c, nm[name])
        assert (a.detail["symbol"], a.detail["elf_symbol"], a.detail["path"]) == (name, name, str(progs.c))
        assert (a.provider, a.nargs, a.retval, a.has_func) == ("uprobe", 6, None, True)
    rets, _ = resolve(fake_kernel, f"uretprobe:{progs.c}:wf_[ab]*")
    assert [a.target for a in rets] == [f"uretprobe:{progs.c}:wf_alpha", f"uretprobe:{progs.c}:wf_beta"]
    assert all(a.nargs == 0 and a.retval is not None for a in rets)
    # The path shows as written, relative or not (bpftrace's probe names).
    rel = os.path.relpath(progs.c)
    attaches, _ = resolve(fake_kernel, f"u:{rel}:wf_alpha")
    assert [a.target for a in attaches] == [f"uprobe:{rel}:wf_alpha"]


def test_offset_on_an_instruction_boundary(fake_kernel: FakeKernel, progs: Progs) -> None:
    starts = insn_starts(progs.c, "wf_beta")
    assert len(starts) >= 3
    off = starts[1]
    attaches, text = resolve(fake_kernel, f"uprobe:{progs.c}:wf_beta+{off}")
    assert text == ""
    (a,) = attaches
    assert a.target == f"uprobe:{progs.c}:wf_beta+{off}"
    assert a.detail["file_offset"] == file_offset_of(progs.c, nm_values(progs.c)["wf_beta"]) + off
    assert a.detail["offset"] == off
    attaches, _ = resolve(fake_kernel, f"uprobe:{progs.c}:wf_beta+0")
    assert attaches[0].target == f"uprobe:{progs.c}:wf_beta"  # +0 is the function itself
    # Mid-instruction: refused with the boundaries nearby, unless --unsafe.
    inside = off - 1 if off - 1 not in starts else off + 1
    src = f"uprobe:{progs.c}:wf_beta+{inside}"
    attaches, text = resolve(fake_kernel, src)
    assert attaches == []
    col = len(f"uprobe:{progs.c}:") + 1
    assert f"stdin:1:{col}: error: offset {inside} is in the middle of an instruction of 'wf_beta'" in text
    assert f"hint: instructions start at offsets {', '.join(str(s) for s in starts if abs(s - inside) < 16)}" \
           in text
    attaches, text = resolve(fake_kernel, src, unsafe=True)
    base = file_offset_of(progs.c, nm_values(progs.c)["wf_beta"])
    assert text == "" and attaches[0].detail["file_offset"] == base + inside
    # Past the end of the function.
    size = nm_sizes(progs.c)["wf_beta"]
    _, text = resolve(fake_kernel, f"uprobe:{progs.c}:wf_beta+{size}")
    assert f"error: offset {size} is outside function 'wf_beta' ({size} bytes)" in text
    _, text = resolve(fake_kernel, f"uretprobe:{progs.c}:wf_beta+{off}")
    assert "error: a uretprobe cannot have an offset" in text


def test_address(fake_kernel: FakeKernel, progs: Progs) -> None:
    nm = nm_values(progs.c)
    vaddr = nm["wf_gamma"]
    attaches, text = resolve(fake_kernel, f"uprobe:{progs.c}:{vaddr:#x}")
    assert text == ""
    (a,) = attaches
    assert a.target == f"uprobe:{progs.c}:{vaddr}"  # decimal, as bpftrace names it
    assert a.detail["file_offset"] == file_offset_of(progs.c, vaddr) and a.detail["symbol"] == "wf_gamma"
    second = insn_starts(progs.c, "wf_gamma")[1]
    attaches, text = resolve(fake_kernel, f"uprobe:{progs.c}:{vaddr + second}")
    assert text == "" and attaches[0].detail["file_offset"] == file_offset_of(progs.c, vaddr) + second
    # An address in no function (the ELF header) is refused unless --unsafe.
    _, text = resolve(fake_kernel, f"uprobe:{progs.c}:0x10")
    assert "error: address 0x10 is not inside a function of" in text
    attaches, text = resolve(fake_kernel, f"uprobe:{progs.c}:0x10", unsafe=True)
    assert text == "" and attaches[0].detail["file_offset"] == 0x10


# ------------------------------------------------------------------ C++

def test_cpp_names_match_demangled(fake_kernel: FakeKernel, progs: Progs) -> None:
    nm = nm_values(progs.cxx)
    both = [f"uprobe:{progs.cxx}:_ZN2ns1fEi", f"uprobe:{progs.cxx}:_ZN2ns1fEii"]
    for spelling in ('"ns::f"', "ns::f", "cpp:ns::f", 'cpp:"ns::f"'):
        attaches, text = resolve(fake_kernel, f"uprobe:{progs.cxx}:{spelling}")
        assert text == "" and [a.target for a in attaches] == both, spelling
    attaches, _ = resolve(fake_kernel, f'uprobe:{progs.cxx}:"ns::f(int, int)"')
    (a,) = attaches
    assert a.target == both[1] and a.detail["symbol"] == "ns::f(int, int)"
    assert a.detail["file_offset"] == file_offset_of(progs.cxx, nm["_ZN2ns1fEii"])
    attaches, _ = resolve(fake_kernel, f'uretprobe:{progs.cxx}:"ns::*"')
    assert [a.detail["symbol"] for a in attaches] == ["ns::f(int)", "ns::f(int, int)", "ns::K::get(int) const"]
    attaches, _ = resolve(fake_kernel, f"uprobe:{progs.cxx}:_ZNK2ns1K3getEi")
    assert attaches[0].detail["symbol"] == "ns::K::get(int) const"
    _, text = resolve(fake_kernel, f'uprobe:{progs.cxx}:"ns::g"')
    assert f"warning: function 'ns::g' not found in {progs.cxx}" in text and "did you mean 'ns::f'?" in text


# ------------------------------------------------------------------ finding the binary

def test_library_short_names(fake_kernel: FakeKernel) -> None:
    libc = ldconfig_path("libc.so.6")
    for name in ("libc", "libc.so.6"):
        attaches, text = resolve(fake_kernel, f"uprobe:{name}:getppid")
        assert text == ""
        (a,) = attaches
        # The probe shows the file the loader would pick (bpftrace 0.17 too).
        assert a.target == f"uprobe:{libc}:getppid" and a.detail["path"] == libc
    attaches, _ = resolve(fake_kernel, "uprobe:libc:getpp*")
    assert "getppid" in [a.target.rpartition(":")[2] for a in attaches]


def test_executable_on_path(fake_kernel: FakeKernel, progs: Progs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{progs.directory}:{os.environ.get('PATH', '')}")
    attaches, text = resolve(fake_kernel, "uprobe:wfprog:wf_alpha")
    assert text == "" and [a.target for a in attaches] == [f"uprobe:{progs.c}:wf_alpha"]


def test_binary_glob(fake_kernel: FakeKernel, progs: Progs) -> None:
    attaches, text = resolve(fake_kernel, f"uprobe:{progs.directory}/wf*:wf_alpha")
    assert text == ""
    assert [a.target for a in attaches] == [f"uprobe:{progs.nodbg}:wf_alpha", f"uprobe:{progs.c}:wf_alpha"]
    # cxxprog has no wf_alpha, the .c sources are no ELF files: skipped.
    attaches, _ = resolve(fake_kernel, f"uprobe:{progs.directory}/*:wf_alpha")
    assert len(attaches) == 2


@pytest.fixture
def running(progs: Progs) -> Iterator[subprocess.Popen]:  # type: ignore[type-arg]
    proc = subprocess.Popen([str(progs.c), "1", "5000"])
    time.sleep(0.2)  # past the loader: libc is mapped
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_dash_p(fake_kernel: FakeKernel, progs: Progs, running: subprocess.Popen) -> None:  # type: ignore[type-arg]
    pid = running.pid
    # uprobe:FUNC means the process's executable, reached through /proc.
    attaches, text = resolve(fake_kernel, "uprobe:wf_*", pid=pid)
    assert text == ""
    assert [a.target for a in attaches] == [f"uprobe:{progs.c}:wf_{n}" for n in ("alpha", "beta", "gamma")]
    assert attaches[0].detail["path"] == f"/proc/{pid}/exe"
    # A library by short name: the file that process maps, named as it maps it.
    with open(f"/proc/{pid}/maps") as fh:
        mapped = next(line.split()[-1] for line in fh if "/libc.so.6" in line or "/libc-" in line)
    attaches, text = resolve(fake_kernel, "uprobe:libc:getppid", pid=pid)
    assert text == "" and attaches[0].target == f"uprobe:{mapped}:getppid"
    assert os.path.samefile(attaches[0].detail["path"], mapped)
    _, text = resolve(fake_kernel, "uprobe:wf_alpha")
    assert "error: a binary and a function are needed" in text


# ------------------------------------------------------------------ diagnostics

def test_missing_functions_are_passed_over_with_a_warning(fake_kernel: FakeKernel, progs: Progs) -> None:
    """As bpftrace 0.17: an attach point whose function the file lacks is
    passed over (a warning at the function, the nearest name as a hint),
    and only a script left with nothing to attach fails."""
    src = f"uprobe:{progs.c}:wf_alhpa"
    attaches, text = resolve(fake_kernel, src)
    col = len(f"uprobe:{progs.c}:") + 1
    assert attaches == []
    assert text.splitlines() == [f"stdin:1:{col}: warning: function 'wf_alhpa' not found in {progs.c}",
                                 f"{src} {{ @ = count(); }}", " " * (col - 1) + "^" + "~" * (len("wf_alhpa") - 1),
                                 "hint: did you mean 'wf_alpha'?",
                                 "error: no probes to attach: every attach point of the script was passed over"]
    comp, diags = compile_text(f"{src}, uprobe:{progs.c}:wf_gamma {{ @ = count(); }} uprobe:{progs.c}:zz* {{ }}",
                               fake_kernel)
    assert not diags.has_errors()
    assert [a.target for p in comp.probes for a in p.attaches] == [f"uprobe:{progs.c}:wf_gamma"]
    text = diags.render()
    assert text.count("warning: ") == 2 and "hint: did you mean 'wf_alpha'?" in text
    assert f"warning: no functions match 'zz*' in {progs.c}" in text
    assert f"hint: list them with: pytrace -l 'uprobe:{progs.c}:*'" in text
    _, text = resolve(fake_kernel, "uprobe:libc:mallocc")
    assert "warning: function 'mallocc' not found in" in text and "did you mean 'malloc'?" in text


def test_errors(fake_kernel: FakeKernel, progs: Progs) -> None:
    _, text = resolve(fake_kernel, "uprobe:/no/such/binary:f")
    assert text.startswith("stdin:1:8: error: binary or library not found: /no/such/binary")
    _, text = resolve(fake_kernel, "uprobe:libnosuchlibrary:f")
    assert "error: binary or library not found: libnosuchlibrary" in text
    _, text = resolve(fake_kernel, f"uprobe:{progs.directory}/wfprog.c:f")
    assert f"error: cannot read the symbols of {progs.directory}/wfprog.c: not an ELF file" in text
    _, text = resolve(fake_kernel, f"uprobe:{progs.directory}/nothing*:f")
    assert f"error: no binaries match '{progs.directory}/nothing*'" in text
    _, text = resolve(fake_kernel, f"uprobe:{progs.c}:wf_alpha:x")
    assert "error: too many parts for a uprobe probe" in text
