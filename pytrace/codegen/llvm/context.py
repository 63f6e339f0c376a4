"""How a probe's program reads its context: ``args``, ``argN``, ``retval``.

Each program type hands the program a different context: tracepoints a raw
record (fields at the format file's offsets, read directly: narrow aligned
ctx loads are allowed), raw tracepoints an array of u64 arguments, uprobes and
kprobes ``struct pt_regs``, perf events ``bpf_perf_event_data`` (pt_regs at
offset 0).  Syscall tracepoints attached through the raw ``sys_enter`` /
``sys_exit`` tracepoints read their arguments from the saved user registers.
Iterators get their ``struct bpf_iter__<name>``: ``ctx`` itself, the
iterator's seq_file (where their events go) and the guard that skips the
iterator's final call.
"""

from __future__ import annotations


from typing import Any

from llvmlite import ir

from ...kernel.tracefs import TracepointFormat
from ...records import dataclass
from ...semantic import types as T
from .irgen import I64, I8P, CodegenError, ProgramGen, Val

# Offsets in x86_64 struct pt_regs (arch/x86/include/asm/ptrace.h).
PT_REGS = {"r15": 0, "r14": 8, "r13": 16, "r12": 24, "bp": 32, "bx": 40, "r11": 48, "r10": 56, "r9": 64,
           "r8": 72, "ax": 80, "cx": 88, "dx": 96, "si": 104, "di": 112, "orig_ax": 120, "ip": 128, "cs": 136,
           "flags": 144, "sp": 152, "ss": 160}
CALL_ARGS = ("di", "si", "dx", "cx", "r8", "r9")          # the C calling convention
SYSCALL_ARGS = ("di", "si", "dx", "r10", "r8", "r9")      # the syscall convention (r10, not cx)

# Program types (enum bpf_prog_type).
PROG_KPROBE, PROG_TRACEPOINT, PROG_PERF_EVENT, PROG_RAW_TRACEPOINT = 2, 5, 7, 17
# Helpers only iterator programs may call (kernel 5.8, bpf_iter.c).
H_SEQ_PRINTF, H_SEQ_WRITE = 126, 127


