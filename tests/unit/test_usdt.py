"""USDT note parsing (pytrace.kernel.usdt) against programs built here with
<sys/sdt.h>, cross-checked with ``readelf -n`` and ``readelf -S``.

<sys/sdt.h> comes from Debian's systemtap-sdt-dev; the session fixture
installs it when it is missing (CI's scripts/test should install it too).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytrace.kernel.elfsyms import ElfHeaders
from pytrace.kernel.usdt import (UsdtArg, UsdtError, UsdtProbe, find, parse_arg, parse_args,
                                 usdt_probes)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

# Probes with 0, 1, 3 and 6 arguments of mixed sizes and signs, constants,
# a global, and an -O0 function whose arguments live in its stack frame.
# The -O2 functions fire their probes first thing, so arguments are still
# in the ABI's argument registers: di, si, dx, cx, r8, r9.
MAIN_C = r"""
#include <sys/sdt.h>
#include <stdint.h>
long counter = 5;
__attribute__((noinline)) void zero(void) { DTRACE_PROBE(demo, zero); }
__attribute__((noinline)) void one(int a) { DTRACE_PROBE1(demo, one, a); }
__attribute__((noinline)) void three(unsigned char b, long long c, short d) {
    DTRACE_PROBE3(demo, three, b, c, d);
}
__attribute__((noinline)) void six(int a, unsigned char b, long long c, short d,
                                   unsigned int e, int8_t g) {
    DTRACE_PROBE6(demo, six, a, b, c, d, e, g);
}
__attribute__((noinline)) void consts(void) { DTRACE_PROBE2(demo, consts, 42, -7); }
__attribute__((noinline)) void global(void) { DTRACE_PROBE1(demo, global, counter); }
__attribute__((noinline, optimize("O0"))) void frame(int a, uint16_t b) {
    DTRACE_PROBE2(other, frame, a, b);
}
void guarded(long c);
int main(int argc, char **argv) {
    zero(); one(argc); three(2, 3, -4); six(argc, 2, 3, -4, 5, -6);
    consts(); global(); frame(argc, 9); guarded(argc);
    return 0;
}
"""

# A semaphore needs _SDT_HAS_SEMAPHORES for the whole translation unit, so
# the guarded probe lives in a second file.
GUARDED_C = r"""
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
unsigned short demo_guarded_semaphore __attribute__((unused, section(".probes")));
__attribute__((noinline)) void guarded(long c) {
    if (demo_guarded_semaphore) DTRACE_PROBE1(demo, guarded, c);
}
"""


def _has_sdt_h(tmp: Path) -> bool:
    src = tmp / "check.c"
    src.write_text("#include <sys/sdt.h>\nint main(void) { DTRACE_PROBE(a, b); return 0; }\n")
    return subprocess.run(["gcc", "-c", "-o", str(tmp / "check.o"), str(src)],
                          capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def sdt_header(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Make sure <sys/sdt.h> is there, installing systemtap-sdt-dev if not."""
    tmp = tmp_path_factory.mktemp("sdtcheck")
    if _has_sdt_h(tmp):
        return
    if os.geteuid() != 0:
        pytest.skip("<sys/sdt.h> is missing and only root can install systemtap-sdt-dev")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "systemtap-sdt-dev"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # A fresh machine may not have package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    assert _has_sdt_h(tmp), "systemtap-sdt-dev installed but <sys/sdt.h> still does not compile"


@pytest.fixture(scope="session")
def probes_bin(sdt_header: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("usdt")
    (tmp / "main.c").write_text(MAIN_C)
    (tmp / "guarded.c").write_text(GUARDED_C)
    out = tmp / "probes"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(tmp / "main.c"), str(tmp / "guarded.c")],
                   check=True, capture_output=True)
    return out


@dataclass
class ReadelfNote:
    provider: str
    name: str
    location: int
    base: int
    semaphore: int
    arguments: str


def readelf_notes(path: Path) -> list[ReadelfNote]:
    out = subprocess.run(["readelf", "-nW", str(path)], capture_output=True, text=True).stdout
    pat = re.compile(r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), "
                     r"Semaphore: (0x[0-9a-f]+)\s+Arguments: ?([^\n]*)")
    return [ReadelfNote(p, n, int(loc, 16), int(b, 16), int(s, 16), a.strip())
            for p, n, loc, b, s, a in pat.findall(out)]


def readelf_sections(path: Path) -> dict[str, tuple[int, int]]:
    """name -> (address, file offset), from ``readelf -SW``."""
    out = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True).stdout
    secs = {}
    for m in re.finditer(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]{16})\s+([0-9a-f]+)\s", out):
        secs[m[1]] = (int(m[2], 16), int(m[3], 16))
    return secs


def nm_symbols(path: Path) -> dict[str, int]:
    out = subprocess.run(["nm", "--defined-only", str(path)], capture_output=True, text=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in (l.split() for l in out.splitlines())
            if len(parts) == 3}


