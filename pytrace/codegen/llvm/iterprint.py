"""Output of iterator programs: their seq_file instead of the ring buffer.

An iterator's program runs inside the read(2) of its iterator file, and
what it writes to the iterator's seq_file (``ctx->meta->seq``) is what that
read(2) returns.  pytrace reads it itself (runtime/iterators.py), so every
event is written there as the same record the ring buffer would carry
(bpf_seq_write) and decoded by the same code: all of printf's conversions,
``-f json``, print(), time(), exit()... work as in other probes.

A pinned iterator (``iter:task:PIN``) is read by whoever opens the pin, with
cat(1): its printf is formatted by the kernel (bpf_seq_printf, as bpftrace
does), which knows a subset of printf's conversions, and the other
asynchronous actions cannot be done at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from ...frontend import ast
from ...semantic import formats
from ...semantic import types as T
from ..layout import SCRATCH_MAP
from .context import H_SEQ_PRINTF, H_SEQ_WRITE, iter_object_offset
from .irgen import I8P, I32, I64, CodegenError, Val

if TYPE_CHECKING:
    from .lower import Lowerer

H_D_PATH = 147  # bpf_d_path (5.10): iterator programs may call it (bpf_d_path_allowed)
# Asynchronous actions that need pytrace to read their record.
PINNED_REFUSED = frozenset({"system", "cat", "time", "exit", "clear", "zero", "print", "join"})
# bpf_seq_printf takes at most MAX_BPRINTF_VARARGS (12) arguments, as u64s.
SEQ_PRINTF_MAX_ARGS = 12
# The length modifiers the kernel's bprintf knows are l and ll (64 bits
# here); bpftrace's other 64-bit ones are spelled ll for it.
_WIDE = frozenset({"l", "ll", "j", "z", "t"})
_NARROW_BITS = {"h": 16, "hh": 8}
_KERNEL_CONVERSIONS = frozenset({"d", "i", "u", "x", "X", "c", "s"})


def prologue(lw: "Lowerer") -> None:
    """Set up an iterator's program: its context struct (from the probe's
    name, ``iter:<name>[:<pin>]``, see providers/iter.py), where its
    seq_file is, whether it is pinned, and the guard that skips the
    iterator's final call (ProbeContext.iter_guard)."""
    assert isinstance(lw.probe_index, int)
    target = lw.layout.probe_names[lw.probe_index]
    parts = target.split(":", 2)
    name = parts[1]
    lw.iter_pinned = len(parts) == 3
    lookup = getattr(lw.env, "struct", None)
    struct = lookup("struct", f"bpf_iter__{name}") if lookup is not None else None
    meta = lookup("struct", "bpf_iter_meta") if lookup is not None else None
    seq = meta.field("seq") if meta is not None else None
    if struct is None or seq is None:
        raise CodegenError(f"{target}: the kernel's BTF has no struct bpf_iter__{name} or bpf_iter_meta")
    lw.iter_seq_offset = seq.offset
    lw.pctx.iter_guard(lw.g, iter_object_offset(struct))


def record(lw: "Lowerer", size: int) -> ir.Value:
    """Memory for one record: the per-CPU scratch buffer (a record can be
    larger than the 512-byte stack allows); NULL only if its lookup fails."""
    g = lw.g
    lw.layout.scratch_size = max(lw.layout.scratch_size, size)
    return g.map_lookup(SCRATCH_MAP, g.zeros(4))


def send(lw: "Lowerer", rec: ir.Value, size: int) -> None:
    """Append the record to the iterator's seq_file (bpf_seq_write).

    Not the ring buffer: the program runs inside pytrace's own read(2),
    which stops when the seq_file's buffer is full, so the output is paced
    by the reader and keeps its order with nothing lost however many
    objects there are (a ring buffer drained after each read(2) would
    overflow on a large iteration).  A write that does not fit fails, and
    the kernel then runs the program again for the same object in the next
    read(2) (bpf_seq_read rolls that object's output back), so a failure
    loses nothing and is not counted."""
    g = lw.g
    seq = lw.pctx.iter_seq(g, lw.iter_seq_offset)
    g.helper(H_SEQ_WRITE, [g.b.inttoptr(seq, I8P), rec, ir.Constant(I32, size)])


def refuse_in_pinned(name: str, call: ast.Call) -> None:
    if name in PINNED_REFUSED:
        raise CodegenError(f"{name}() cannot run in a pinned iterator: cat(1) reads it, not pytrace, "
                           "and only printf() writes text there", call.span,
                           ["drop the pin to run the iterator from pytrace"])


def seq_printf(lw: "Lowerer", call: ast.Call) -> None:
    """printf in a pinned iterator: bpf_seq_printf with the format rewritten
    for the kernel's bprintf (kernel/bpf/helpers.c bpf_bprintf_prepare),
    which prints what bpftrace 0.17's printf prints for the conversions both
    know: d i u x X c s with the flags ``-`` and ``0`` and a width.  Integers
    keep 0.17's C semantics (no modifier: a 32-bit int, as the kernel's
    %d; h and hh are cut here); the literal text is what 0.17 prints
    (formats.parse_format resolves its ``%%`` quirks)."""
    g = lw.g
    fmt_node = call.args[0]
    assert isinstance(fmt_node, ast.String)
    segments = formats.parse_format(fmt_node.value).segments
    args = list(call.args[1:])
    pieces: list[str] = []
    words: list[ir.Value] = []
    for seg in segments:
        if isinstance(seg, formats.Literal):
            pieces.append(seg.text.replace("%", "%%"))
            continue
        arg = args.pop(0) if args else None
        if arg is None:
            raise CodegenError("printf(): fewer arguments than conversions", fmt_node.span)
        if seg.swallowed and seg.conv not in formats.BUFFER_CONVERSIONS:
            # The '%' was the second half of a '%%' for 0.17's snprintf: it
            # prints the rest of the specifier as text and not the argument.
            pieces.append(seg.text[1:].replace("%", "%%"))
            continue
        spec, word = _conversion(lw, seg, arg, fmt_node)
        pieces.append(spec)
        words.append(word)
    if len(words) > SEQ_PRINTF_MAX_ARGS:
        raise CodegenError(f"a pinned iterator's printf() takes at most {SEQ_PRINTF_MAX_ARGS} arguments "
                           "(the kernel's bpf_seq_printf)", call.span)
    text = "".join(pieces).encode("utf-8", "surrogateescape") + b"\0"
    data = g.alloca(8 * max(1, len(words)))
    for i, w in enumerate(words):
        g.store_int(data, 8 * i, w)
    seq = lw.pctx.iter_seq(g, lw.iter_seq_offset)
    g.helper(H_SEQ_PRINTF, [g.b.inttoptr(seq, I8P), g.rodata(text), ir.Constant(I32, len(text)),
                            data, ir.Constant(I32, 8 * len(words))])