@dataclass
class ProbeContext:
    """The context kind of one program and what it needs to read arguments."""

    kind: str                            # 'tracepoint' | 'syscall' | 'raw' | 'regs' | 'perf' | 'rawtp' | 'iter'
    prog_type: int
    fmt: TracepointFormat | None = None  # tracepoint: the format of the (first) tracepoint
    exit: bool = False                   # syscall: sys_exit (args->ret)
    arg_slots: dict[str, int] | None = None  # syscall: field -> argument index
    user: bool = False                   # uprobes: bare addresses are user memory
    args: T.StructType | None = None     # rawtp/btf: the BTF-typed arguments (8-byte slots)
    # usdt: where each argument is (kernel/usdt.UsdtArg: a constant, a
    # register, or memory at register + offset), and the probe's link-time
    # address, to relocate base-less addresses by the load bias.
    arg_locations: tuple[Any, ...] | None = None
    link_pc: int = 0

    # ------------------------------------------------------------------
    def regs_ptr(self, g: ProgramGen) -> ir.Value:
        if self.kind in ("regs", "perf"):
            return g.ctx  # pt_regs (bpf_perf_event_data starts with it)
        if self.kind == "syscall":
            return g.b.inttoptr(g.load_int(g.ctx, 0), I8P)
        raise CodegenError("registers are not available in this probe type")

    def reg(self, g: ProgramGen, name: str) -> ir.Value:
        off = PT_REGS[name]
        if self.kind in ("regs", "perf"):
            return g.load_int(g.ctx, off)
        # Saved user registers behind a pointer: read them with a helper.
        tmp = g.alloca(8)
        g.probe_read(tmp, 8, g.gep(self.regs_ptr(g), off))
        return g.load_int(tmp, 0)

    def arg(self, g: ProgramGen, n: int) -> ir.Value:
        if self.arg_locations is not None:
            if n >= len(self.arg_locations):
                raise CodegenError(f"this probe has {len(self.arg_locations)} arguments: arg{n} does not exist")
            return self._located_arg(g, self.arg_locations[n])
        if self.kind == "regs":
            if n < len(CALL_ARGS):
                return g.load_int(g.ctx, PT_REGS[CALL_ARGS[n]])
            # Stack arguments: above the return address at sp.
            sp = g.load_int(g.ctx, PT_REGS["sp"])
            tmp = g.alloca(8)
            g.probe_read(tmp, 8, g.b.add(sp, g.const(8 * (n - len(CALL_ARGS) + 1))), user=True)
            return g.load_int(tmp, 0)
        if self.kind in ("rawtp", "btf"):
            return g.load_int(g.ctx, 8 * n)
        raise CodegenError(f"arg{n} is not available in this probe type")

    def _located_arg(self, g: ProgramGen, loc: Any) -> ir.Value:
        """A USDT argument from its operand: ``$42``, ``%edi``,
        ``-20(%rbp)``, ``8(%rax,%rcx,4)``, ``sym(%rip)``, ``sym``; the
        value is cut to its size and sign-extended when signed."""
        if loc.kind == "const":
            return g.const(loc.value)
        if loc.kind == "reg":
            return _extend(g, g.load_int(g.ctx, PT_REGS[loc.reg]), loc.size, loc.signed)
        if loc.reg is None:
            # A link-time address: moved by the load bias, regs->ip minus
            # the probe's link-time address (PIE executables, libraries).
            base = g.b.add(g.b.sub(g.load_int(g.ctx, PT_REGS["ip"]), g.const(self.link_pc)), g.const(loc.offset))
        else:
            base = g.b.add(g.load_int(g.ctx, PT_REGS[loc.reg]), g.const(loc.offset))
        if loc.index is not None:
            base = g.b.add(base, g.b.mul(g.load_int(g.ctx, PT_REGS[loc.index]), g.const(loc.scale)))
        tmp = g.alloca(8)
        g.store_int(tmp, 0, g.const(0))
        g.probe_read(tmp, loc.size if loc.size in (1, 2, 4, 8) else 8, base, user=True)
        return _extend(g, g.load_int(tmp, 0), loc.size, loc.signed)

    def usermode(self, g: ProgramGen) -> ir.Value:
        """1 when the probe interrupted user mode: the privilege level in
        the saved cs (x86_64); tracepoints and BEGIN/END run in the kernel."""
        if self.kind in ("regs", "perf"):
            cs = g.load_int(g.ctx, PT_REGS["cs"])
            return g.b.zext(g.b.icmp_unsigned("==", g.b.and_(cs, g.const(3)), g.const(3)), I64)
        return g.const(0)

    def retval(self, g: ProgramGen) -> ir.Value:
        if self.kind == "regs":
            return g.load_int(g.ctx, PT_REGS["ax"])
        if self.kind == "btf" and self.args is not None:
            # fexit: the return value follows the arguments (kernel/bpf/trampoline.c).
            return g.load_int(g.ctx, 8 * len(self.args.fields or ()))
        raise CodegenError("retval is not available in this probe type")

    # ------------------------------------------------------------------
    def field_address(self, g: ProgramGen, name: str) -> ir.Value:
        """``&args.name``: the field's kernel address (inside the tracepoint's
        record, which is kernel memory the probe_read helpers can read)."""
        if self.kind == "tracepoint":
            assert self.fmt is not None
            f = self.fmt.field(name)
            if f is None:
                raise CodegenError(f"tracepoint field '{name}' not found")
            return g.b.add(g.b.ptrtoint(g.ctx, I64), g.const(f.offset))
        raise CodegenError("'&args.field' needs a tracepoint probe: the fields of other probes are not in memory")

    def field(self, g: ProgramGen, name: str, ty: T.Type, strlen: int) -> Val:
        """Read ``args.name``."""
        if self.kind == "tracepoint":
            assert self.fmt is not None
            f = self.fmt.field(name)
            if f is None:
                raise CodegenError(f"tracepoint field '{name}' not found")
            if f.data_loc:
                loc = g.load_int(g.ctx, f.offset, 4)
                off = g.b.and_(loc, g.const(0xFFFF))
                buf = g.alloca(strlen)
                g.memset(buf, strlen)
                g.probe_read_str(buf, strlen, g.b.add(g.b.ptrtoint(g.ctx, I64), off))
                return Val(T.StringType(strlen), ptr=buf)
            if isinstance(ty, (T.StringType, T.ArrayType)) or (f.array_len is not None):
                size = max(1, f.size)
                buf = g.alloca(size)
                g.read_into(buf, (size + 7) // 8 * 8, size, g.gep(g.ctx, f.offset))
                return Val(ty, ptr=buf)
            size = f.size if f.size in (1, 2, 4, 8) else 8
            signed = bool(getattr(ty, "signed", False))
            return Val(ty, reg=g.load_int(g.ctx, f.offset, size, signed))
        if self.kind == "syscall":
            if self.exit:
                if name != "ret":
                    raise CodegenError(f"sys_exit tracepoints have only 'ret', not '{name}'")
                return Val(ty, reg=g.load_int(g.ctx, 8))
            if name == "__syscall_nr":
                # raw_syscalls:sys_enter(regs, id): the number is the raw
                # tracepoint's second argument (slots hold only the arguments).
                return Val(ty, reg=_narrow(g, g.load_int(g.ctx, 8), ty))
            slots = self.arg_slots or {}
            if name not in slots:
                raise CodegenError(f"syscall field '{name}' not found")
            value = self.reg(g, SYSCALL_ARGS[slots[name]])
            return Val(ty, reg=_narrow(g, value, ty))
        if self.kind in ("rawtp", "btf"):
            # One u64 slot per argument (raw tracepoints, fentry/fexit), typed
            # from BTF: integers narrowed to their C type, pointers as is.
            f = self.args.field(name) if self.args is not None else None
            if f is None:
                raise CodegenError(f"this probe has no argument '{name}'")
            return Val(ty, reg=_narrow(g, g.load_int(g.ctx, f.offset), ty))
        raise CodegenError("'args' is not available in this probe type")

    # ------------------------------------------------------------------ iterators
    def iter_ctx(self, g: ProgramGen) -> ir.Value:
        """``ctx`` of an iterator: the address of its ``struct bpf_iter__<name>``
        as an integer, so that ``ctx->task`` reads the field with
        bpf_probe_read_kernel (privileged programs may pass a context
        address to it) and yields a plain scalar.  A direct load would give
        the verifier's PTR_TO_BTF_ID_OR_NULL, on which no pointer arithmetic
        (``->comm``) is allowed until each load is NULL-checked."""
        if self.kind != "iter":
            raise CodegenError("'ctx' is only available in iter probes")
        return g.b.ptrtoint(g.ctx, I64)

    def iter_seq(self, g: ProgramGen, seq_offset: int) -> ir.Value:
        """``ctx->meta->seq``, the seq_file the iterator's read(2) fills, by
        direct loads: bpf_seq_write/bpf_seq_printf want it as the verifier's
        PTR_TO_BTF_ID of struct seq_file, which only loads from the context
        and from the (trusted) meta pointer give."""
        meta = g.load_int(g.ctx, 0)
        return g.load_int(g.b.inttoptr(meta, I8P), seq_offset)

    def iter_guard(self, g: ProgramGen, offset: int | None) -> None:
        """Return at once from the iterator's final call: after the last
        object the kernel runs the program once more with the object
        pointers NULL (bpf_iter.c: the seq_file's stop() with v == NULL, so
        that a program may print a footer).  A probe body must not see it:
        ``iter:task { @n = count(); }`` would count one task too many and a
        printf would print a line of zeros.  One pointer is tested: the
        verifier refuses arithmetic (``|``) on two of them."""
        if offset is None:
            return
        with g.b.if_then(g.b.icmp_unsigned("==", g.load_int(g.ctx, offset), g.const(0))):
            g.b.ret(g.const(0))


def iter_object_offset(struct: T.StructType) -> int | None:
    """Where ``struct bpf_iter__<name>`` holds its first iterated object,
    NULL only in the final call: its first pointer but ``meta`` (each an
    8-byte slot, as the program's context is the u64 arguments of
    ``bpf_iter_<name>``), ``task`` in task_file and task_vma.  The
    map-element iterators (bpf_map_elem, bpf_sk_storage_map, sockmap) keep
    ``map`` set in the final call, so there it is the next one (key, sk),
    never NULL before; in iter:bpf_map ``map`` is the object."""
    named: list[tuple[str, int, T.Type]] = []
    for f in struct.fields or ():
        if f.name:
            named.append((f.name, f.offset, f.type))
        elif isinstance(f.type, T.StructType) and f.type.fields:
            # __bpf_md_ptr(type, name): an anonymous union of the pointer
            # and a u64 that keeps the slot 8 bytes wide.
            inner = f.type.fields[0]
            if inner.name:
                named.append((inner.name, f.offset + inner.offset, inner.type))
    pointers = [(n, off) for n, off, t in named if isinstance(t, T.PointerType) and n != "meta"]
    if len(pointers) > 1 and pointers[0][0] == "map":
        pointers = pointers[1:]
    return pointers[0][1] if pointers else None


def _extend(g: ProgramGen, v: ir.Value, size: int, signed: bool) -> ir.Value:
    """The low ``size`` bytes of ``v``, zero- or sign-extended to 64 bits."""
    if size >= 8 or size not in (1, 2, 4):
        return v
    small = g.b.trunc(v, ir.IntType(8 * size))
    return g.b.sext(small, I64) if signed else g.b.zext(small, I64)


def _narrow(g: ProgramGen, v: ir.Value, ty: T.Type) -> ir.Value:
    """A register-sized syscall argument cut to its declared C type."""
    if isinstance(ty, T.IntType) and ty.bits < 64:
        small = g.b.trunc(v, ir.IntType(ty.bits))
        return g.b.sext(small, I64) if ty.signed else g.b.zext(small, I64)
    return v
