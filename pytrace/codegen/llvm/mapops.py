"""Map operations and aggregations in BPF.

count/sum and integer maps use a plain hash with an atomic add, creating the
entry with BPF_NOEXIST on the first hit (measured at about half the cost of
bpftrace's per-CPU lookup-and-update); min/max/avg/stats use per-CPU values
combined in user space; hist/lhist count per (key, bucket) with bpftrace's
exact bucket functions.  A failed insert that is not a lost race means the
map is full: it is counted so the runtime can warn instead of dropping
updates silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from ...frontend import ast
from ...semantic import types as T
from ..layout import MIN_BIAS, MapLayout, ValueKind, storage_type
from .irgen import BPF_NOEXIST, I64, CodegenError, Val, mem_size

if TYPE_CHECKING:
    from .lower import Lowerer

EEXIST = 17
MAPFULL_MAP = "pt_mapfull"


def _layout(lw: "Lowerer", m: ast.Map) -> MapLayout:
    ml = lw.layout.maps.get(m.name)
    if ml is None:
        raise CodegenError(f"map {m.name} has no layout", m.span)
    return ml


def build_key(lw: "Lowerer", m: ast.Map, ml: MapLayout, keys: list[ast.Expr] | None = None) -> ir.Value:
    g = lw.g
    buf = g.alloca(ml.key_size)
    g.memset(buf, ml.key_size)
    keys = m.keys if keys is None else keys
    if ml.key_type is None or not keys:
        return buf
    if len(keys) == 1 and not isinstance(ml.key_type, T.TupleType):
        lw.store_expr_at(buf, 0, ml.key_type, keys[0])
        return buf
    if len(keys) == 1:
        # A tuple value used as the whole key.
        v = lw.expr(keys[0])
        g.memcpy(buf, v.ptr, min(ml.user_key_size, mem_size(v)))
        return buf
    kt = ml.key_type
    assert isinstance(kt, T.TupleType)
    for k, off, et in zip(keys, kt.offsets(), kt.elements):
        lw.store_expr_at(buf, off, et, k)
    return buf


def _count_full(lw: "Lowerer", ml: MapLayout, ret: ir.Value) -> None:
    """After an insert: a failure other than a lost race means the map is full."""
    g = lw.g
    failed = g.b.and_(g.b.icmp_signed("!=", ret, g.const(0)), g.b.icmp_signed("!=", ret, g.const(-EEXIST)))
    with g.b.if_then(failed):
        idx = g.alloca(8)
        g.store_int(idx, 0, g.const(ml_index(lw, ml)), 4)
        slot = g.map_lookup(MAPFULL_MAP, idx)
        with g.b.if_then(g.truth(slot)):
            g.atomic_add(slot, g.const(1))


def ml_index(lw: "Lowerer", ml: MapLayout) -> int:
    return list(lw.layout.maps).index(ml.name)


def add_to(lw: "Lowerer", ml: MapLayout, key: ir.Value, delta: ir.Value) -> None:
    """*map[key] += delta, creating the entry when missing."""
    g = lw.g
    slot = g.map_lookup(ml.bpf_name, key)
    found = g.truth(slot)
    with g.b.if_else(found) as (then, other):
        with then:
            g.atomic_add(slot, delta)
        with other:
            init = g.alloca(8)
            g.store_int(init, 0, delta)
            ret = g.map_update(ml.bpf_name, key, init, BPF_NOEXIST)
            lost_race = g.b.icmp_signed("==", ret, g.const(-EEXIST))
            with g.b.if_then(lost_race):
                again = g.map_lookup(ml.bpf_name, key)
                with g.b.if_then(g.truth(again)):
                    g.atomic_add(again, delta)
            _count_full(lw, ml, ret)


def aggregate(lw: "Lowerer", m: ast.Map, ml: MapLayout, call: ast.Call) -> None:
    g = lw.g
    agg = ml.value_type
    assert isinstance(agg, T.AggregationType)
    kind = agg.kind
    if kind is T.AggKind.COUNT:
        add_to(lw, ml, build_key(lw, m, ml), g.const(1))
        return
    v = lw.value(call.args[0])
    if kind is T.AggKind.SUM:
        add_to(lw, ml, build_key(lw, m, ml), v)
        return
    if kind in (T.AggKind.HIST, T.AggKind.LHIST):
        bucket = log2_bucket(lw, v) if kind is T.AggKind.HIST else linear_bucket(lw, v, *agg.params)
        key = _hist_key(lw, m, ml, bucket)
        add_to(lw, ml, key, g.const(1))
        return
    key = build_key(lw, m, ml)
    if kind in (T.AggKind.MIN, T.AggKind.MAX):
        _minmax(lw, ml, key, v, kind is T.AggKind.MIN)
        return
    slot = g.map_lookup(ml.bpf_name, key)
    with g.b.if_else(g.truth(slot)) as (then, other):
        with then:
            g.store_int(slot, 0, g.b.add(g.load_int(slot, 0), v))
            g.store_int(slot, 8, g.b.add(g.load_int(slot, 8), g.const(1)))
        with other:
            init = g.alloca(16)
            g.store_int(init, 0, v)
            g.store_int(init, 8, g.const(1))
            ret = g.map_update(ml.bpf_name, key, init, 0)
            _count_full(lw, ml, ret)


def _minmax(lw: "Lowerer", ml: MapLayout, key: ir.Value, v: ir.Value, is_min: bool) -> None:
    """min()/max() exactly as bpftrace 0.17 computes them, quirks included:
    the per-CPU slot (0 when the entry is missing) is replaced when the new
    value is signed->= it, max() storing v and min() storing 0xffffffff - v.
    Hence max() of only negative values and min() of values above 2**32-1
    never create the entry (0.17 prints such a map empty).  The second word
    marks the slot as written; the runtime reverses the min bias."""
    g = lw.g
    new = g.b.sub(g.const(MIN_BIAS), v) if is_min else v
    slot = g.map_lookup(ml.bpf_name, key)
    found = g.truth(slot)
    cur = g.alloca_i64("minmax")
    g.b.store(g.const(0), cur)
    with g.b.if_then(found):
        g.b.store(g.load_int(slot, 0), cur)
    take = g.b.icmp_signed(">=", new, g.b.load(cur))
    with g.b.if_then(take):
        with g.b.if_else(found) as (then, other):
            with then:
                g.store_int(slot, 0, new)
                g.store_int(slot, 8, g.const(1))
            with other:
                init = g.alloca(16)
                g.store_int(init, 0, new)
                g.store_int(init, 8, g.const(1))
                ret = g.map_update(ml.bpf_name, key, init, 0)
                _count_full(lw, ml, ret)


def _hist_key(lw: "Lowerer", m: ast.Map, ml: MapLayout, bucket: ir.Value) -> ir.Value:
    key = build_key(lw, m, ml)
    lw.g.store_int(key, ml.user_key_size, bucket)
    return key


def log2_bucket(lw: "Lowerer", n: ir.Value) -> ir.Value:
    """bpftrace 0.17's log2(): 0 for negatives, 1 for 0, then 2 + floor(log2(n))
    over five halving steps, so every value >= 2**31 lands in index 33
    ([2G, 4G)) exactly as 0.17 prints it."""
    g = lw.g
    out = g.alloca_i64("log2")
    g.b.store(g.const(0), out)
    with g.b.if_then(g.b.icmp_signed(">=", n, g.const(0))):
        g.b.store(g.const(1), out)
        with g.b.if_then(g.b.icmp_signed(">", n, g.const(0))):
            cur = n
            result = g.const(2)
            for i in (4, 3, 2, 1, 0):
                # shift = (n >= 1 << (1 << i)) << i
                limit = g.const(1 << (1 << i))
                ge = g.b.icmp_unsigned(">=", cur, limit)
                shift = g.b.shl(g.b.zext(ge, I64), g.const(i))
                cur = g.b.lshr(cur, shift)
                result = g.b.add(result, shift)
            g.b.store(result, out)
    return g.b.load(out)


def linear_bucket(lw: "Lowerer", v: ir.Value, lo: int, hi: int, step: int) -> ir.Value:
    """bpftrace's linear(): 0 below min, 1 + (max - min) / step above max,
    else 1 + (v - min) / step."""
    g = lw.g
    out = g.alloca_i64("lin")
    below = g.b.icmp_signed("<", v, g.const(lo))
    above = g.b.icmp_signed(">", v, g.const(hi))
    inner = g.b.add(g.b.udiv(g.b.sub(v, g.const(lo)), g.const(step)), g.const(1))
    g.b.store(g.b.select(below, g.const(0), g.b.select(above, g.const(1 + (hi - lo) // step), inner)), out)
    return g.b.load(out)


def assign(lw: "Lowerer", s: ast.Assign) -> None:
    g = lw.g
    m = s.target
    assert isinstance(m, ast.Map)
    ml = _layout(lw, m)
    if isinstance(s.value, ast.Call) and isinstance(ml.value_type, T.AggregationType) and \
            s.value.name in ("count", "sum", "avg", "min", "max", "stats", "hist", "lhist"):
        aggregate(lw, m, ml, s.value)
        return
    if s.op in ("+=", "-=") and ml.kind is ValueKind.ADD:
        delta = lw.value(s.value)
        add_to(lw, ml, build_key(lw, m, ml), delta if s.op == "+=" else g.b.neg(delta))
        return
    key = build_key(lw, m, ml)
    if s.op != "=":
        cur = read(lw, m, key=key)
        assert cur.reg is not None
        new = lw.arith(s.op[:-1], cur.reg, lw.value(s.value), ml.value_type, s.value.ty or T.I64, s.span)
        value = Val(ml.value_type, reg=new)
    else:
        value = lw.expr(s.value)
    buf = g.alloca(ml.value_size)
    g.memset(buf, ml.value_size)
    lw.store_at(buf, 0, storage_type(ml.value_type), value)
    ret = g.map_update(ml.bpf_name, key, buf, 0)
    _count_full(lw, ml, ret)


def read(lw: "Lowerer", m: ast.Map, key: ir.Value | None = None) -> Val:
    g = lw.g
    ml = _layout(lw, m)
    t = m.ty or ml.value_type
    if ml.kind in (ValueKind.MINMAX, ValueKind.AVG, ValueKind.HIST):
        raise CodegenError(f"reading {ml.value_type} maps inside a probe is not supported yet", m.span,
                           ["print the map instead: print(" + m.name + ")"])
    if key is None:
        key = build_key(lw, m, ml)
    slot = g.map_lookup(ml.bpf_name, key)
    found = g.truth(slot)
    if ml.kind is ValueKind.ADD or (isinstance(t, T.IntType) and ml.value_size == 8):
        out = g.alloca_i64("mapval")
        g.b.store(g.const(0), out)
        with g.b.if_then(found):
            g.b.store(g.load_int(slot, 0), out)
        return Val(t if t.is_integer() else T.I64, reg=g.b.load(out))
    size = ml.value_size
    buf = g.alloca(size)
    g.memset(buf, size)
    with g.b.if_then(found):
        g.memcpy(buf, slot, size)
    st = storage_type(ml.value_type)
    if st.is_integer():
        return Val(t, reg=g.load_int(buf, 0))
    return Val(t, ptr=buf)


def incdec(lw: "Lowerer", e: ast.IncDec, delta: int) -> Val:
    g = lw.g
    m = e.target
    assert isinstance(m, ast.Map)
    ml = _layout(lw, m)
    key = build_key(lw, m, ml)
    add_to(lw, ml, key, g.const(delta))
    # The map is read back after the atomic add (its value is rarely used);
    # @x++ yields the value before the increment.
    new = read(lw, m, key=key).reg
    assert new is not None
    return Val(e.ty or T.I64, reg=new if e.prefix else g.b.sub(new, g.const(delta)))


def delete(lw: "Lowerer", m: ast.Map, keys: list[ast.Expr]) -> None:
    ml = _layout(lw, m)
    if ml.kind is ValueKind.HIST:
        raise CodegenError("delete() of a hist/lhist element is not supported yet", m.span)
    key = build_key(lw, m, ml, keys)
    lw.g.map_delete(ml.bpf_name, key)


def has_key(lw: "Lowerer", m: ast.Map, keys: list[ast.Expr]) -> ir.Value:
    ml = _layout(lw, m)
    key = build_key(lw, m, ml, keys)
    slot = lw.g.map_lookup(ml.bpf_name, key)
    return lw.g.b.zext(lw.g.truth(slot), I64)
