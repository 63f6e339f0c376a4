"""Map operations and aggregations in BPF.

count/sum and integer maps use a plain hash with an atomic add, creating the
entry with BPF_NOEXIST on the first hit (measured at about half the cost of
bpftrace's per-CPU lookup-and-update); min/max/avg/stats use per-CPU values
combined in user space; hist/lhist count per (key, bucket) with bpftrace's
exact bucket functions.  A failed insert that is not a lost race means the
map is full: it is counted so the runtime can warn instead of dropping
updates silently.

The code is kept small (the verifier's instruction count is the measure,
benchmarks/xlated.py): constant keys and initial values are read from
.rodata, keys are zeroed only where nothing writes them, and the create-
and-retry path of an atomic add shares the one lookup call (add_to).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from ...frontend import ast
from ...semantic import types as T
from ..layout import MIN_BIAS, MapLayout, ValueKind, mapfull_slot, storage_type, type_size
from .irgen import (BPF_ANY, BPF_NOEXIST, H_FOR_EACH_MAP_ELEM, H_MAP_LOOKUP_PERCPU_ELEM, I8P, I64, CodegenError,
                    Val, mem_size)

if TYPE_CHECKING:
    from .lower import Lowerer


def _layout(lw: "Lowerer", m: ast.Map) -> MapLayout:
    ml = lw.layout.maps.get(m.name)
    if ml is None:
        raise CodegenError(f"map {m.name} has no layout", m.span)
    return ml


def build_key(lw: "Lowerer", m: ast.Map, ml: MapLayout, keys: list[ast.Expr] | None = None,
              bucket: ir.Value | None = None) -> ir.Value:
    """The key of ``m[keys]`` (hist/lhist: followed by ``bucket``), every
    byte initialised.  A constant all-zero key (a key-less map) is read from
    .rodata; otherwise only the bytes no store or helper writes are zeroed."""
    g = lw.g
    keys = m.keys if keys is None else keys
    if ml.key_type is None or not keys:
        keys = []
        if bucket is None:
            return g.zeros(ml.key_size)
    literal = None if bucket is not None else _literal_key(ml, keys)
    if literal is not None:
        return g.rodata(literal)
    buf = g.alloca(ml.key_size)
    written: list[tuple[int, int]] = []
    if len(keys) == 1 and not isinstance(ml.key_type, T.TupleType):
        assert ml.key_type is not None
        written.append((0, lw.store_expr_at(buf, 0, ml.key_type, keys[0])))
    elif len(keys) == 1:
        # A tuple value used as the whole key.
        v = lw.expr(keys[0])
        size = min(ml.user_key_size, mem_size(v))
        g.memcpy(buf, v.ptr, size)
        written.append((0, size))
    elif keys:
        kt = ml.key_type
        assert isinstance(kt, T.TupleType)
        for k, off, et in zip(keys, kt.offsets(), kt.elements):
            written.append((off, lw.store_expr_at(buf, off, et, k)))
    if bucket is not None:
        g.store_int(buf, ml.user_key_size, bucket)
        written.append((ml.user_key_size, 8))
    g.zero_gaps(buf, ml.key_size, written)
    return buf


def _literal_key(ml: MapLayout, keys: list[ast.Expr]) -> bytes | None:
    """The key bytes when every key is an integer or string literal (read
    from .rodata then), laid out as build_key would store them: integers
    as 8 bytes, strings NUL-padded or cut to their field; else None."""
    kt = ml.key_type
    if isinstance(kt, T.TupleType) and len(keys) > 1:
        fields = list(zip(kt.offsets(), kt.elements))
    elif len(keys) == 1 and kt is not None and not isinstance(kt, T.TupleType):
        fields = [(0, kt)]
    else:
        return None
    out = bytearray(ml.key_size)
    for k, (off, et) in zip(keys, fields):
        st = storage_type(et)
        if isinstance(k, ast.Integer) and isinstance(st, T.IntType) and type_size(st) == 8:
            out[off:off + 8] = (k.value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
        elif isinstance(k, ast.String) and isinstance(st, T.StringType):
            data = k.value.encode("utf-8", "surrogateescape")[: st.length]
            out[off:off + len(data)] = data
        else:
            return None
    return bytes(out)


def _count_full(lw: "Lowerer", ml: MapLayout, ret: ir.Value) -> None:
    """After a BPF_ANY update: a failure means the map is full.  A map with
    one fixed key cannot fill up (max_entries is at least 1)."""
    if not ml.can_fill:
        return
    g = lw.g
    with g.b.if_then(g.b.icmp_signed("!=", ret, g.const(0))):
        g.count(mapfull_slot(lw.layout, ml.name))


def add_to(lw: "Lowerer", ml: MapLayout, key: ir.Value, delta: ir.Value) -> None:
    """*map[key] += delta with an atomic add, creating the entry when missing.

    One lookup call site serves the hit, the retry and the full map::

        first = ctx
        again: p = lookup(key)
               if p: goto add
               if !first: goto full             # still missing after an insert
               update(key, &zero, BPF_NOEXIST)  # 0, EEXIST (a lost race) or full
               first = NULL; goto again
        full:  p = &counter                     # count the dropped update
        add:   *p += delta                      # count(): the drop shares it

    (A map whose one key is fixed cannot be full: then nothing is counted.)
    The verifier walks the loop twice (``first`` differs).  ``first`` is the
    context pointer (not NULL, and already in a register), then a NULL that
    LLVM cannot see (ProgramGen.opaque_null): with a constant on either edge
    LLVM turns the phi into a boolean that it masks before each test.  The
    zero comes from .rodata (no stack store), the lookup may not be
    duplicated and the loop not unrolled (map_lookup(once), keep_loop)."""
    g = lw.g
    slot_no = mapfull_slot(lw.layout, ml.name)
    pre = g.b.block
    again = g.fn.append_basic_block("add.lookup")
    missing = g.fn.append_basic_block("add.missing")
    insert = g.fn.append_basic_block("add.insert")
    full = g.fn.append_basic_block("add.full")
    add = g.fn.append_basic_block("add.hit")
    done = g.fn.append_basic_block("add.done")
    g.b.branch(again)
    g.b.position_at_end(again)
    first = g.b.phi(I8P, name="first")
    first.add_incoming(g.ctx, pre)
    slot = g.map_lookup(ml.bpf_name, key, once=True)
    g.b.cbranch(g.truth(slot), add, missing)
    g.b.position_at_end(missing)
    g.b.cbranch(g.truth(first), insert, full)
    g.b.position_at_end(insert)
    g.map_update(ml.bpf_name, key, g.zeros(ml.value_size), BPF_NOEXIST)
    first.add_incoming(g.opaque_null(), g.b.block)
    g.keep_loop(g.b.branch(again))
    g.b.position_at_end(full)
    shared = ml.can_fill and isinstance(delta, ir.Constant) and delta.constant == 1
    counter = g.counter_ptr(slot_no) if ml.can_fill else ir.Constant(I8P, None)
    if shared:
        g.b.cbranch(g.truth(counter), add, done)
    else:
        with g.b.if_then(g.truth(counter)):
            g.atomic_add(counter, g.const(1))
        g.b.branch(done)
    full_end = g.b.block
    g.b.position_at_end(add)
    target = slot
    if shared:
        target = g.b.phi(I8P, name="target")
        target.add_incoming(slot, again)
        target.add_incoming(counter, full_end)
    g.atomic_add(target, delta)
    g.b.branch(done)
    g.b.position_at_end(done)


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
        key = build_key(lw, m, ml, bucket=bucket)
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
            ret = g.map_update(ml.bpf_name, key, init, BPF_ANY)
            _count_full(lw, ml, ret)


def _minmax(lw: "Lowerer", ml: MapLayout, key: ir.Value, v: ir.Value, is_min: bool) -> None:
    """min()/max() exactly as bpftrace 0.17 computes them, quirks included:
    the per-CPU slot (0 when the entry is missing) is replaced when the new
    value is signed->= it, max() storing v and min() storing 0xffffffff - v.
    Hence max() of only negative values and min() of values above 2**32-1
    never create the entry (0.17 prints such a map empty).  The second word
    marks the slot as written; the runtime reverses the min bias.  As in
    0.17 a new extreme is written with an update (this CPU's slot of a
    per-CPU value): one path for a new and an existing entry."""
    g = lw.g
    new = g.b.sub(g.const(MIN_BIAS), v) if is_min else v
    slot = g.map_lookup(ml.bpf_name, key)
    found = g.truth(slot)
    pre = g.b.block
    with g.b.if_then(found):
        seen = g.load_int(slot, 0)
        seen_block = g.b.block
    cur = g.b.phi(I64, name="minmax")
    cur.add_incoming(g.const(0), pre)
    cur.add_incoming(seen, seen_block)
    with g.b.if_then(g.b.icmp_signed(">=", new, cur)):
        init = g.alloca(16)
        g.store_int(init, 0, new)
        g.store_int(init, 8, g.const(1))
        ret = g.map_update(ml.bpf_name, key, init, BPF_ANY)
        _count_full(lw, ml, ret)


def log2_bucket(lw: "Lowerer", n: ir.Value) -> ir.Value:
    """bpftrace 0.17's log2(): 0 for negatives, 1 for 0, then 2 + floor(log2(n))
    over five halving steps, so every value >= 2**31 lands in index 33
    ([2G, 4G)) exactly as 0.17 prints it.  Pure register arithmetic: a
    stack slot for the result would cost a store per branch."""
    g = lw.g
    cur = n
    result = g.const(2)
    for i in (4, 3, 2, 1, 0):
        # shift = (n >= 1 << (1 << i)) << i
        ge = g.b.icmp_unsigned(">=", cur, g.const(1 << (1 << i)))
        shift = g.b.shl(g.b.zext(ge, I64), g.const(i))
        cur = g.b.lshr(cur, shift)
        result = g.b.add(result, shift)
    positive = g.b.select(g.b.icmp_unsigned("==", n, g.const(0)), g.const(1), result)
    return g.b.select(g.b.icmp_signed("<", n, g.const(0)), g.const(0), positive)


def linear_bucket(lw: "Lowerer", v: ir.Value, lo: int, hi: int, step: int) -> ir.Value:
    """bpftrace's linear(): 0 below min, 1 + (max - min) / step above max,
    else 1 + (v - min) / step."""
    g = lw.g
    below = g.b.icmp_signed("<", v, g.const(lo))
    above = g.b.icmp_signed(">", v, g.const(hi))
    inner = g.b.add(g.b.udiv(g.b.sub(v, g.const(lo)), g.const(step)), g.const(1))
    return g.b.select(below, g.const(0), g.b.select(above, g.const(1 + (hi - lo) // step), inner))


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
    ret = g.map_update(ml.bpf_name, key, buf, BPF_ANY)
    _count_full(lw, ml, ret)


def read(lw: "Lowerer", m: ast.Map, key: ir.Value | None = None) -> Val:
    g = lw.g
    ml = _layout(lw, m)
    t = m.ty or ml.value_type
    agg = ml.value_type
    if ml.kind is ValueKind.HIST or (isinstance(agg, T.AggregationType) and agg.kind is T.AggKind.STATS):
        raise CodegenError(f"a {ml.value_type} map cannot be read inside a probe", m.span,
                           ["print the map instead: print(" + m.name + ")"])
    if key is None:
        key = build_key(lw, m, ml)
    if ml.kind in (ValueKind.MINMAX, ValueKind.AVG):
        return Val(t if t.is_integer() else T.I64, reg=_read_per_cpu(lw, ml, key))
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


def _read_per_cpu(lw: "Lowerer", ml: MapLayout, key: ir.Value) -> ir.Value:
    """The value of a per-CPU min/max/avg entry, combined over the CPUs in
    the program as the runtime combines them when it prints (decode.py):
    min/max the largest written slot (a min slot holds MIN_BIAS - value),
    avg the sum of totals over the sum of counts, truncated toward zero; 0
    for a missing entry.  bpf_map_lookup_percpu_elem (kernel 5.19) reads
    each CPU's slot, in a loop over the possible CPUs."""
    g = lw.g
    agg = ml.value_type
    assert isinstance(agg, T.AggregationType)
    ncpus = int(lw.options.get("possible_cpus", 0) or lw.options.get("ncpus", 1))
    pre = g.b.block
    body = g.fn.append_basic_block("percpu.body")
    done = g.fn.append_basic_block("percpu.done")
    g.b.branch(body)
    g.b.position_at_end(body)
    cpu = g.b.phi(I64, name="cpu")
    acc0 = g.b.phi(I64, name="acc0")   # best slot, or total
    acc1 = g.b.phi(I64, name="acc1")   # any slot written, or count
    for phi in (cpu, acc0, acc1):
        phi.add_incoming(g.const(0), pre)
    slot = g.helper(H_MAP_LOOKUP_PERCPU_ELEM, [g.map_ptr(ml.bpf_name), key, g.b.trunc(cpu, ir.IntType(32))],
                    ret=I8P)
    looked = g.b.block
    with g.b.if_then(g.truth(slot)):
        v0, v1 = g.load_int(slot, 0), g.load_int(slot, 8)
        if ml.kind is ValueKind.MINMAX:
            better = g.b.and_(g.b.icmp_unsigned("!=", v1, g.const(0)), g.b.icmp_signed(">", v0, acc0))
            n0 = g.b.select(better, v0, acc0)
            n1 = g.b.select(better, g.const(1), acc1)
        else:
            n0, n1 = g.b.add(acc0, v0), g.b.add(acc1, v1)
        found = g.b.block
    next0 = g.b.phi(I64)
    next0.add_incoming(acc0, looked)
    next0.add_incoming(n0, found)
    next1 = g.b.phi(I64)
    next1.add_incoming(acc1, looked)
    next1.add_incoming(n1, found)
    nxt = g.b.add(cpu, g.const(1))
    tail = g.b.block
    cpu.add_incoming(nxt, tail)
    acc0.add_incoming(next0, tail)
    acc1.add_incoming(next1, tail)
    g.keep_loop(g.b.cbranch(g.b.icmp_unsigned("<", nxt, g.const(max(1, ncpus))), body, done))
    g.b.position_at_end(done)
    if ml.kind is ValueKind.MINMAX:
        if agg.kind is T.AggKind.MIN:
            # An unwritten (or all-zero) min reads 0, as it prints.
            return g.b.select(g.b.icmp_unsigned("==", next0, g.const(0)), g.const(0),
                              g.b.sub(g.const(MIN_BIAS), next0))
        return next0
    # total / count toward zero without sdiv (LLVM's BPF back end aborts on
    # signed division below cpu v4): divide the magnitude, restore the sign.
    negative = g.b.icmp_signed("<", next0, g.const(0))
    magnitude = g.b.select(negative, g.b.neg(next0), next0)
    safe = g.b.select(g.b.icmp_unsigned("==", next1, g.const(0)), g.const(1), next1)
    q = g.b.udiv(magnitude, safe)
    q = g.b.select(negative, g.b.neg(q), q)
    return g.b.select(g.b.icmp_unsigned("==", next1, g.const(0)), g.const(0), q)


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
        _delete_histogram(lw, m, ml, keys)
        return
    key = build_key(lw, m, ml, keys)
    lw.g.map_delete(ml.bpf_name, key)