def by_name(path: Path) -> dict[str, UsdtProbe]:
    return {p.full_name: p for p in usdt_probes(str(path))}


def test_probes_match_readelf(probes_bin: Path) -> None:
    notes = readelf_notes(probes_bin)
    probes = usdt_probes(str(probes_bin))
    assert len(notes) == len(probes) == 8
    secs = readelf_sections(probes_bin)
    text_addr, text_off = secs[".text"]
    for note, probe in zip(notes, probes):
        assert (probe.provider, probe.name) == (note.provider, note.name)
        assert probe.arg_spec == note.arguments
        # Nothing moved .stapsdt.base since linking: no adjustment.
        assert probe.base == note.base == secs[".stapsdt.base"][0]
        assert probe.pc == note.location
        assert probe.pc_offset == note.location - text_addr + text_off
        assert probe.semaphore == note.semaphore
        assert probe.error is None
        assert len(probe.args) == len(note.arguments.split())


def test_exact_probes_and_args(probes_bin: Path) -> None:
    p = by_name(probes_bin)
    assert sorted(p) == ["demo:consts", "demo:global", "demo:guarded", "demo:one", "demo:six",
                         "demo:three", "demo:zero", "other:frame"]
    reg = lambda size, signed, r: UsdtArg(size, signed, "reg", reg=r)  # noqa: E731
    strip = lambda args: tuple(UsdtArg(a.size, a.signed, a.kind, a.reg, a.offset, a.value)  # noqa: E731
                               for a in args)
    assert p["demo:zero"].args == () and p["demo:zero"].arg_spec == ""
    assert p["demo:one"].arg_spec == "-4@%edi"
    assert strip(p["demo:one"].args) == (reg(4, True, "di"),)
    assert p["demo:three"].arg_spec == "1@%dil -8@%rsi -2@%dx"
    assert strip(p["demo:three"].args) == (reg(1, False, "di"), reg(8, True, "si"), reg(2, True, "dx"))
    assert p["demo:six"].arg_spec == "-4@%edi 1@%sil -8@%rdx -2@%cx 4@%r8d -1@%r9b"
    assert strip(p["demo:six"].args) == (
        reg(4, True, "di"), reg(1, False, "si"), reg(8, True, "dx"), reg(2, True, "cx"),
        reg(4, False, "r8"), reg(1, True, "r9"))
    assert strip(p["demo:consts"].args) == (UsdtArg(4, True, "const", value=42),
                                            UsdtArg(4, True, "const", value=-7))
    assert strip(p["demo:guarded"].args) == (reg(8, True, "di"),)
    # -O0: both arguments were spilled to the frame, addressed off %rbp.
    frame = p["other:frame"].args
    assert [(a.size, a.signed, a.kind, a.reg) for a in frame] == [(4, True, "mem", "bp"),
                                                                  (2, False, "mem", "bp")]
    assert all(a.offset < 0 for a in frame)


def test_global_argument_is_resolved_relative_to_the_probe(probes_bin: Path) -> None:
    probe = by_name(probes_bin)["demo:global"]
    assert probe.arg_spec == "-8@counter(%rip)"
    (arg,) = probe.args
    counter = nm_symbols(probes_bin)["counter"]
    # At the probe regs->ip == pc, so the variable is at ip + offset.
    assert (arg.kind, arg.reg, arg.symbol, arg.size, arg.signed) == ("mem", "ip", "counter", 8, True)
    assert probe.pc + arg.offset == counter


def test_semaphore_file_offset(probes_bin: Path) -> None:
    probes = by_name(probes_bin)
    sema = nm_symbols(probes_bin)["demo_guarded_semaphore"]
    addr, off = readelf_sections(probes_bin)[".probes"]
    guarded = probes["demo:guarded"]
    assert guarded.semaphore == sema
    assert guarded.semaphore_offset == sema - addr + off
    # The note and the variable agree with the ELF file itself.
    headers = ElfHeaders.open(str(probes_bin))
    assert headers.file_offset(sema) == guarded.semaphore_offset
    assert all(p.semaphore == 0 and p.semaphore_offset is None
               for name, p in probes.items() if name != "demo:guarded")


def test_moved_base_shifts_pc_and_semaphore(probes_bin: Path, tmp_path: Path) -> None:
    """As after prelink: the note's base no longer equals .stapsdt.base's
    address, and systemtap says pc and semaphore move by the difference."""
    moved = tmp_path / "moved"
    raw = bytearray(probes_bin.read_bytes())
    headers = ElfHeaders.open(str(probes_bin))
    note_sec = headers.section(".note.stapsdt")
    assert note_sec is not None
    pos = note_sec.offset
    while pos < note_sec.offset + note_sec.size:  # rewrite every note's base
        namesz, descsz, _ = struct.unpack_from("<III", raw, pos)
        desc = pos + 12 + ((namesz + 3) & ~3)
        (base,) = struct.unpack_from("<Q", raw, desc + 8)
        struct.pack_into("<Q", raw, desc + 8, base - 0x10)
        pos = desc + ((descsz + 3) & ~3)
    moved.write_bytes(raw)
    before, after = by_name(probes_bin), by_name(moved)
    for name, p in before.items():
        q = after[name]
        assert q.base == p.base - 0x10
        assert q.pc == p.pc + 0x10
        assert q.semaphore == (p.semaphore + 0x10 if p.semaphore else 0)


