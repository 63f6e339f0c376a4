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
  object needs no map relocations;
* constants a helper reads through a pointer (a key-less map's zero key, an
  initial value) live in ``.rodata`` and the lost-event and map-full
  counters in a ``.bss`` section: the loader turns each into an array map
  and the ``ld_imm64`` into a BPF_PSEUDO_MAP_VALUE reference, one
  instruction where a stack copy or a helper lookup takes several.
"""

from __future__ import annotations

import zlib

from typing import Callable

from llvmlite import ir
from llvmlite.ir.values import ArgumentAttributes

from ...records import dataclass
from ...semantic import types as T
from ..layout import COUNTERS_SECTION, counter_symbol

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
H_GET_STACK, H_FOR_EACH_MAP_ELEM, H_GET_FUNC_IP, H_LOOP, H_MAP_LOOKUP_PERCPU_ELEM = 67, 164, 173, 181, 195

# The original probe_read helpers pick user or kernel memory by the address
# at run time (x86_64 has non-overlapping address spaces): used when the
# address space of a pointer is not known.
H_PROBE_READ, H_PROBE_READ_STR = 4, 45


def read_helper(user: bool | None) -> int:
    return H_PROBE_READ if user is None else (H_PROBE_READ_USER if user else H_PROBE_READ_KERNEL)


def read_str_helper(user: bool | None) -> int:
    return H_PROBE_READ_STR if user is None else (H_PROBE_READ_USER_STR if user else H_PROBE_READ_KERNEL_STR)


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


def mem_size(v: Val) -> int:
    """Bytes of an in-memory value as it is laid out (tuples hold every
    integer at 8 bytes, whatever the declared element type)."""
    from ..layout import storage_type, type_size
    return type_size(storage_type(v.ty))


def counter_globals(module: ir.Module, slots: int) -> list[ir.GlobalVariable]:
    """The module's u64 counters in layout.COUNTERS_SECTION, all created at
    the first use (in slot order) with external linkage: none is dropped
    when unused, and the runtime finds each by its symbol."""
    try:
        module.get_global(counter_symbol(0))
    except KeyError:
        for slot in range(slots):
            gv = ir.GlobalVariable(module, I64, name=counter_symbol(slot))
            gv.initializer = ir.Constant(I64, 0)
            gv.section = COUNTERS_SECTION
            gv.align = 8
    return [module.get_global(counter_symbol(slot)) for slot in range(slots)]


class ProgramGen:
    """Builds one BPF program function."""

    def __init__(self, module: ir.Module, name: str, section: str, map_fds: dict[str, int],
                 counters: int) -> None:
        self.module = module
        # How many u64 counters the .bss section holds (layout.COUNTERS_SECTION).
        self.counters = counters
        self._opaque = 0     # llvm.bpf.passthrough sequence numbers
        self._loops = 0      # retry loops kept by keep_loop()
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
        self._persistent = 0
        self._arena: ir.Value | None = None
        self._arena_len: ir.Constant | None = None
        self._arena_top = 0
        self._arena_peak = 0
        self._marks: list[int] = []
        self._align: dict[int, tuple[int, ir.Value]] = {}
        self.variables: dict[str, tuple[ir.Value, T.Type]] = {}
        # The statement being lowered (set by the Lowerer): where a stack
        # overflow found deep inside an expression is reported.
        self.current_span: object = None
        self.loop_stack: list[tuple[ir.Block, ir.Block]] = []  # (continue target, break target)

    # -------------------------------------------------------------- finishing
    def finish(self) -> None:
        if not self.b.block.is_terminated:
            self.b.ret(ir.Constant(I64, 0))
        if self._arena_len is not None:
            self._arena_len.constant = max(8, self._arena_peak)
        self._entry_builder.branch(self.fn.blocks[1])

    # -------------------------------------------------------------- memory
    # Scratch memory (keys, values, strings, tuples... of one statement) is
    # bump-allocated from one per-program arena: a statement's scratch is
    # released when it ends (nested statements allocate above their
    # parent's), so the frame holds the deepest statement's needs, not the
    # sum over the probe.  The arena is one 8-aligned i8 alloca in the entry
    # block whose length is fixed in finish().  Variables (and whatever is
    # allocated outside any statement) get allocas of their own, zeroed in
    # the entry block so that every path reads them initialised.
    def begin_scope(self) -> None:
        self._marks.append(self._arena_top)

    def end_scope(self) -> None:
        self._arena_top = self._marks.pop()

    @property
    def stack_used(self) -> int:
        return self._persistent + self._arena_peak

    def _check_budget(self, span: object) -> None:
        if self.stack_used > STACK_BUDGET:
            raise CodegenError(f"this probe needs more than {STACK_BUDGET} bytes of BPF stack",
                               span or self.current_span,
                               ["BPF programs have a 512-byte stack: use fewer or shorter strings "
                                "(config = { max_strlen = 32 }) or split the work across probes"])

    def _scratch(self, size: int, span: object) -> ir.Value:
        """``size`` bytes of the arena for the current statement, as an i8*
        computed in the entry block (usable from every block)."""
        off = self._arena_top
        self._arena_top += size
        if self._arena_top > self._arena_peak:
            self._arena_peak = self._arena_top
            self._check_budget(span)
        with self._entry_builder.goto_entry_block():
            if self._arena is None:
                self._arena_len = ir.Constant(I64, 8)
                self._arena = self._entry_builder.alloca(I8, size=self._arena_len, name="scratch")
                self._arena.align = 8
            return self.mark_aligned(self._entry_builder.gep(self._arena, [ir.Constant(I64, off)]))

    def alloca(self, size: int, name: str = "", span: object = None, persistent: bool = False) -> ir.Value:
        """A buffer of ``size`` bytes (rounded up to 8) as an i8*: scratch
        for the current statement, or (``persistent``, or outside any
        statement) a zeroed alloca of its own."""
        size = max(8, (size + 7) // 8 * 8)
        if not persistent and self._marks:
            return self._scratch(size, span)
        self._persistent += size
        self._check_budget(span)
        with self._entry_builder.goto_entry_block():
            arr = self._entry_builder.alloca(ir.ArrayType(I64, size // 8), name=name)
            ptr = self._entry_builder.bitcast(arr, I8P)
            if persistent:
                fn = self.module.declare_intrinsic("llvm.memset", [I8P, I64])
                self._entry_builder.call(fn, [ptr, ir.Constant(I8, 0), ir.Constant(I64, size), ir.Constant(I1, 0)])
        return self.mark_aligned(ptr)

    def alloca_i64(self, name: str = "", persistent: bool = False) -> ir.Value:
        """An i64 slot of its own (zeroed in the entry block if
        ``persistent``).  A scratch slot is only ever loaded and stored, so
        LLVM keeps it in a register (mem2reg) and it costs no stack: it is
        not counted.  In the arena, whose address goes to helpers, each
        access would stay a real stack load or store."""
        if not persistent and self._marks:
            with self._entry_builder.goto_entry_block():
                return self._entry_builder.alloca(I64, name=name)
        self._persistent += 8
        self._check_budget(None)
        with self._entry_builder.goto_entry_block():
            slot = self._entry_builder.alloca(I64, name=name)
            if persistent:
                self._entry_builder.store(ir.Constant(I64, 0), slot)
        return slot

    # Known alignment of pointers (stack buffers, map values and ring-buffer
    # records are 8-aligned): memset/memcpy carry it, so that LLVM copies
    # in 8-byte words.  Without it a copy into a ring-buffer record is done
    # byte by byte, and the scheduled loads spill past the 512-byte stack.
    def mark_aligned(self, ptr: ir.Value, align: int = 8) -> ir.Value:
        self._align[id(ptr)] = (align, ptr)
        return ptr

    def alignment(self, ptr: ir.Value) -> int:
        hit = self._align.get(id(ptr))
        return hit[0] if hit is not None and hit[1] is ptr else 1

    def _mem_call(self, fn: ir.Function, args: list[ir.Value], ptrs: tuple[int, ...]) -> None:
        call = self.b.call(fn, args)
        for i in ptrs:
            a = self.alignment(args[i])
            if a > 1:
                attrs = ArgumentAttributes()
                attrs.align = a
                call.arg_attributes[i] = attrs

    def memset(self, ptr: ir.Value, size: int, value: int = 0) -> None:
        fn = self.module.declare_intrinsic("llvm.memset", [I8P, I64])
        self._mem_call(fn, [ptr, ir.Constant(I8, value), ir.Constant(I64, size), ir.Constant(I1, 0)], (0,))

    def memcpy(self, dst: ir.Value, src: ir.Value, size: int) -> None:
        fn = self.module.declare_intrinsic("llvm.memcpy", [I8P, I8P, I64])
        self._mem_call(fn, [dst, src, ir.Constant(I64, size), ir.Constant(I1, 0)], (0, 1))

    def zero_gaps(self, buf: ir.Value, size: int, written: list[tuple[int, int]]) -> None:
        """Zero the bytes of ``buf[0:size]`` outside the ``(offset, length)``
        ranges already written: map keys and records must hold no stale
        stack bytes (a hash keys on every byte; user space reads every
        byte), and a range a helper wrote needs no zeroing first."""
        covered = sorted((o, o + n) for o, n in written if n > 0)
        pos = 0
        for start, end in covered + [(size, size)]:
            if start > pos:
                self.memset(self.gep(buf, pos), min(start, size) - pos)
            pos = max(pos, end)
            if pos >= size:
                break

    def gep(self, ptr: ir.Value, offset: int | ir.Value) -> ir.Value:
        off = ir.Constant(I64, offset) if isinstance(offset, int) else offset
        out = self.b.gep(ptr, [off])
        base = self.alignment(ptr)
        if base > 1 and isinstance(offset, int):
            a = base
            while offset % a:
                a //= 2
            if a > 1:
                self.mark_aligned(out, a)
        return out

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

    def map_lookup(self, bpf_name: str, key: ir.Value, once: bool = False) -> ir.Value:
        """The value's address or NULL.  ``once``: the call is marked
        convergent, which LLVM may not duplicate into several control-flow
        paths: loop rotation would otherwise copy a retry loop's lookup in
        front of the loop (~6 more instructions)."""
        call = self.helper(H_MAP_LOOKUP, [self.map_ptr(bpf_name), key], ret=I8P)
        if once:
            call.attributes.add("convergent")
        return self.mark_aligned(call)

    def map_update(self, bpf_name: str, key: ir.Value, value: ir.Value, flags: int = BPF_ANY) -> ir.Value:
        return self.helper(H_MAP_UPDATE, [self.map_ptr(bpf_name), key, value, self.const(flags)])

    def map_delete(self, bpf_name: str, key: ir.Value) -> ir.Value:
        return self.helper(H_MAP_DELETE, [self.map_ptr(bpf_name), key])

    def callback(self, name: str, build: "Callable[[ir.IRBuilder, ir.Function], None]") -> ir.Value:
        """The address (an i8*) of the module's subprogram ``name`` with the
        callback signature of bpf_for_each_map_elem and bpf_loop
        (``i64 (i8*, i8*, i8*, i8*)``; bpf_loop passes (index, ctx) in the
        same registers), built by ``build(builder, fn)`` on first use.  It
        lives in ``.text``, never inlined: the loader appends ``.text`` to
        each program that takes its address (elf.link_program)."""
        try:
            fn = self.module.get_global(name)
        except KeyError:
            fn = ir.Function(self.module, ir.FunctionType(I64, [I8P, I8P, I8P, I8P]), name=name)
            fn.linkage = "internal"
            fn.section = ".text"
            fn.attributes.add("nounwind")
            fn.attributes.add("noinline")
            build(ir.IRBuilder(fn.append_basic_block("entry")), fn)
        return self.b.bitcast(fn, I8P)

    # -------------------------------------------------------------- globals
    def rodata(self, data: bytes) -> ir.Value:
        """An 8-aligned i8* to ``data`` in .rodata (one global per distinct
        content, shared by the module's programs).  The loader freezes the
        section's map with BPF_F_RDONLY_PROG, and a helper may read a key or
        a value from it: one ld_imm64 instead of stores and a stack address."""
        data = data + bytes(-len(data) % 8)
        name = "pt_ro_" + (data.hex() if len(data) <= 32 else f"{len(data)}_{zlib.crc32(data):08x}")
        try:
            gv = self.module.get_global(name)
        except KeyError:
            aty = ir.ArrayType(I8, len(data))
            gv = ir.GlobalVariable(self.module, aty, name=name)
            gv.initializer = ir.Constant(aty, bytearray(data))
            gv.global_constant = True
            gv.linkage = "internal"
            gv.section = ".rodata"
            gv.align = 8
        return self.mark_aligned(self.b.bitcast(gv, I8P))

    def zeros(self, size: int) -> ir.Value:
        return self.rodata(bytes(max(8, size)))

    def counter_ptr(self, slot: int) -> ir.Value:
        """An i8* to u64 counter ``slot`` (layout.LOST_SLOT or a map's
        mapfull_slot), to be NULL-checked by the caller: a global in the
        .bss counters section (LLVM folds the check away; one global per
        counter, as the BPF back end does not fold a constant offset into
        the ld_imm64 of a global: an array would cost an add per use; a
        per-CPU count map would cost a helper call and ~12 instructions)."""
        return self.mark_aligned(self.b.bitcast(counter_globals(self.module, self.counters)[slot], I8P))

    def count(self, slot: int) -> None:
        """counters[slot] += 1 (lost events, dropped map updates)."""
        p = self.counter_ptr(slot)
        with self.b.if_then(self.truth(p)):
            self.atomic_add(p, self.const(1))

    def probe_read(self, dst: ir.Value, size: int, src: ir.Value, user: bool | None = False) -> None:
        """Copy ``size`` bytes; ``user`` None: whichever space the address is
        in.  ``dst`` needs no zeroing first: the probe_read helpers zero it
        when the read fails (kernel/trace/bpf_trace.c), and the verifier
        counts it as written (ARG_PTR_TO_UNINIT_MEM)."""
        self.helper(read_helper(user), [dst, ir.Constant(I32, size), self.as_ptr(src)])

    def read_into(self, buf: ir.Value, bufsize: int, size: int, src: ir.Value, user: bool | None = False) -> None:
        """probe_read ``size`` bytes into ``buf`` and zero the rest of its ``bufsize``."""
        self.probe_read(buf, size, src, user)
        self.zero_gaps(buf, bufsize, [(0, size)])

    def probe_read_str(self, dst: ir.Value, size: int, src: ir.Value, user: bool | None = False) -> ir.Value:
        return self.helper(read_str_helper(user), [dst, ir.Constant(I32, size), self.as_ptr(src)])

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
    def opaque_null(self) -> ir.Value:
        """A NULL i8* whose value LLVM's optimiser cannot see, for a phi that
        must stay a register: with a constant incoming value LLVM rewrites a
        phi tested against NULL into a boolean phi, which it then masks
        ('w6 &= 1') before every test.  llvm.bpf.passthrough is the BPF back
        end's own opaque identity; it is removed before instruction
        selection, leaving one 'rX = 0'."""
        name = "llvm.bpf.passthrough.i64.i64"
        try:
            fn = self.module.get_global(name)
        except KeyError:
            fn = ir.Function(self.module, ir.FunctionType(I64, [I32, I64]), name=name)
        self._opaque += 1
        return self.b.inttoptr(self.b.call(fn, [ir.Constant(I32, self._opaque), self.const(0)]), I8P)

    def keep_loop(self, latch: ir.Instruction) -> None:
        """Mark the back edge ``latch`` of a short retry loop so that LLVM
        keeps it a loop: unrolled (its trip count is known) it would hold
        one copy of the body per trip.  The loop ID must name itself
        (LangRef, 'llvm.loop'); each loop gets its own."""
        off = self.module.add_metadata([ir.MetaDataString(self.module, "llvm.loop.unroll.disable")])
        self._loops += 1
        # A placeholder operand unique to this loop (llvmlite returns the
        # same node for the same operands), then the self-reference.
        loop_id = self.module.add_metadata([ir.MetaDataString(self.module, f"{self.fn.name}.loop{self._loops}")])
        loop_id.operands = (loop_id, off)
        latch.set_metadata("llvm.loop", loop_id)

    def if_then(self, cond: ir.Value, name: str = "then"):  # type: ignore[no-untyped-def]
        return self.b.if_then(cond if cond.type == I1 else self.b.icmp_unsigned("!=", cond, self.const(0)))

    def truth(self, v: ir.Value) -> ir.Value:
        if v.type == I1:
            return v
        if isinstance(v.type, ir.PointerType):
            v = self.b.ptrtoint(v, I64)
        return self.b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))
