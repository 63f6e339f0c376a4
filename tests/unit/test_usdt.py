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
from typing import Iterator

import pytest

from pytrace.errors import EnvironmentProblem
from pytrace.kernel.elfsyms import ElfHeaders, resolve_library
from pytrace.kernel.info import FakeKernel
from pytrace.kernel.usdt import (UsdtArg, UsdtError, UsdtProbe, decode_args, find, parse_arg, parse_args,
                                 process_files, usdt_probes)
from pytrace.providers.base import ListEnv, ResolvedAttach
from pytrace.providers.usdt import UsdtProvider
from tests.conftest import compile_text

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


# ---------------------------------------------------------------- resolution (providers/usdt.py)
# The attach point is resolved against the files themselves: no kernel, no
# root.  A process held on stdin stands in for -p.

SITES_C = r"""
#include <sys/sdt.h>
#include <unistd.h>
static inline __attribute__((always_inline)) void tick(int x) { DTRACE_PROBE1(demo, tick, x); }
__attribute__((noinline)) void a(int i) { tick(i); }
__attribute__((noinline)) void b(int i) { tick(i * 2); }
int main(int argc, char **argv) {
    char c;
    a(argc); b(argc);
    if (argc > 1) {
        write(1, "r", 1);               /* running main: every library is mapped */
        while (read(0, &c, 1) > 0) {}   /* held until stdin closes */
    }
    return 0;
}
"""


