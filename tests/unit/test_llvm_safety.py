"""LLVM's BPF back end aborts the whole process on some programs (here, a
stack frame over 512 bytes); pytrace compiles in a forked child, so the abort
becomes a diagnostic and the caller lives on.  The command line forks that
child early (CompilerProcess) so LLVM loads while the script is checked."""

from __future__ import annotations

import os
import signal
import time

import pytest
from llvmlite import ir

from pytrace.codegen.layout import Layout
from pytrace.codegen.llvm.irgen import CodegenError
from pytrace.codegen.llvm.module import Generated, emit_object_safely
from pytrace.codegen.llvm.worker import CompilerProcess


def _module(stack_bytes: int) -> Generated:
    m = ir.Module(name="t")
    m.triple = "bpfel"
    i64 = ir.IntType(64)
    fn = ir.Function(m, ir.FunctionType(i64, [ir.IntType(8).as_pointer()]), name="prog")
    fn.section = "pytrace/prog"
    b = ir.IRBuilder(fn.append_basic_block())
    buf = b.alloca(ir.ArrayType(ir.IntType(8), stack_bytes))
    # Keep the buffer alive: pass it to a helper (bpf_get_current_comm).
    helper = b.inttoptr(ir.Constant(i64, 16), ir.FunctionType(i64, [buf.type, ir.IntType(32)]).as_pointer())
    b.call(helper, [buf, ir.Constant(ir.IntType(32), stack_bytes)])
    b.ret(ir.Constant(i64, 0))
    return Generated(Layout(), [], m)


def test_small_frame_compiles() -> None:
    assert emit_object_safely(_module(64)).startswith(b"\x7fELF")


def test_llvm_abort_is_a_codegen_error() -> None:
    with pytest.raises(CodegenError, match="could not compile this program"):
        emit_object_safely(_module(4096))


# ------------------------------------------------- the pre-forked compiler

def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_started_compiler_compiles_and_is_reaped() -> None:
    proc = CompilerProcess.start()
    pid = proc.pid
    assert emit_object_safely(_module(64), proc).startswith(b"\x7fELF")
    assert _gone(pid) and proc.pid == 0


def test_started_compiler_reports_an_llvm_abort() -> None:
    with pytest.raises(CodegenError, match="could not compile this program"):
        emit_object_safely(_module(4096), CompilerProcess.start())


def test_unused_compiler_is_released() -> None:
    proc = CompilerProcess.start()
    pid = proc.pid
    proc.close()
    assert _gone(pid)
    proc.close()  # idempotent


def test_a_later_child_holding_the_pipes_does_not_block() -> None:
    """A -c command is forked after the compiler and waits before exec with
    the compiler's pipe ends inherited: compiling and closing must not wait
    for it (the request is length-prefixed, an unused child is killed)."""
    for use in (True, False):
        proc = CompilerProcess.start()
        holder = os.fork()
        if holder == 0:  # pragma: no cover - the holder only sleeps
            time.sleep(30)
            os._exit(0)
        try:
            started = time.monotonic()
            if use:
                assert emit_object_safely(_module(64), proc).startswith(b"\x7fELF")
            else:
                proc.close()
            assert time.monotonic() - started < 20
        finally:
            os.kill(holder, signal.SIGKILL)
            os.waitpid(holder, 0)