def test_find_globs(probes_bin: Path) -> None:
    path = str(probes_bin)
    assert [p.name for p in find(path, "demo", "s*")] == ["six"]
    assert sorted(p.full_name for p in find(path, None, "*r*")) == [
        "demo:guarded", "demo:three", "demo:zero", "other:frame"]
    assert [p.full_name for p in find(path, "oth?r", "*")] == ["other:frame"]
    assert find(path, "Demo", "*") == []  # case-sensitive, like bpftrace
    assert len(find(path, "*", "*")) == 8


def test_binary_without_probes(tmp_path: Path) -> None:
    src = tmp_path / "plain.c"
    src.write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "plain"), str(src)], check=True)
    assert usdt_probes(str(tmp_path / "plain")) == []


@pytest.mark.parametrize("spec, expected", [
    ("-4@%edi", UsdtArg(4, True, "reg", reg="di")),
    ("8@%rax", UsdtArg(8, False, "reg", reg="ax")),
    ("2@%di", UsdtArg(2, False, "reg", reg="di")),
    ("1@%dil", UsdtArg(1, False, "reg", reg="di")),
    ("-1@%al", UsdtArg(1, True, "reg", reg="ax")),
    ("4@%r10d", UsdtArg(4, False, "reg", reg="r10")),
    ("2@%r11w", UsdtArg(2, False, "reg", reg="r11")),
    ("1@%r15b", UsdtArg(1, False, "reg", reg="r15")),
    ("8@%rsp", UsdtArg(8, False, "reg", reg="sp")),
    ("8@$42", UsdtArg(8, False, "const", value=42)),
    ("-4@$-7", UsdtArg(4, True, "const", value=-7)),
    ("8@$0x10", UsdtArg(8, False, "const", value=16)),
    ("-4@-20(%rbp)", UsdtArg(4, True, "mem", reg="bp", offset=-20)),
    ("-4@112(%rsp)", UsdtArg(4, True, "mem", reg="sp", offset=112)),
    ("8@(%rax)", UsdtArg(8, False, "mem", reg="ax")),
    ("4@8(%rsp,%rax,4)", UsdtArg(4, False, "mem", reg="sp", offset=8, index="ax", scale=4)),
    ("-4@(%rdx,%rcx,4)", UsdtArg(4, True, "mem", reg="dx", index="cx", scale=4)),
    ("8@(%rdx,%rcx)", UsdtArg(8, False, "mem", reg="dx", index="cx")),
    ("8f@%rdx", UsdtArg(8, False, "reg", reg="dx", fp=True)),
    ("4f@-12(%rbp)", UsdtArg(4, False, "mem", reg="bp", offset=-12, fp=True)),
    ("%rdi", UsdtArg(8, False, "reg", reg="di")),  # pre-size notes
])
def test_parse_arg(spec: str, expected: UsdtArg) -> None:
    got = parse_arg(spec)
    assert got == UsdtArg(**{**expected.__dict__, "spec": spec})


def test_symbol_operands() -> None:
    syms = {"counter": 0x4010, "CheckpointStats": 0x9000, "arr": 0x5000}
    pc = 0x1180
    assert parse_arg("-8@counter(%rip)", pc, syms).offset == 0x4010 - pc
    assert parse_arg("-4@40+CheckpointStats(%rip)", pc, syms).offset == 0x9000 + 40 - pc  # postgres
    assert parse_arg("4@counter+8(%rip)", pc, syms).offset == 0x4018 - pc
    assert parse_arg("4@counter-8(%rip)", pc, syms).offset == 0x4008 - pc
    absolute = parse_arg("4@arr(,%rax,4)", pc, syms)  # non-PIE: no base register
    assert (absolute.reg, absolute.offset, absolute.index, absolute.scale) == (None, 0x5000, "ax", 4)
    with pytest.raises(UsdtError, match="not found"):
        parse_arg("8@missing(%rip)", pc, syms)


@pytest.mark.parametrize("spec", ["8@%ah", "4@%xmm0", "3@%rax", "8@%rax)", "8@*%rax",
                                  "8@(%rax,%rsp,2)", "8@4(%rax,%rbx,3)"])
def test_unsupported_args(spec: str) -> None:
    with pytest.raises(UsdtError):
        parse_arg(spec)


def test_parse_args_splits_on_spaces() -> None:
    args = parse_args("8@%rbp 8@%r12 -4@%eax")
    assert [(a.size, a.signed, a.reg) for a in args] == [(8, False, "bp"), (8, False, "r12"),
                                                         (4, True, "ax")]
    assert parse_args("") == ()
