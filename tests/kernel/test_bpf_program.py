"""pytrace.bpf.program on the live kernel: loading, the verifier's log,
test runs and program info."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pytrace.bpf import insn as I
from pytrace.bpf.maps import BpfMap
from pytrace.bpf.program import (
    VerifierError,
    error_line,
    load_program,
    parse_insn_index,
    prog_info,
    test_run,
    xlated_insn_count,
)
from pytrace.bpf.syscalls import AttachType, BpfPermissionError, MapType, ProgType
from pytrace.errors import EnvironmentProblem
from tests.kernel.test_bpf_syscalls import TAG, bpf_clean, counter_prog, u64_at  # noqa: F401

pytestmark = pytest.mark.kernel

RET0 = I.mov64_imm(I.R0, 0) + I.exit_insn()


def test_load_and_test_run() -> None:
    fd = load_program(ProgType.RAW_TRACEPOINT, I.mov64_imm(I.R0, 42) + I.exit_insn(), name=TAG + "r42")
    try:
        assert test_run(fd) == 42
        assert test_run(fd, bytes(16)) == 42  # a fake args[] ctx
        info = prog_info(fd)
        assert info.name == TAG + "r42" and info.type == ProgType.RAW_TRACEPOINT
        assert info.id > 0 and info.xlated_len == 16 and info.jited_len > 0
        assert info.verified_insns == 2 and len(info.tag) == 16
        assert xlated_insn_count(fd) == 2
        with pytest.raises(OSError) as exc:
            test_run(fd, bytes(8), repeat=5)  # raw_tp runs once per call
        assert exc.value.errno == errno.EINVAL
    finally:
        os.close(fd)


def test_test_run_counts_into_a_map() -> None:
    with BpfMap.create(MapType.HASH, 4, 8, 4, TAG + "cnt") as m:
        m.update((0).to_bytes(4, "little"), bytes(8))
        fd = load_program(ProgType.RAW_TRACEPOINT, counter_prog(m.fd), name=TAG + "cnt")
        try:
            for _ in range(25):
                assert test_run(fd, bytes(8)) == 0
            assert prog_info(fd).map_ids == (_map_id(m),)
        finally:
            os.close(fd)
        assert u64_at(m, 0) == 25


def _map_id(m: BpfMap) -> int:
    for line in Path(f"/proc/self/fdinfo/{m.fd}").read_text().splitlines():
        if line.startswith("map_id:"):
            return int(line.split()[1])
    raise AssertionError("no map_id in fdinfo")


def test_verifier_rejection_has_log_and_insn_index() -> None:
    # insn 1 reads through r2, which was never written.
    bad = I.mov64_imm(I.R0, 0) + I.ldx(8, I.R1, I.R2, 0) + I.exit_insn()
    with pytest.raises(VerifierError) as info:
        load_program(ProgType.RAW_TRACEPOINT, bad, name=TAG + "bad")
    e = info.value
    assert e.errno == errno.EACCES and e.cmd == "BPF_PROG_LOAD"
    assert "R2 !read_ok" in e.log and e.reason == "R2 !read_ok"
    assert e.insn_index == 1
    assert "at insn 1: R2 !read_ok" in str(e) and TAG + "bad" in str(e)
    assert not e.truncated


def test_missing_exit_value() -> None:
    with pytest.raises(VerifierError) as info:
        load_program(ProgType.RAW_TRACEPOINT, I.exit_insn(), name=TAG + "r0")
    assert info.value.insn_index == 0 and "R0 !read_ok" in info.value.reason


def test_small_log_buffer_is_grown() -> None:
    """A program that verifies is loaded without a log, whatever the buffer;
    a rejected one whose log does not fit (ENOSPC since 6.4) is reloaded
    with the size the kernel reports, so the whole log comes back."""
    code = I.mov64_imm(I.R1, 0) * 20 + RET0
    fd = load_program(ProgType.RAW_TRACEPOINT, code, name=TAG + "log", log_size=32)
    os.close(fd)
    bad = I.mov64_imm(I.R1, 0) * 20 + I.exit_insn()
    with pytest.raises(VerifierError) as info:
        load_program(ProgType.RAW_TRACEPOINT, bad, name=TAG + "log", log_size=32)
    assert info.value.errno == errno.EACCES and info.value.insn_index == 20
    assert info.value.log.startswith("func#0") or info.value.log.startswith("0:")


def test_huge_log_keeps_tail_and_real_errno() -> None:
    """A loop the verifier walks 1M times: the full log (~50 MB) is not kept;
    the tail is, and a reload without a log gives the real verdict (E2BIG,
    which the truncated-log ENOSPC would otherwise hide)."""
    loop = (I.Asm().emit(I.mov64_imm(I.R1, 0)).label("l").emit(I.alu64_imm(I.ADD, I.R1, 1))
            .jmp(I.JLT, I.R1, "l", imm=2_000_000).emit(*[RET0]).assemble())
    with pytest.raises(VerifierError) as info:
        load_program(ProgType.RAW_TRACEPOINT, loop, name=TAG + "big")
    e = info.value
    assert e.errno == errno.E2BIG and e.truncated
    assert "BPF program is too large" in e.reason and len(e.log) <= 1 << 20
    assert e.insn_index in (1, 2)


def test_fentry_is_refused_before_verification() -> None:
    """On this kernel TRACING/fentry loads get EPERM with an empty log: an
    environment problem, not a verifier verdict."""
    with pytest.raises(BpfPermissionError) as info:
        load_program(ProgType.TRACING, RET0, name=TAG + "fent",
                     expected_attach_type=AttachType.TRACE_FENTRY, attach_btf_id=1)
    assert isinstance(info.value, EnvironmentProblem) and info.value.errno == errno.EPERM
    assert "before verifying" in str(info.value)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        load_program(ProgType.RAW_TRACEPOINT, b"\0" * 12)
    with pytest.raises(ValueError):
        load_program(ProgType.RAW_TRACEPOINT, b"")


def test_log_parsing() -> None:
    log = ("func#0 @0\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 0                        ; R0_w=0\n"
           "1: (79) r1 = *(u64 *)(r2 +0)\nR2 !read_ok\n"
           "processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0\n")
    assert parse_insn_index(log) == 1
    assert error_line(log) == "R2 !read_ok"
    assert parse_insn_index("") is None and error_line("") == ""