def _conversion(lw: "Lowerer", conv: formats.Conversion, arg: ast.Expr, where: ast.String) -> tuple[str, ir.Value]:
    """The kernel's spelling of one conversion and its u64 argument."""
    g = lw.g
    head = "%" + conv.flags + (str(conv.width) if conv.width is not None else "")
    if conv.precision is not None or conv.conv not in _KERNEL_CONVERSIONS:
        raise CodegenError(f"'{conv.text}' cannot be printed by a pinned iterator: the kernel's "
                           "bpf_seq_printf knows %d %i %u %x %X %c %s (with - 0 and a width) and no precision",
                           where.span)
    t = arg.ty or T.I64
    if conv.conv == "s":
        if not isinstance(t, T.StringType):
            raise CodegenError(f"'{conv.text}' of {t} cannot be printed by a pinned iterator: its text is made "
                               "in user space", arg.span)
        v = lw.expr(arg)
        assert v.ptr is not None
        # The kernel reads up to a NUL: give it one after the string's size.
        buf = g.alloca(t.length + 1)
        g.memcpy(buf, v.ptr, t.length)
        g.store_int(buf, t.length, g.const(0), 1)
        return head + "s", g.b.ptrtoint(buf, I64)
    if not (t.is_integer() or isinstance(t, (T.PointerType, T.BoolType))):
        raise CodegenError(f"'{conv.text}' of {t} cannot be printed by a pinned iterator: its text is made "
                           "in user space", arg.span)
    value = lw.value(arg)
    if conv.conv == "c":
        return head + "c", value
    bits = _NARROW_BITS.get(conv.length)
    if bits is not None:
        small = g.b.trunc(value, ir.IntType(bits))
        value = g.b.sext(small, I64) if conv.conv in "di" else g.b.zext(small, I64)
    return head + ("ll" if conv.length in _WIDE else "") + conv.conv, value


def path(lw: "Lowerer", call: ast.Call) -> Val:
    """path(&ctx->OBJ->member...) in an iterator: bpf_d_path on the member
    (a struct path) of one of the iterator's objects (``ctx->file->f_path``).

    bpf_d_path takes a pointer the verifier knows to be a struct path: a
    field of an object loaded from the context (PTR_TO_BTF_ID, after its
    NULL check), not an address read with a helper as other field chains
    are.  So the argument must be that shape; the final call, where the
    object is NULL, never gets here (iter_guard), but a NULL object in
    another slot yields an empty string."""
    g = lw.g
    arg = call.args[0]
    chain = arg.operand if isinstance(arg, ast.Unary) and arg.op == "&" else None
    members: list[str] = []
    while isinstance(chain, ast.FieldAccess) and not (isinstance(chain.operand, ast.Ident)
                                                      and chain.operand.name == "ctx"):
        members.append(chain.name)
        chain = chain.operand
    if not (isinstance(chain, ast.FieldAccess) and members):
        raise CodegenError("path() in an iter probe takes the address of a struct path inside an object of "
                           "ctx, e.g. path(&ctx->file->f_path)", arg.span)
    lookup = getattr(lw.env, "struct", None)
    slot_t = chain.ty
    struct = slot_t.pointee if isinstance(slot_t, T.PointerType) else None
    offset = 0
    for name in reversed(members):
        if isinstance(struct, T.StructType) and struct.fields is None and lookup is not None:
            struct = lookup(struct.kind, struct.tag) or struct
        f = struct.field(name) if isinstance(struct, T.StructType) else None
        if f is None:
            raise CodegenError(f"path(): no member '{name}' here", arg.span)
        offset += f.offset
        struct = f.type
    if not (isinstance(struct, T.StructType) and struct.tag == "path"):
        raise CodegenError(f"path() needs a struct path, not {struct}", arg.span)
    ctx_struct = chain.operand.ty.pointee if isinstance(chain.operand.ty, T.PointerType) else None
    slot = ctx_struct.field(chain.name) if isinstance(ctx_struct, T.StructType) else None
    if slot is None:
        raise CodegenError(f"ctx has no field '{chain.name}'", chain.span)
    size = lw.strlen
    buf = g.alloca(size)
    g.memset(buf, size)
    obj = g.load_int(g.ctx, slot.offset)   # direct: the verifier's PTR_TO_BTF_ID_OR_NULL
    with g.b.if_then(g.b.icmp_unsigned("!=", obj, g.const(0))):
        # The offset is added after the NULL check, on the checked register.
        g.helper(H_D_PATH, [g.b.inttoptr(g.b.add(obj, g.const(offset)), I8P), buf, ir.Constant(I32, size)])
    return Val(T.StringType(size), ptr=buf)
