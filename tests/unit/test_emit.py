"""--emit stages of the back end work without root: LLVM IR, BPF assembly and
an ELF object with one section per program."""

from __future__ import annotations

import io
from pathlib import Path

from pytrace import cli
from pytrace.bpf.elf import ElfObject

FAKE = str(Path(__file__).parents[1] / "data" / "tracefs")
SCRIPT = 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); } BEGIN { printf("hi %d\\n", 1); }'


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["--fake-kernel", FAKE, *args], stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def test_emit_ir() -> None:
    rc, out, err = _run("--emit", "ir", "-e", SCRIPT)
    assert rc == 0, err
    assert 'target triple = "bpfel"' in out
    assert 'section "pytrace/pt0_0_tracepoint_syscalls_sys_enter_openat"' in out
    assert "llvm.bpf.pseudo" in out


def test_emit_asm() -> None:
    rc, out, err = _run("--emit", "asm", "-e", SCRIPT)
    assert rc == 0, err
    assert "call 16" in out          # bpf_get_current_comm
    assert "lock *(u64 *)" in out    # the atomic add of count()
    assert "call 131" in out         # bpf_ringbuf_reserve for printf


def test_emit_obj(tmp_path: Path) -> None:
    target = tmp_path / "out.o"
    rc, _, err = _run("--emit", f"obj={target}", "-e", SCRIPT)
    assert rc == 0, err
    obj = ElfObject.from_bytes(target.read_bytes())
    names = obj.section_names()
    assert "pytrace/pt0_0_tracepoint_syscalls_sys_enter_openat" in names
    assert "pytrace/pt1_0_BEGIN" in names


def test_emit_obj_needs_a_file() -> None:
    rc, _, err = _run("--emit", "obj", "-e", SCRIPT)
    assert rc == 1 and "needs a file" in err


def test_unknown_stage() -> None:
    rc, _, err = _run("--emit", "bogus", "-e", SCRIPT)
    assert rc == 1 and "unknown stage 'bogus'" in err
