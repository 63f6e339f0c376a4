"""Lowers a checked probe body (statements and expressions) to LLVM IR.

Integers live in 64-bit registers (the checker's types say how to narrow,
extend and print them); strings, tuples, buffers and stacks live in stack
buffers and are passed around as pointers.  Builtin calls go to ``calls``,
map operations and aggregations to ``mapops``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from ...frontend import ast
from ...semantic import types as T
from ..layout import Layout, storage_type, type_size
from . import debuginfo, iterprint
from .context import ProbeContext
from .memory import MemoryAccess
from .irgen import I1, I8P, I64, CodegenError, ProgramGen, Val, mem_size

if TYPE_CHECKING:
    from ...builtins.registry import Registry


class Lowerer(MemoryAccess):
    """Lowers one probe body into one program."""

    def __init__(self, g: ProgramGen, ctx: ProbeContext, layout: Layout, registry: "Registry",
                 probe_index: int | ir.Value, constants: dict[str, int], env: object, options: dict[str, object],
                 events: dict[int, object]) -> None:
        self.g = g
        self.pctx = ctx
        self.layout = layout
        self.registry = registry
        self.probe_index = probe_index
        self.constants = constants
        self.env = env
        self.options = options
        self.strlen = layout.strlen
        # Event layouts by call node, shared by every program of the module so
        # that a body lowered for several attach groups uses one event id.
        self.layout_events = events
        self.new_event = False
        self.binaries: tuple[str, ...] = ()  # uprobe/usdt: the binaries uaddr() looks symbols up in
        self.var_widest: dict[str, T.StringType] = {}  # size_variables()
        # Iterators: where ctx->meta->seq is and whether the iterator is
        # pinned (iterprint.py); their final call is skipped before all else.
        self.iter_seq_offset = 0
        self.iter_pinned = False
        self._comm_padded: bool | None = None
        if ctx.kind == "iter":
            iterprint.prologue(self)

    def comm_into(self, ptr: ir.Value) -> None:
        """bpf_get_current_comm into 16 bytes at ``ptr``, every byte set.
        Linux 6.1's helper copies with strscpy and does not pad (a map keyed
        on comm got one entry per event there: stale stack after the NUL);
        later kernels pad.  Which one this is was found by running the helper
        (kernel/features.py comm_is_padded); zeroing is added only if needed."""
        from .irgen import H_GET_CURRENT_COMM, I32
        if self._comm_padded is None:
            from ...kernel.features import comm_is_padded
            self._comm_padded = comm_is_padded()
        if not self._comm_padded:
            self.g.memset(ptr, 16)
        self.g.helper(H_GET_CURRENT_COMM, [ptr, ir.Constant(I32, 16)])

    def const_of(self, e: ast.Expr) -> int:
        if isinstance(e, ast.Integer):
            return e.value
        if isinstance(e, ast.Ident) and e.name in self.constants:
            return self.constants[e.name]
        raise CodegenError("a constant is needed here", e.span)

    def layout_stack_map(self, t: T.Type) -> str:
        assert isinstance(t, T.StackType)
        name = "pt_ustack" if t.user else "pt_kstack"
        self.layout.stack_maps[name] = t.limit
        return name

    # -------------------------------------------------------------- statements
    def block(self, b: ast.Block) -> None:
        for s in b.stmts:
            if self.g.b.block.is_terminated:
                return
            self.stmt(s)

    def stmt(self, s: ast.Stmt) -> None:
        self.g.begin_scope()
        outer, self.g.current_span = self.g.current_span, s.span
        try:
            with debuginfo.at(self.g, s.span):  # the statement's source line, when generating debug info
                self._stmt(s)
        finally:
            self.g.current_span = outer
            self.g.end_scope()

    def predicate(self, e: ast.Expr) -> ir.Value:
        """The probe's predicate as an i1 (its scratch is reused by the body)."""
        self.g.begin_scope()
        try:
            return self.g.truth(self.value(e))
        finally:
            self.g.end_scope()

    def _stmt(self, s: ast.Stmt) -> None:
        from . import mapops
        g = self.g
        if isinstance(s, ast.ExprStmt):
            self.expr(s.expr)
        elif isinstance(s, ast.Assign):
            if isinstance(s.target, ast.Map):
                mapops.assign(self, s)
            else:
                self.assign_var(s)
        elif isinstance(s, ast.Let):
            t = s.var.ty or T.I64
            slot = self._var_slot(s.var.name, t)
            if s.value is not None:
                self._store_var(slot, t, self.expr(s.value))
        elif isinstance(s, ast.If):
            cond = g.truth(self.value(s.cond))
            if s.orelse is None:
                with g.b.if_then(cond):
                    self.block(s.then)
            else:
                with g.b.if_else(cond) as (then, other):
                    with then:
                        self.block(s.then)
                    with other:
                        self.block(s.orelse)
        elif isinstance(s, ast.Unroll):
            n = self._const(s.count)
            for _ in range(n):
                self.block(s.body)
        elif isinstance(s, ast.While):
            self._loop(lambda: g.truth(self.value(s.cond)), s.body, None)
        elif isinstance(s, ast.ForRange):
            var = self._var_slot(s.var.name, T.I64)
            start = self.value(s.start)
            end = self.value(s.end)
            g.b.store(start, var[0])
            self._loop(lambda: g.b.icmp_signed("<", g.b.load(var[0]), end), s.body,
                       lambda: g.b.store(g.b.add(g.b.load(var[0]), g.const(1)), var[0]))
        elif isinstance(s, ast.ForMap):
            raise CodegenError("for loops over maps are not supported by the code generator yet", s.span,
                               ["iterate in user space: print(@map)"])
        elif isinstance(s, ast.Break):
            g.b.branch(self.g.loop_stack[-1][1])
        elif isinstance(s, ast.Continue):
            g.b.branch(self.g.loop_stack[-1][0])
        elif isinstance(s, ast.Return):
            g.b.ret(g.const(0))
        elif isinstance(s, ast.BlockStmt):
            self.block(s.block)
        else:
            raise CodegenError(f"cannot lower {type(s).__name__}", s.span)

    def macro_expansion(self, e: ast.MacroExpansion) -> Val:
        """A macro's statements, then its value (semantic/macros.py)."""
        g = self.g
        for s in e.stmts:
            if g.b.block.is_terminated:
                break
            self.stmt(s)
        if g.b.block.is_terminated:
            # exit() or a loop's break inside the body: what follows is
            # unreachable but still needs a block to be emitted into.
            g.b.position_at_end(g.fn.append_basic_block("macro.dead"))
        if e.result is None:
            return Val(T.VOID, reg=g.const(0))
        return self.expr(e.result)

    def _loop(self, cond, body: ast.Block, step) -> None:  # type: ignore[no-untyped-def]
        g = self.g
        head = g.fn.append_basic_block("loop.head")
        inner = g.fn.append_basic_block("loop.body")
        latch = g.fn.append_basic_block("loop.latch")
        done = g.fn.append_basic_block("loop.done")
        g.b.branch(head)
        g.b.position_at_end(head)
        g.b.cbranch(cond(), inner, done)
        g.b.position_at_end(inner)
        g.loop_stack.append((latch, done))
        self.block(body)
        g.loop_stack.pop()
        if not g.b.block.is_terminated:
            g.b.branch(latch)
        g.b.position_at_end(latch)
        if step is not None:
            step()
        g.b.branch(head)
        g.b.position_at_end(done)

    def _const(self, e: ast.Expr) -> int:
        if isinstance(e, ast.Integer):
            return e.value
        raise CodegenError("a constant is needed here", e.span)

    # -------------------------------------------------------------- variables
    def size_variables(self, probe: ast.Node) -> None:
        """Note, for each string variable, the widest string the probe gives
        it: its slot is sized for that one (bpftrace's), not for the first
        assignment (``$s = "-"; ... $s = "ESTABLISHED"`` kept "ES")."""
        for n in probe.walk():
            if isinstance(n, ast.Variable) and isinstance(n.ty, T.StringType):
                cur = self.var_widest.get(n.name)
                if cur is None or n.ty.size > cur.size:
                    self.var_widest[n.name] = n.ty

    def _var_slot(self, name: str, t: T.Type) -> tuple[ir.Value, T.Type]:
        if name in self.g.variables:
            return self.g.variables[name]
        if isinstance(t, T.StringType) and name in self.var_widest:
            t = self.var_widest[name]
        st = storage_type(t)
        # Zeroed once in the entry block (not here: this may be inside a
        # branch or a loop body).
        if st.is_integer() or isinstance(st, T.PointerType):
            slot = (self.g.alloca_i64(name[1:], persistent=True), st)
        else:
            slot = (self.g.alloca(type_size(st), name[1:], persistent=True), st)
        self.g.variables[name] = slot
        return slot

    def _store_var(self, slot: tuple[ir.Value, T.Type], t: T.Type, v: Val) -> None:
        ptr, st = slot
        if v.reg is not None and ptr.type == I8P:
            # A value lowered to a register whose type is kept in memory (a
            # symbol such as func: 8 bytes).
            self.g.memset(ptr, type_size(st))
            self.g.store_int(ptr, 0, v.reg, min(8, type_size(st)))
        elif v.reg is not None:
            self.g.b.store(v.reg, ptr)
        else:
            size = min(type_size(st), mem_size(v))
            if size < type_size(st):
                self.g.memset(ptr, type_size(st))
            self.g.memcpy(ptr, v.ptr, size)

    def assign_var(self, s: ast.Assign) -> None:
        assert isinstance(s.target, ast.Variable)
        t = s.target.ty or T.I64
        slot = self._var_slot(s.target.name, t)
        if s.op == "=":
            self._store_var(slot, t, self.expr(s.value))
            return
        cur = self.g.b.load(slot[0])
        new = self.arith(s.op[:-1], cur, self.value(s.value), t, s.value.ty or T.I64, s.span)
        self.g.b.store(new, slot[0])

    # -------------------------------------------------------------- expressions
    def value(self, e: ast.Expr) -> ir.Value:
        """An expression that must be a register value (an integer)."""
        v = self.expr(e)
        if v.reg is None:
            raise CodegenError(f"expected an integer, got {v.ty}", e.span)
        return v.reg

    def expr(self, e: ast.Expr) -> Val:
        from . import calls, mapops
        g = self.g
        t = e.ty or T.I64
        if isinstance(e, ast.Integer):
            return Val(t, reg=g.const(e.value))
        if isinstance(e, ast.Bool):
            return Val(t, reg=g.const(int(e.value)))
        if isinstance(e, ast.String):
            return self.string_literal(e.value, t)
        if isinstance(e, ast.Variable):
            ptr, st = self.g.variables.get(e.name) or self._var_slot(e.name, t)
            if st.is_integer() or isinstance(st, T.PointerType):
                return Val(t, reg=g.b.load(ptr))
            return Val(t, ptr=ptr)
        if isinstance(e, ast.Positional):
            params = self.options.get("params", [])
            assert isinstance(params, list)
            text = params[e.index - 1] if 0 < e.index <= len(params) else ""
            if isinstance(t, T.StringType):
                return self.string_literal(text, t)
            try:
                return Val(t, reg=g.const(int(text, 0)))
            except ValueError:
                return Val(t, reg=g.const(0))
        if isinstance(e, ast.ParamCount):
            params = self.options.get("params", [])
            return Val(t, reg=g.const(len(params) if isinstance(params, list) else 0))
        if isinstance(e, ast.Map):
            return mapops.read(self, e)
        if isinstance(e, ast.Ident):
            if e.name in self.constants:
                return Val(t, reg=g.const(self.constants[e.name]))
            if self.registry.get(e.name) is None and self.env is not None:
                # A kernel enum constant from BTF (TCP_CLOSE), as the checker found it.
                value = self.env.constant(e.name)  # type: ignore[attr-defined]
                if value is not None:
                    return Val(t, reg=g.const(value))
            return calls.builtin_variable(self, e)
        if isinstance(e, ast.Call):
            return calls.call(self, e)
        if isinstance(e, ast.MacroExpansion):
            return self.macro_expansion(e)
        if isinstance(e, ast.Binary):
            return self.binary(e)
        if isinstance(e, ast.Unary):
            return self.unary(e)
        if isinstance(e, ast.IncDec):
            return self.incdec(e)
        if isinstance(e, ast.Ternary):
            return self.ternary(e)
        if isinstance(e, ast.Cast):
            return self.cast(e, t)
        if isinstance(e, ast.FieldAccess):
            return self.field(e)
        if isinstance(e, ast.TupleIndex):
            v = self.expr(e.operand)
            tt = v.ty
            if not isinstance(tt, T.TupleType) or v.ptr is None:
                raise CodegenError("tuple index on a non-tuple", e.span)
            st = storage_type(tt)
            assert isinstance(st, T.TupleType)
            off = st.offsets()[e.index]
            et = st.elements[e.index]
            p = g.gep(v.ptr, off)
            if et.is_integer():
                return Val(t, reg=g.load_int(p, 0, 8))
            return Val(t, ptr=p)
        if isinstance(e, ast.Tuple):
            return self.tuple(e)
        if isinstance(e, ast.Sizeof):
            return Val(t, reg=g.const(self._sizeof(e)))
        if isinstance(e, ast.Offsetof) and e.offset is not None:
            return Val(t, reg=g.const(e.offset))
        if isinstance(e, ast.Index):
            return self.index(e)
        raise CodegenError(f"{type(e).__name__} expressions are not supported by the code generator yet", e.span)

    def cast(self, e: ast.Cast, t: T.Type) -> Val:
        """``(type)expr``: integers and pointers narrowed or widened; an
        integer to an array of bytes of its size and back (bpftrace 0.19:
        ``(uint8[8])n``, ``(uint64)$bytes``), in host (little-endian) order."""
        g = self.g
        v = self.expr(e.operand)
        size = type_size(t)
        if isinstance(t, T.ArrayType) and v.reg is not None and size in (1, 2, 4, 8):
            buf = g.alloca(size)
            g.store_int(buf, 0, v.reg, size)
            return Val(t, ptr=buf)
        if t.is_integer() and v.ptr is not None and isinstance(v.ty, T.ArrayType) \
                and type_size(v.ty) == size and size in (1, 2, 4, 8):
            return Val(t, reg=g.load_int(v.ptr, 0, size, bool(getattr(t, "signed", False))))
        if v.reg is None:
            raise CodegenError(f"cannot cast {v.ty} to {t}", e.span)
        return Val(t, reg=self.narrow(v.reg, t))

    def _sizeof(self, e: ast.Sizeof) -> int:
        target = e.target
        if isinstance(target, ast.Expr) and target.ty is not None:
            return max(target.ty.size, 0)
        if isinstance(target, ast.TypeSpec):
            if target.pointer:
                return 8
            base = target.base
            if base in T.INT_TYPE_NAMES:
                return T.INT_TYPE_NAMES[base].size
            if base.startswith(("struct ", "union ")) and self.env is not None:
                kind, tag = base.split(" ", 1)
                st = self.env.struct(kind, tag)  # type: ignore[attr-defined]
                if st is not None:
                    return st.size
        raise CodegenError("cannot compute this sizeof", e.span)

    def string_literal(self, text: str, t: T.Type) -> Val:
        data = text.encode("utf-8", "surrogateescape")
        size = t.length if isinstance(t, T.StringType) else len(data) + 1
        size = max(size, len(data) + 1)
        buf = self.g.alloca(size)
        self.g.memset(buf, size)
        # 8-byte stores of the literal (no .rodata needed).
        padded = data + b"\0" * (-len(data) % 8)
        for off in range(0, len(padded), 8):
            chunk = int.from_bytes(padded[off:off + 8], "little")
            self.g.store_int(buf, off, self.g.const(chunk), 8)
        return Val(T.StringType(size), ptr=buf)

    def tuple(self, e: ast.Tuple) -> Val:
        t = e.ty
        assert isinstance(t, T.TupleType)
        st = storage_type(t)
        assert isinstance(st, T.TupleType)
        buf = self.g.alloca(st.size)
        self.g.memset(buf, st.size)
        for elem, off, et in zip(e.elements, st.offsets(), st.elements):
            self.store_at(buf, off, et, self.expr(elem))
        return Val(t, ptr=buf)

    def store_expr_at(self, buf: ir.Value, off: int, st: T.Type, e: ast.Expr) -> int:
        """Evaluate ``e`` into ``buf + off`` (laid out as storage type ``st``)
        and return how many bytes from ``off`` on are now initialised.
        Some expressions are written straight into their destination
        instead of through a stack temporary and a copy: 'comm' (by
        bpf_get_current_comm, see comm_into) and str() (by the read
        helper, after zeroing the destination)."""
        if isinstance(e, ast.Ident) and e.name == "comm" and isinstance(st, T.StringType) and st.length >= 16:
            self.comm_into(self.g.gep(buf, off))
            return 16
        if isinstance(e, ast.Call) and e.name == "str" and isinstance(st, T.StringType):
            from .strings import str_into
            written = str_into(self, e, self.g.gep(buf, off), st.length)
            if written:
                return written
        return self.store_at(buf, off, st, self.expr(e))

    def store_at(self, buf: ir.Value, off: int, st: T.Type, v: Val) -> int:
        """Store a value into memory laid out with storage type ``st``;
        returns the bytes written from ``off`` on."""
        if v.reg is not None:
            size = min(8, max(1, type_size(st)))
            self.g.store_int(buf, off, v.reg, size)
            return size
        assert v.ptr is not None
        size = min(type_size(st), mem_size(v))
        self.g.memcpy(self.g.gep(buf, off), v.ptr, size)
        return size

    def narrow(self, v: ir.Value, t: T.Type) -> ir.Value:
        """Truncate and re-extend a 64-bit value to the integer type ``t``."""
        if isinstance(t, T.IntType) and t.bits < 64:
            small = self.g.b.trunc(v, ir.IntType(t.bits))
            return self.g.b.sext(small, I64) if t.signed else self.g.b.zext(small, I64)
        if isinstance(t, T.BoolType):
            return self.g.b.zext(self.g.truth(v), I64)
        return v

    def arith(self, op: str, a: ir.Value, b: ir.Value, lt: T.Type, rt: T.Type, span: object) -> ir.Value:
        g = self.g
        signed = bool(getattr(lt, "signed", False)) and bool(getattr(rt, "signed", False))
        if op in ("+", "-") and isinstance(lt, T.PointerType) and not isinstance(rt, T.PointerType):
            b = g.b.mul(b, g.const(pointee_size(lt)))
        elif op == "+" and isinstance(rt, T.PointerType) and not isinstance(lt, T.PointerType):
            a = g.b.mul(a, g.const(pointee_size(rt)))
        if op == "+":
            return g.b.add(a, b)
        if op == "-":
            return g.b.sub(a, b)
        if op == "*":
            return g.b.mul(a, b)
        if op in ("/", "%"):
            return self.divide(op, a, b, signed)
        if op == "&":
            return g.b.and_(a, b)
        if op == "|":
            return g.b.or_(a, b)
        if op == "^":
            return g.b.xor(a, b)
        if op == "<<":
            return g.b.shl(a, g.b.and_(b, g.const(63)))
        if op == ">>":
            # 0.17 shifts logically whatever the type: (int32)-1 >> 4 is
            # 0x0fffffffffffffff.
            return g.b.lshr(a, g.b.and_(b, g.const(63)))
        raise CodegenError(f"operator '{op}' is not supported", span)

    def divide(self, op: str, a: ir.Value, b: ir.Value, signed: bool) -> ir.Value:
        """Division as bpftrace 0.17 compiles it: always unsigned (0.17 only
        warns about signed operands, so -7 / 2 is (2**64 - 7) / 2), with
        x / 0 == 0 and x % 0 == x instead of LLVM's undefined behaviour.
        ``signed`` is ignored on purpose (cpu v3 has no sdiv anyway)."""
        del signed
        g = self.g
        zero = g.b.icmp_unsigned("==", b, g.const(0))
        safe = g.b.select(zero, g.const(1), b)
        r = g.b.udiv(a, safe) if op == "/" else g.b.urem(a, safe)
        fallback = g.const(0) if op == "/" else a
        return g.b.select(zero, fallback, r)

    def binary(self, e: ast.Binary) -> Val:
        g = self.g
        t = e.ty or T.I64
        if e.op in ("&&", "||"):
            return self.logical(e)
        lt, rt = e.left.ty or T.I64, e.right.ty or T.I64
        if isinstance(lt, T.StringType) and isinstance(rt, T.StringType):
            from .strings import string_equal
            eq = string_equal(self, self.expr(e.left), self.expr(e.right), None)
            res = eq if e.op == "==" else g.b.xor(eq, ir.Constant(I1, 1))
            return Val(t, reg=g.b.zext(res, I64))
        a, b = self.value(e.left), self.value(e.right)
        if e.op in ("==", "!=", "<", ">", "<=", ">="):
            signed = bool(getattr(lt, "signed", False)) and bool(getattr(rt, "signed", False))
            cmp = g.b.icmp_signed(e.op, a, b) if signed else g.b.icmp_unsigned(e.op, a, b)
            return Val(t, reg=g.b.zext(cmp, I64))
        return Val(t, reg=self.arith(e.op, a, b, lt, rt, e.span))

    def logical(self, e: ast.Binary) -> Val:
        g = self.g
        result = g.alloca_i64("logic")
        left = g.truth(self.value(e.left))
        g.b.store(g.b.zext(left, I64), result)
        short = left if e.op == "||" else g.b.xor(left, ir.Constant(I1, 1))
        with g.b.if_then(g.b.xor(short, ir.Constant(I1, 1))):
            right = g.truth(self.value(e.right))
            g.b.store(g.b.zext(right, I64), result)
        return Val(e.ty or T.BOOL, reg=g.b.load(result))

    def unary(self, e: ast.Unary) -> Val:
        g = self.g
        t = e.ty or T.I64
        if e.op == "*":
            v = self.value(e.operand)
            size = t.size if t.is_integer() and t.size in (1, 2, 4, 8) else 8
            tmp = g.alloca(8)
            g.probe_read(tmp, size, v, user=self._user_space(e.operand.ty))
            return Val(t, reg=g.load_int(tmp, 0, size, bool(getattr(t, "signed", False))))
        if e.op == "&":
            return Val(t, reg=self.address_of(e.operand))
        v = self.value(e.operand)
        if e.op == "-":
            return Val(t, reg=g.b.neg(v))
        if e.op == "+":
            return Val(t, reg=v)
        if e.op == "~":
            return Val(t, reg=self.narrow(g.b.not_(v), t))
        if e.op == "!":
            return Val(t, reg=g.b.zext(g.b.icmp_unsigned("==", v, g.const(0)), I64))
        raise CodegenError(f"unary '{e.op}' is not supported by the code generator yet", e.span)

    def incdec(self, e: ast.IncDec) -> Val:
        from . import mapops
        g = self.g
        delta = 1 if e.op == "++" else -1
        if isinstance(e.target, ast.Map):
            return mapops.incdec(self, e, delta)
        assert isinstance(e.target, ast.Variable)
        slot = self._var_slot(e.target.name, e.target.ty or T.I64)
        if isinstance(e.target.ty, T.PointerType):
            delta *= pointee_size(e.target.ty)
        old = g.b.load(slot[0])
        new = g.b.add(old, g.const(delta))
        g.b.store(new, slot[0])
        return Val(e.ty or T.I64, reg=new if e.prefix else old)

    def ternary(self, e: ast.Ternary) -> Val:
        g = self.g
        t = e.ty or T.I64
        cond_v = self.expr(e.cond)
        if t.is_integer() or isinstance(t, T.PointerType):
            out = g.alloca_i64("tern")
            c = g.truth(cond_v.reg) if cond_v.reg is not None else ir.Constant(I1, 1)
            with g.b.if_else(c) as (then, other):
                with then:
                    g.b.store(cond_v.reg if e.then is None else self.value(e.then), out)
                with other:
                    g.b.store(self.value(e.orelse), out)
            return Val(t, reg=g.b.load(out))
        size = type_size(storage_type(t))
        buf = g.alloca(size)
        g.memset(buf, size)
        c = g.truth(cond_v.reg) if cond_v.reg is not None else self._nonempty(cond_v)
        with g.b.if_else(c) as (then, other):
            with then:
                v = cond_v if e.then is None else self.expr(e.then)
                g.memcpy(buf, v.ptr, min(size, mem_size(v)))
            with other:
                v = self.expr(e.orelse)
                g.memcpy(buf, v.ptr, min(size, mem_size(v)))
        return Val(t, ptr=buf)

    def _nonempty(self, v: Val) -> ir.Value:
        assert v.ptr is not None
        return self.g.b.icmp_unsigned("!=", self.g.b.load(v.ptr), ir.Constant(ir.IntType(8), 0))







def as_i8p(g: ProgramGen, v: ir.Value) -> ir.Value:
    return g.b.bitcast(v, I8P)


def pointee_size(t: T.PointerType) -> int:
    """How far ``p + 1`` moves a pointer: bpftrace (0.17) scales pointer
    arithmetic by the pointee's size, as C does (``void *``: one byte)."""
    return max(t.pointee.size, 1)
