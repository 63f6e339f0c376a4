"""LLVM IR scaffolding for BPF programs: helpers, memory and maps.

``ProgramGen`` builds one BPF program (one LLVM function in its own section)
and owns the rules the verifier and LLVM's BPF back end impose:

* every ``alloca`` sits in the entry block with a constant size, and the
  frame is budgeted below 512 bytes (LLVM aborts the process beyond it);
* every key and value handed to a helper is zeroed first, padding included
  (the verifier lets root read uninitialised stack, and the hash would then
  key on garbage);
* helpers are called through ``inttoptr(id)`` with at most 5 arguments, and
  every pointer a helper returns is NULL-checked before use;
* maps are referenced with ``llvm.bpf.pseudo(BPF_PSEUDO_MAP_FD, fd)``, so the
  object needs no map relocations.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ...semantic import types as T

I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
I8P = I8.as_pointer()
STACK_BUDGET = 480  # bytes; LLVM adds its own spills on top of our allocas (limit 512)

# Helper ids (include/uapi/linux/bpf.h, ___BPF_FUNC_MAPPER order).
H_MAP_LOOKUP, H_MAP_UPDATE, H_MAP_DELETE = 1, 2, 3
H_KTIME_GET_NS, H_GET_PRANDOM_U32, H_GET_SMP_PROCESSOR_ID = 5, 7, 8
H_GET_CURRENT_PID_TGID, H_GET_CURRENT_UID_GID, H_GET_CURRENT_COMM = 14, 15, 16
H_GET_STACKID, H_GET_CURRENT_TASK, H_GET_NUMA_NODE_ID = 27, 35, 42
H_GET_CURRENT_CGROUP_ID, H_SEND_SIGNAL, H_PROBE_READ_USER, H_PROBE_READ_KERNEL = 80, 109, 112, 113
H_PROBE_READ_USER_STR, H_PROBE_READ_KERNEL_STR, H_JIFFIES64 = 114, 115, 118
H_RINGBUF_OUTPUT, H_RINGBUF_RESERVE, H_RINGBUF_SUBMIT, H_RINGBUF_DISCARD = 130, 131, 132, 133
H_GET_FUNC_IP = 173

BPF_ANY, BPF_NOEXIST = 0, 1
BPF_F_USER_STACK = 1 << 8


class CodegenError(Exception):
    """A construct the code generator cannot lower; carries the AST span."""

    def __init__(self, message: str, span: object = None, hints: list[str] | None = None) -> None:
        super().__init__(message)
        self.span = span
        self.hints = hints or []


@dataclass
class Val:
    """A lowered value: an i64 in a register, or bytes in memory."""

    ty: T.Type
    reg: ir.Value | None = None     # i64 for integers, pointers and symbols
    ptr: ir.Value | None = None     # i8* for strings, tuples, buffers, structs, stacks

    @property
    def in_memory(self) -> bool:
        return self.ptr is not None


class ProgramGen:
    """Builds one BPF program function."""

    def __init__(self, module: ir.Module, name: str, section: str, map_fds: dict[str, int]) -> None:
        self.module = module
        fnty = ir.FunctionType(I64, [I8P])
        self.fn = ir.Function(module, fnty, name=name)
        self.fn.section = section
        self.fn.attributes.add("nounwind")
        self.ctx = self.fn.args[0]
        self.entry = self.fn.append_basic_block("entry")
        body = self.fn.append_basic_block("body")
        self.b = ir.IRBuilder(body)
        self._entry_builder = ir.IRBuilder(self.entry)
        self.map_fds = map_fds
        self.stack_used = 0
        self.variables: dict[str, tuple[ir.Value, T.Type]] = {}
        self.loop_stack: list[tuple[ir.Block, ir.Block]] = []  # (continue target, break target)

    # -------------------------------------------------------------- finishing
    def finish(self) -> None:
        if not self.b.block.is_terminated:
            self.b.ret(ir.Constant(I64, 0))
        self._entry_builder.branch(self.fn.blocks[1])

    # -------------------------------------------------------------- memory
    def alloca(self, size: int, name: str = "", span: object = None) -> ir.Value:
        """A zero-sized-safe stack buffer in the entry block (LLVM's BPF
        back end aborts on allocas elsewhere)."""
        size = max(8, (size + 7) // 8 * 8)
        self.stack_used += size
        if self.stack_used > STACK_BUDGET:
            raise CodegenError(f"this probe needs more than {STACK_BUDGET} bytes of BPF stack", span,
                               ["BPF programs have a 512-byte stack: use fewer or shorter strings "
                                "(config = { max_strlen = 32 }) or split the work across probes"])
        with self._entry_builder.goto_entry_block():
            arr = self._entry_builder.alloca(ir.ArrayType(I64, size // 8), name=name)
        return self.b.bitcast(arr, I8P)

    def alloca_i64(self, name: str = "") -> ir.Value:
        self.stack_used += 8
        with self._entry_builder.goto_entry_block():
            return self._entry_builder.alloca(I64, name=name)

    def memset(self, ptr: ir.Value, size: int, value: int = 0) -> None:
        fn = self.module.declare_intrinsic("llvm.memset", [I8P, I64])
        self.b.call(fn, [ptr, ir.Constant(I8, value), ir.Constant(I64, size), ir.Constant(I1, 0)])

    def memcpy(self, dst: ir.Value, src: ir.Value, size: int) -> None:
        fn = self.module.declare_intrinsic("llvm.memcpy", [I8P, I8P, I64])
        self.b.call(fn, [dst, src, ir.Constant(I64, size), ir.Constant(I1, 0)])

    def gep(self, ptr: ir.Value, offset: int | ir.Value) -> ir.Value:
        off = ir.Constant(I64, offset) if isinstance(offset, int) else offset
        return self.b.gep(ptr, [off])

    def store_int(self, ptr: ir.Value, offset: int, value: ir.Value, size: int = 8) -> None:
        ity = ir.IntType(size * 8)
        v = value if value.type == ity else (self.b.trunc(value, ity) if size < 8 else value)
        self.b.store(v, self.b.bitcast(self.gep(ptr, offset), ity.as_pointer()))

    def load_int(self, ptr: ir.Value, offset: int, size: int = 8, signed: bool = False) -> ir.Value:
        ity = ir.IntType(size * 8)
        v = self.b.load(self.b.bitcast(self.gep(ptr, offset), ity.as_pointer()))
        if size == 8:
            return v
        return self.b.sext(v, I64) if signed else self.b.zext(v, I64)

    def const(self, n: int) -> ir.Constant:
        return ir.Constant(I64, n & 0xFFFFFFFFFFFFFFFF)

    # -------------------------------------------------------------- helpers
    def helper(self, hid: int, args: list[ir.Value], ret: ir.Type = I64) -> ir.Value:
        if len(args) > 5:
            raise CodegenError("internal: a BPF helper takes at most 5 arguments")
        fnty = ir.FunctionType(ret, [a.type for a in args])
        fptr = self.b.inttoptr(ir.Constant(I64, hid), fnty.as_pointer())
        return self.b.call(fptr, args)

    def map_ptr(self, bpf_name: str) -> ir.Value:
        fd = self.map_fds.get(bpf_name, 0)
        pseudo = self.module.declare_intrinsic("llvm.bpf.pseudo", (), ir.FunctionType(I64, [I64, I64]))
        return self.b.inttoptr(self.b.call(pseudo, [ir.Constant(I64, 1), ir.Constant(I64, fd)]), I8P)

    def map_lookup(self, bpf_name: str, key: ir.Value) -> ir.Value:
        return self.helper(H_MAP_LOOKUP, [self.map_ptr(bpf_name), key], ret=I8P)

    def map_update(self, bpf_name: str, key: ir.Value, value: ir.Value, flags: int = BPF_ANY) -> ir.Value:
        return self.helper(H_MAP_UPDATE, [self.map_ptr(bpf_name), key, value, self.const(flags)])

    def map_delete(self, bpf_name: str, key: ir.Value) -> ir.Value:
        return self.helper(H_MAP_DELETE, [self.map_ptr(bpf_name), key])

    def probe_read(self, dst: ir.Value, size: int, src: ir.Value, user: bool = False) -> None:
        hid = H_PROBE_READ_USER if user else H_PROBE_READ_KERNEL
        self.helper(hid, [dst, ir.Constant(I32, size), self.as_ptr(src)])

    def probe_read_str(self, dst: ir.Value, size: int, src: ir.Value, user: bool = False) -> ir.Value:
        hid = H_PROBE_READ_USER_STR if user else H_PROBE_READ_KERNEL_STR
        return self.helper(hid, [dst, ir.Constant(I32, size), self.as_ptr(src)])

    def as_ptr(self, v: ir.Value) -> ir.Value:
        if isinstance(v.type, ir.PointerType):
            return v if v.type == I8P else self.b.bitcast(v, I8P)
        return self.b.inttoptr(v, I8P)

    def as_i64(self, v: ir.Value) -> ir.Value:
        if isinstance(v.type, ir.PointerType):
            return self.b.ptrtoint(v, I64)
        if v.type == I64:
            return v
        return self.b.zext(v, I64)

    def atomic_add(self, ptr: ir.Value, value: ir.Value) -> None:
        p = self.b.bitcast(ptr, I64.as_pointer())
        # 'monotonic' gives the plain BPF_XADD ('lock +='): seq_cst would make
        # LLVM emit a fetch-add whose result we never use.
        self.b.atomic_rmw("add", p, value, "monotonic")

    # -------------------------------------------------------------- control flow
    def if_then(self, cond: ir.Value, name: str = "then"):  # type: ignore[no-untyped-def]
        return self.b.if_then(cond if cond.type == I1 else self.b.icmp_unsigned("!=", cond, self.const(0)))

    def truth(self, v: ir.Value) -> ir.Value:
        if v.type == I1:
            return v
        if isinstance(v.type, ir.PointerType):
            v = self.b.ptrtoint(v, I64)
        return self.b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))
