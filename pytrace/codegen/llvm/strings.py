"""Strings and buffers in BPF: ``str()``, ``buf()``, comparisons and
``strcontains()``.

Strings are fixed-size, NUL-padded stack buffers: every byte is
initialised (a map key hashes all of them, and the verifier lets root read
uninitialised stack), reads stop at the buffer's size, and comparisons
walk a constant number of bytes so the verifier can bound them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from ...frontend import ast
from ...semantic import types as T
from ..layout import type_size
from .irgen import I1, I8, I32, CodegenError, Val, read_helper, read_str_helper

if TYPE_CHECKING:
    from .lower import Lowerer


def string_of(lw: "Lowerer", e: ast.Call) -> Val:
    t = e.ty if isinstance(e.ty, T.StringType) else T.StringType(lw.strlen)
    buf = lw.g.alloca(t.length)
    _read_str(lw, e, buf, t.length)
    return Val(t, ptr=buf)


def str_into(lw: "Lowerer", e: ast.Call, dest: ir.Value, length: int) -> int:
    """str(...) evaluated straight into ``dest`` (a map key, a record) when
    that is a string of its own length: saves a stack buffer and a copy.
    Returns the bytes written, 0 when the caller must go the long way."""
    t = e.ty if isinstance(e.ty, T.StringType) else T.StringType(lw.strlen)
    if t.length != length:
        return 0
    _read_str(lw, e, dest, length)
    return length


def _read_str(lw: "Lowerer", e: ast.Call, buf: ir.Value, size: int) -> None:
    """Fill ``buf[0:size]``: zeroed first (the read helpers stop at the NUL
    and a key hashes every byte), then the string."""
    g = lw.g
    g.memset(buf, size)
    src = lw.expr(e.args[0])
    if src.ptr is not None:   # already a string (or char array): copy and terminate
        g.memcpy(buf, src.ptr, min(size, type_size(src.ty)))
        g.store_int(buf, size - 1, g.const(0), 1)
        return
    assert src.reg is not None
    if len(e.args) == 2:
        n = lw.value(e.args[1])
        # Read at most n bytes (+ NUL); the size passed to the helper must be
        # bounded, so clamp it into [1, size].
        nn = g.b.add(n, g.const(1))
        nn = g.b.select(g.b.icmp_unsigned(">", nn, g.const(size)), g.const(size), nn)
        nn = g.b.select(g.b.icmp_unsigned("<", nn, g.const(1)), g.const(1), nn)
        hid = read_str_helper(lw._user_space(e.args[0].ty))
        g.helper(hid, [buf, g.b.trunc(nn, I32), g.as_ptr(src.reg)])
        return
    g.probe_read_str(buf, size, src.reg, user=lw._user_space(e.args[0].ty))


def buffer_of(lw: "Lowerer", e: ast.Call) -> Val:
    """buf(src[, len]): a u8 length then up to BufferType.length bytes.  A
    length known only at run time is clamped to the buffer (as 0.17 does
    with its max_strlen-sized buffer) and only that many bytes are read."""
    g = lw.g
    t = e.ty if isinstance(e.ty, T.BufferType) else T.BufferType(lw.strlen)
    n = t.length
    buf = g.alloca(n + 8)
    g.memset(buf, n + 8)
    src = lw.expr(e.args[0])
    if src.ptr is not None:
        g.store_int(buf, 0, g.const(n), 1)
        g.memcpy(g.gep(buf, 1), src.ptr, min(n, type_size(src.ty)))
        return Val(t, ptr=buf)
    assert src.reg is not None
    user = lw._user_space(e.args[0].ty)
    const_len = None
    if len(e.args) == 2:
        try:
            const_len = lw.const_of(e.args[1])
        except CodegenError:
            const_len = None
    if len(e.args) < 2 or const_len is not None:
        g.store_int(buf, 0, g.const(n), 1)
        g.probe_read(g.gep(buf, 1), n, src.reg, user=user)
        return Val(t, ptr=buf)
    want = lw.value(e.args[1])
    # min(len, n) as an unsigned compare (a negative length reads all n),
    # then masked so the verifier sees a bounded size.
    size = g.b.select(g.b.icmp_unsigned(">", want, g.const(n)), g.const(n), want)
    g.store_int(buf, 0, size, 1)
    hid = read_helper(user)
    size32 = g.b.trunc(g.b.and_(size, g.const(_mask_for(n))), I32)
    g.helper(hid, [g.gep(buf, 1), size32, g.as_ptr(src.reg)])
    return Val(t, ptr=buf)


def _mask_for(n: int) -> int:
    """The smallest all-ones mask covering 0..n."""
    return (1 << n.bit_length()) - 1


def string_equal(lw: "Lowerer", a: Val, b: Val, n: int | None) -> ir.Value:
    """Compare two strings up to their NUL (or n bytes), unrolled: loops
    over string bytes are cheap for the verifier only when bounded this way."""
    g = lw.g
    assert a.ptr is not None and b.ptr is not None
    limit = min(type_size(a.ty), type_size(b.ty))
    if n is not None:
        limit = min(limit, n)
    result = g.alloca_i64("streq")
    g.b.store(g.const(1), result)
    done = g.fn.append_basic_block("streq.done")
    for i in range(limit):
        ca = g.b.load(g.gep(a.ptr, i))
        cb = g.b.load(g.gep(b.ptr, i))
        nxt = g.fn.append_basic_block("streq.next")
        differ = g.b.icmp_unsigned("!=", ca, cb)
        with g.b.if_then(differ):
            g.b.store(g.const(0), result)
            g.b.branch(done)
        end = g.b.icmp_unsigned("==", ca, ir.Constant(I8, 0))
        g.b.cbranch(end, done, nxt)
        g.b.position_at_end(nxt)
    g.b.branch(done)
    g.b.position_at_end(done)
    return g.b.icmp_unsigned("!=", g.b.load(result), g.const(0))


def contains_literal(lw: "Lowerer", hay: Val, needle: bytes) -> ir.Value:
    """strcontains(s, "literal"): at each start position compare with the
    literal's bytes (constants), stopping at the haystack's NUL: about
    (len(needle) + 1) comparisons per position instead of a full scan."""
    g = lw.g
    assert hay.ptr is not None
    needle = needle.split(b"\0", 1)[0]
    if not needle:
        return ir.Constant(I1, 1)
    hn = type_size(hay.ty)
    found = g.alloca_i64("found")
    g.b.store(g.const(0), found)
    done = g.fn.append_basic_block("contains.done")
    hit = g.fn.append_basic_block("contains.hit")
    for start in range(hn - len(needle) + 1):
        nxt = g.fn.append_basic_block("contains.next")
        ch0 = g.b.load(g.gep(hay.ptr, start))
        at_end = g.fn.append_basic_block("contains.cmp")
        g.b.cbranch(g.b.icmp_unsigned("==", ch0, ir.Constant(I8, 0)), done, at_end)
        g.b.position_at_end(at_end)
        for j, want in enumerate(needle):
            ch = ch0 if j == 0 else g.b.load(g.gep(hay.ptr, start + j))
            more = hit if j == len(needle) - 1 else g.fn.append_basic_block("contains.more")
            g.b.cbranch(g.b.icmp_unsigned("==", ch, ir.Constant(I8, want)), more, nxt)
            if more is not hit:
                g.b.position_at_end(more)
        g.b.position_at_end(nxt)
    g.b.branch(done)
    g.b.position_at_end(hit)
    g.b.store(g.const(1), found)
    g.b.branch(done)
    g.b.position_at_end(done)
    return g.b.icmp_unsigned("!=", g.b.load(found), g.const(0))


def contains(lw: "Lowerer", hay: Val, needle: Val) -> ir.Value:
    g = lw.g
    assert hay.ptr is not None and needle.ptr is not None
    hn, nn = min(type_size(hay.ty), 64), min(type_size(needle.ty), 32)
    found = g.alloca_i64("found")
    g.b.store(g.const(0), found)
    done = g.fn.append_basic_block("contains.done")
    for start in range(hn):
        nxt = g.fn.append_basic_block("contains.next")
        match = g.fn.append_basic_block("contains.try")
        g.b.branch(match)
        g.b.position_at_end(match)
        for j in range(nn):
            cn = g.b.load(g.gep(needle.ptr, j))
            with g.b.if_then(g.b.icmp_unsigned("==", cn, ir.Constant(I8, 0))):
                g.b.store(g.const(1), found)
                g.b.branch(done)
            if start + j >= hn:
                g.b.branch(nxt)
                break
            ch = g.b.load(g.gep(hay.ptr, start + j))
            with g.b.if_then(g.b.icmp_unsigned("!=", ch, cn)):
                g.b.branch(nxt)
        if not g.b.block.is_terminated:
            g.b.branch(nxt)
        g.b.position_at_end(nxt)
        ch0 = g.b.load(g.gep(hay.ptr, start))
        g.b.cbranch(g.b.icmp_unsigned("==", ch0, ir.Constant(I8, 0)), done, g.fn.append_basic_block("c"))
        g.b.position_at_end(g.fn.blocks[-1])
    g.b.branch(done)
    g.b.position_at_end(done)
    return g.b.icmp_unsigned("!=", g.b.load(found), g.const(0))
