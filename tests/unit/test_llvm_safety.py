"""LLVM's BPF back end aborts the whole process on some programs (here, a
stack frame over 512 bytes); pytrace compiles in a forked child, so the abort
becomes a diagnostic and the caller lives on."""

from __future__ import annotations

import pytest
from llvmlite import ir

from pytrace.codegen.layout import Layout
from pytrace.codegen.llvm.irgen import CodegenError
from pytrace.codegen.llvm.module import Generated, emit_object_safely


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