@pytest.fixture(scope="session")
def sites_bin(sdt_header: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("usdtsites")
    (tmp / "sites.c").write_text(SITES_C)
    subprocess.run(["gcc", "-O2", "-o", str(tmp / "sites"), str(tmp / "sites.c")], check=True)
    # The object file too: its notes are not placed yet.
    subprocess.run(["gcc", "-O2", "-c", "-o", str(tmp / "sites.o"), str(tmp / "sites.c")], check=True)
    return tmp / "sites"


@pytest.fixture
def held_sites(sites_bin: Path) -> Iterator[int]:
    proc = subprocess.Popen([str(sites_bin), "hold"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.read(1) == b"r"
        yield proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def resolve(fake_kernel: FakeKernel, attach: str, pid: int | None = None,
            body: str = "@ = count();") -> tuple[list[ResolvedAttach], str]:
    """The ResolvedAttach list of one probe and the rendered diagnostics."""
    comp, diags = compile_text(f"{attach} {{ {body} }}", fake_kernel, pid=pid)
    return [a for p in comp.probes for a in p.attaches], diags.render()


def test_one_attach_per_site(fake_kernel: FakeKernel, sites_bin: Path) -> None:
    attaches, text = resolve(fake_kernel, f"usdt:{sites_bin}:demo:tick")
    sites = usdt_probes(str(sites_bin))
    assert text == "" and len(sites) == 2
    # Both sites carry the probe's one name (what 'probe' prints)...
    assert [a.target for a in attaches] == [f"usdt:{sites_bin}:demo:tick"] * 2
    # ... and each its own place and argument locations for codegen.
    for a, site in zip(attaches, sites):
        assert (a.provider, a.nargs) == ("usdt", 1)
        assert a.detail["pc_offset"] == site.pc_offset and a.detail["link_pc"] == site.pc
        assert a.detail["arg_locations"] == site.args and a.detail["semaphore_offset"] is None
    assert attaches[0].detail["pc_offset"] != attaches[1].detail["pc_offset"]


def test_name_alone_matches_any_provider(fake_kernel: FakeKernel, probes_bin: Path) -> None:
    attaches, _ = resolve(fake_kernel, f"usdt:{probes_bin}:frame")
    assert [a.target for a in attaches] == [f"usdt:{probes_bin}:other:frame"]
    attaches, _ = resolve(fake_kernel, f"U:{probes_bin}:*:s*")
    assert [a.target for a in attaches] == [f"usdt:{probes_bin}:demo:six"]
    attaches, _ = resolve(fake_kernel, f"usdt:{probes_bin}:demo:*")
    assert len(attaches) == 7 and all(a.target.startswith(f"usdt:{probes_bin}:demo:") for a in attaches)
    assert {a.target.rsplit(":", 1)[1]: a.nargs for a in attaches} == {
        "zero": 0, "one": 1, "three": 3, "six": 6, "consts": 2, "global": 1, "guarded": 1}


def test_semaphore_offset_reaches_attach(fake_kernel: FakeKernel, probes_bin: Path) -> None:
    (a,), _ = resolve(fake_kernel, f"usdt:{probes_bin}:demo:guarded")
    assert a.detail["semaphore_offset"] == by_name(probes_bin)["demo:guarded"].semaphore_offset is not None


def test_path_glob(fake_kernel: FakeKernel, sites_bin: Path) -> None:
    """Files the glob matches that are not linked ELF files are passed over."""
    attaches, text = resolve(fake_kernel, f"usdt:{sites_bin.parent}/*:demo:tick")
    assert text == "" and [a.detail["path"] for a in attaches] == [str(sites_bin)] * 2


@pytest.mark.parametrize("attach, expected", [
    ("usdt:{bin}:demo:tock", "error: usdt probe not found: demo:tock\n"
     "usdt:{bin}:demo:tock {{ @ = count(); }}\n{pad}^~~~~~~~~\n"
     "hint: did you mean 'demo:tick'?\nhint: list them with: pytrace -l 'usdt:{bin}:*'"),
    ("usdt:{bin}:tack", "error: usdt probe not found: tack"),
    ("usdt:{bin}:nope:*", "hint: known usdt probes: demo:tick"),
    ("usdt:{obj}:demo:tick", "error: cannot read the USDT probes of {obj}: a relocatable object file"),
    ("usdt:{src}:demo:tick", "error: cannot read the USDT probes of {src}: not an ELF file"),
    ("usdt:/bin/sh:a:b", "error: /bin/sh has no USDT probes (no .note.stapsdt notes)"),
    ("usdt:{bin}x:demo:tick", "error: binary or library not found: {bin}x"),
    ("usdt:tick", "error: a binary and a probe name are needed"),
    ("usdt:*:tick", "error: a binary is needed: without -p there is no process to search"),
    ("usdt::demo:tick", "error: a binary is needed"),
    ("usdt:{bin}:demo:", "error: a probe name is needed"),
])
def test_resolution_diagnostics(fake_kernel: FakeKernel, sites_bin: Path, attach: str, expected: str) -> None:
    names = {"bin": sites_bin, "obj": sites_bin.with_suffix(".o"), "src": sites_bin.with_suffix(".c"),
             "pad": " " * len(f"usdt:{sites_bin}:")}
    attaches, text = resolve(fake_kernel, attach.format(**names))
    assert attaches == [] and expected.format(**names) in text


def test_foreign_files(fake_kernel: FakeKernel, sites_bin: Path, tmp_path: Path) -> None:
    """Another machine's binary, a 32-bit one: one sentence each."""
    raw = bytearray(sites_bin.read_bytes())
    struct.pack_into("<H", raw, 18, 183)  # e_machine: EM_AARCH64
    (tmp_path / "arm").write_bytes(raw)
    raw = bytearray(sites_bin.read_bytes())
    raw[4] = 1  # EI_CLASS: ELFCLASS32
    (tmp_path / "i386").write_bytes(raw)
    _, text = resolve(fake_kernel, f"usdt:{tmp_path}/arm:demo:tick")
    assert f"error: {tmp_path}/arm is not an x86_64 file (ELF machine 183): its probes cannot fire here" in text
    _, text = resolve(fake_kernel, f"usdt:{tmp_path}/i386:demo:tick")
    assert (f"error: cannot read the USDT probes of {tmp_path}/i386: only 64-bit little-endian ELF files "
            "are supported") in text


def test_pid_searches_the_process(fake_kernel: FakeKernel, sites_bin: Path, held_sites: int) -> None:
    """-p: usdt:name, usdt:*:name and usdt::provider:name search the
    process's files, named through /proc/PID/root as bpftrace names them;
    usdt:provider:name too, when 'provider' names no file."""
    expected = [f"usdt:/proc/{held_sites}/root{sites_bin}:demo:tick"] * 2
    for attach in ("usdt:tick", "usdt:*:tick", "usdt::demo:tick", "usdt:*:d*:t?ck", "usdt:demo:tick",
                   f"usdt:{sites_bin}:tick"):
        attaches, text = resolve(fake_kernel, attach, pid=held_sites)
        assert text == "" and [a.target for a in attaches] == expected, attach
    _, text = resolve(fake_kernel, "usdt:nope:tick", pid=held_sites)
    assert "error: binary or library not found: nope" in text
    _, text = resolve(fake_kernel, "usdt:tack", pid=held_sites)
    assert "error: usdt probe not found: tack" in text and "hint: did you mean 'tick'?" in text


def test_process_files(sites_bin: Path, held_sites: int) -> None:
    files = process_files(held_sites)
    root = f"/proc/{held_sites}/root"
    assert files[0] == root + str(sites_bin)
    libc = resolve_library("libc")
    assert libc is not None and root + os.path.realpath(libc) in files
    assert len(files) == len(set(files))


def test_library_by_short_name(fake_kernel: FakeKernel) -> None:
    lib = resolve_library("libstdc++")
    if lib is None or not usdt_probes(lib):
        pytest.skip("libstdc++ with its USDT probes is not installed")
    attaches, text = resolve(fake_kernel, "usdt:libstdc++:libstdcxx:throw")
    assert text == "" and attaches and all(a.target == f"usdt:{lib}:libstdcxx:throw" for a in attaches)


def test_undecodable_argument(fake_kernel: FakeKernel, probes_bin: Path, tmp_path: Path) -> None:
    """Stripped, the binary loses 'counter', which demo:global's operand
    names: the probe still resolves (it can be counted) with a warning, and
    its argument is out of range."""
    stripped = tmp_path / "stripped"
    shutil.copy(probes_bin, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    (a,), text = resolve(fake_kernel, f"usdt:{stripped}:demo:global")
    assert a.nargs == 0
    assert text.startswith("stdin:1:1: warning: usdt probe demo:global: arg0 cannot be read: "
                           "argument '-8@counter(%rip)': symbol 'counter' not found")
    assert "hint: arg0 cannot be used in this probe" in text
    _, text = resolve(fake_kernel, f"usdt:{stripped}:demo:global", body="@ = arg0;")
    assert f"error: 'arg0' of usdt:{stripped}:demo:global cannot be read: argument '-8@counter(%rip)': " \
           "symbol 'counter' not found" in text
    # A probe with register operands keeps them.
    (a,), text = resolve(fake_kernel, f"usdt:{stripped}:demo:six", body="@ = arg5;")
    assert text == "" and a.nargs == 6


def test_decode_args_keeps_the_arguments_before_a_bad_one() -> None:
    args, error = decode_args("-4@%edi 8@%ah -2@%dx")
    assert [a.reg for a in args] == ["di"] and error is not None and "%ah" in error
    assert decode_args("-4@%edi 2@%dx") == (parse_args("-4@%edi 2@%dx"), None)


def test_listing(sites_bin: Path, held_sites: int) -> None:
    provider = UsdtProvider()
    warnings: list[str] = []
    env = ListEnv(warn=warnings.append)
    assert provider.list_probes(f"{sites_bin}:*", env) == [f"usdt:{sites_bin}:demo:tick"]
    assert provider.list_probes(f"{sites_bin.parent}/*:*", env) == [f"usdt:{sites_bin}:demo:tick"]
    # Provider and name are matched here: the lines name both even when the
    # pattern leaves the provider out.
    assert provider.list_probes(f"{sites_bin}:tick", env) == [f"usdt:{sites_bin}:demo:tick"]
    assert provider.list_probes(f"{sites_bin}:d*:t?ck", env) == [f"usdt:{sites_bin}:demo:tick"]
    assert provider.list_probes(f"{sites_bin}:other:*", env) == []
    assert provider.list_probes(f"{sites_bin}:tock", env) == []
    assert provider.list_probes("*", env) == [] and "name the binary" in warnings[0]
    expected = [f"usdt:/proc/{held_sites}/root{sites_bin}:demo:tick"]
    for pattern in ("*", "*:tick", "::t*", "*:demo:*", f"{sites_bin}:*"):
        assert provider.list_probes(pattern, ListEnv(pid=held_sites)) == expected, pattern
    with pytest.raises(EnvironmentProblem, match="not an ELF file"):
        provider.list_probes(f"{sites_bin.with_suffix('.c')}:*", env)
    with pytest.raises(EnvironmentProblem, match="no such binary or library"):
        provider.list_probes(f"{sites_bin}x:*", env)
