"""Reading memory in BPF: struct fields, array elements, ``&`` and
bitfields, through the probe_read helpers.

A pointer's address space decides the helper (``_user_space``): user
memory for uprobes/USDT and pointers typed as user, kernel memory for
BTF-typed kernel pointers, and the old address-space-agnostic helper when
nothing says (x86_64's user and kernel halves do not overlap).  Only the
bytes asked for are read: an array member reached through a pointer is
indexed before reading, never copied whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llvmlite import ir

from ...frontend import ast
from ...semantic import types as T
from ..layout import type_size
from .irgen import I64, CodegenError, Val

if TYPE_CHECKING:
    from .context import ProbeContext
    from .irgen import ProgramGen


class MemoryAccess:
    """Memory reads for the Lowerer (a mixin: it uses the Lowerer's
    ``g``, ``pctx``, ``env``, ``options``, ``expr`` and ``value``)."""

    g: "ProgramGen"
    pctx: "ProbeContext"
    env: Any
    options: dict[str, object]

    if TYPE_CHECKING:
        def expr(self, e: ast.Expr) -> Val: ...
        def value(self, e: ast.Expr) -> ir.Value: ...

    def _user_space(self, t: T.Type | None) -> bool | None:
        """Which helpers read memory at an address of type ``t``: True for
        user memory, False for kernel memory, None when the address space
        is not known (a cast, a bare integer in a kernel probe): then the
        original probe_read helpers decide by the address at run time.
        Bare addresses in syscall and uprobe contexts are user memory."""
        if isinstance(t, T.PointerType) and t.addrspace is T.AddrSpace.USER:
            return True
        if isinstance(t, T.PointerType) and t.addrspace is T.AddrSpace.KERNEL:
            return False
        if self.pctx.kind == "syscall" or self.pctx.user or bool(self.options.get("user_pointers")):
            return True
        return None

    def field(self, e: ast.FieldAccess) -> Val:
        g = self.g
        t = e.ty or T.I64
        if isinstance(e.operand, ast.Ident) and e.operand.name == "args":
            return self.pctx.field(g, e.name, t, self.strlen)
        base = self.expr(e.operand)
        bt = base.ty
        struct = bt.pointee if isinstance(bt, T.PointerType) else bt
        if not isinstance(struct, T.StructType):
            raise CodegenError(f"field access on {bt}", e.span)
        if struct.fields is None and self.env is not None:
            struct = self.env.struct(struct.kind, struct.tag) or struct  # type: ignore[attr-defined]
        f = struct.field(e.name)
        if f is None:
            raise CodegenError(f"{struct} has no field {e.name}", e.span)
        if base.reg is not None:
            addr = g.b.add(base.reg, g.const(f.offset))
            return self._read_mem(addr, t, f, user=self._user_space(bt))
        assert base.ptr is not None
        p = g.gep(base.ptr, f.offset)
        if t.is_integer() or isinstance(t, T.PointerType):
            size = f.type.size if f.type.size in (1, 2, 4, 8) else 8
            v = g.load_int(p, 0, size, bool(getattr(t, "signed", False)))
            return Val(t, reg=self._bitfield(v, f))
        return Val(t, ptr=p)

    def address_of(self, e: ast.Expr) -> ir.Value:
        """``&expr`` for a field reached through a pointer (``&$p->f``,
        ``&args.f`` of a tracepoint): the address the field would be read
        from, read nothing.  bpftrace keeps ``&$var`` and ``&@map`` behind
        its unstable_addr setting (0.24-0.25); they are refused here."""
        g = self.g
        if not isinstance(e, ast.FieldAccess):
            raise CodegenError("'&' of a variable or a map is not supported: take the address of a field "
                               "reached through a pointer ('&$p->field', '&args.field')", e.span)
        if isinstance(e.operand, ast.Ident) and e.operand.name == "args":
            return self.pctx.field_address(g, e.name)
        base = self.expr(e.operand)
        bt = base.ty
        struct = bt.pointee if isinstance(bt, T.PointerType) else bt
        if not isinstance(struct, T.StructType) or base.reg is None:
            raise CodegenError("'&' needs a field reached through a pointer", e.span)
        if struct.fields is None and self.env is not None:
            struct = self.env.struct(struct.kind, struct.tag) or struct  # type: ignore[attr-defined]
        f = struct.field(e.name)
        if f is None:
            raise CodegenError(f"{struct} has no field {e.name}", e.span)
        return g.b.add(base.reg, g.const(f.offset))

    def _read_mem(self, addr: ir.Value, t: T.Type, f: T.Field, user: bool | None) -> Val:
        g = self.g
        if t.is_integer() or isinstance(t, T.PointerType):
            size = f.type.size if f.type.size in (1, 2, 4, 8) else 8
            tmp = g.alloca(8)
            g.probe_read(tmp, size, addr, user)
            v = g.load_int(tmp, 0, size, bool(getattr(t, "signed", False)))
            return Val(t, reg=self._bitfield(v, f))
        size = max(1, f.type.size if not isinstance(t, T.StringType) else min(t.length, f.type.size or t.length))
        buf = g.alloca(max(size, type_size(t)))
        g.read_into(buf, max(size, type_size(t)), size, addr, user)
        return Val(t, ptr=buf)

    def _bitfield(self, v: ir.Value, f: T.Field) -> ir.Value:
        if f.bitfield is None:
            return v
        shift, width = f.bitfield
        v = self.g.b.lshr(v, self.g.const(shift))
        return self.g.b.and_(v, self.g.const((1 << width) - 1))

    def index(self, e: ast.Index) -> Val:
        g = self.g
        t = e.ty or T.I64
        op = e.operand
        if isinstance(op, ast.FieldAccess) and isinstance(op.ty, T.ArrayType) \
                and isinstance(op.operand.ty, T.PointerType):
            # An array member reached through a pointer ($t->signal->rlim[7]):
            # read the one element, not the whole array (which may not even
            # fit the 512-byte stack: mm->saved_auxv is 400 bytes).
            arr = op.ty
            esize = max(1, type_size(arr.element))
            idx = self.value(e.index)
            clamped = g.b.select(g.b.icmp_unsigned("<", idx, g.const(arr.count)), idx, g.const(0))
            addr = g.b.add(self.address_of(op), g.b.mul(clamped, g.const(esize)))
            return self._read_mem(addr, t, T.Field("", arr.element, 0), self._user_space(op.operand.ty))
        base = self.expr(e.operand)
        idx = self.value(e.index)
        bt = base.ty
        if isinstance(bt, T.PointerType) and base.reg is not None:
            size = type_size(bt.pointee) if not isinstance(bt.pointee, T.VoidType) else 1
            addr = g.b.add(base.reg, g.b.mul(idx, g.const(size)))
            return self._read_mem(addr, t, T.Field("", bt.pointee, 0), self._user_space(bt))
        if base.ptr is not None:
            elem = bt.element if isinstance(bt, T.ArrayType) else T.U8
            count = bt.count if isinstance(bt, T.ArrayType) else type_size(bt)
            esize = max(1, type_size(elem))
            # A bounded index keeps the verifier's range tracking simple.
            clamped = g.b.select(g.b.icmp_unsigned("<", idx, g.const(count)), idx, g.const(0))
            p = g.b.gep(base.ptr, [g.b.mul(clamped, g.const(esize))])
            if t.is_integer():
                ity = ir.IntType(8 * min(8, esize))
                raw = g.b.load(g.b.bitcast(p, ity.as_pointer()))
                signed = bool(getattr(elem, "signed", False))
                return Val(t, reg=raw if esize >= 8 else (g.b.sext(raw, I64) if signed else g.b.zext(raw, I64)))
            return Val(t, ptr=p)
        raise CodegenError(f"cannot index {bt}", e.span)