def hist_buckets(agg: T.Type) -> int:
    """How many bucket indices a hist/lhist uses (log2_bucket: 0..33;
    linear_bucket: 0..1 + (max - min) / step)."""
    assert isinstance(agg, T.AggregationType)
    if agg.kind is T.AggKind.HIST:
        return 34
    lo, hi, step = agg.params[:3]
    return 2 + (hi - lo) // step


def _delete_histogram(lw: "Lowerer", m: ast.Map, ml: MapLayout, keys: list[ast.Expr]) -> None:
    """delete(@h[k]) of a hist/lhist: every bucket of key k, so the whole
    histogram goes (bpftrace 0.17 deletes one bucket, whichever its stack
    slot happened to hold: not reproduced).  A loop over the bucket indices
    with the key built once and its bucket word rewritten; kept a loop (up
    to 1,002 trips for lhist), which the verifier walks trip by trip."""
    g = lw.g
    key = build_key(lw, m, ml, keys, bucket=g.const(0))
    n = hist_buckets(ml.value_type)
    pre = g.b.block
    body = g.fn.append_basic_block("delhist.body")
    done = g.fn.append_basic_block("delhist.done")
    g.b.branch(body)
    g.b.position_at_end(body)
    i = g.b.phi(I64, name="bucket")
    i.add_incoming(g.const(0), pre)
    g.store_int(key, ml.user_key_size, i)
    g.map_delete(ml.bpf_name, key)
    nxt = g.b.add(i, g.const(1))
    i.add_incoming(nxt, g.b.block)
    g.keep_loop(g.b.cbranch(g.b.icmp_unsigned("<", nxt, g.const(n)), body, done))
    g.b.position_at_end(done)


def has_key(lw: "Lowerer", m: ast.Map, keys: list[ast.Expr]) -> ir.Value:
    ml = _layout(lw, m)
    key = build_key(lw, m, ml, keys)
    slot = lw.g.map_lookup(ml.bpf_name, key)
    return lw.g.b.zext(lw.g.truth(slot), I64)


COUNT_CALLBACK = "pt_count_elem"


def _count_elem(b: ir.IRBuilder, fn: ir.Function) -> None:
    """The callback of len(): ``*(u64 *)ctx += 1``, and 0 to go on.  An
    atomic add, not a load and a store: the verifier then knows nothing of
    the counter (a stack slot written by an atomic op is unknown), so its
    walk of the callback converges at once.  Tracked as the constants 0, 1,
    2, ... a counter that the program later compares would make every walk
    a new state, until the 1M-instruction limit (seen on 6.18)."""
    p = b.bitcast(fn.args[3], I64.as_pointer())
    b.atomic_rmw("add", p, ir.Constant(I64, 1), "monotonic")
    b.ret(ir.Constant(I64, 0))


def length(lw: "Lowerer", m: ast.Map) -> ir.Value:
    """len(@m): its entries, counted by bpf_for_each_map_elem (kernel 5.13)
    calling a callback subprogram with a counter on the stack, as bpftrace
    does (a hash map keeps no count a program can read)."""
    g = lw.g
    ml = _layout(lw, m)
    if ml.kind is ValueKind.HIST:
        raise CodegenError("len() of a hist/lhist map is not supported: each bucket is an entry of its own",
                           m.span)
    n = g.alloca(8)
    g.store_int(n, 0, g.const(0))
    g.helper(H_FOR_EACH_MAP_ELEM, [g.map_ptr(ml.bpf_name), g.callback(COUNT_CALLBACK, _count_elem), n,
                                   g.const(0)])
    return g.load_int(n, 0)
