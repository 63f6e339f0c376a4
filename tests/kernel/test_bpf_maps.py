"""pytrace.bpf.maps on the live kernel: every map kind round-trips, batch
reads agree with the slow walk, per-CPU buffers have the right size."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from pytrace.bpf import insn as I
from pytrace.bpf.attach import attach_raw_tracepoint
from pytrace.bpf.maps import BpfMap
from pytrace.bpf.program import load_program, test_run
from pytrace.bpf.syscalls import (
    BPF_F_RDONLY_PROG,
    BPF_NOEXIST,
    BpfError,
    MapType,
    ProgType,
    possible_cpus,
)
from tests.kernel.test_bpf_syscalls import (  # noqa: F401 - bpf_clean is an autouse fixture
    HELPER_GET_STACKID,
    HELPER_MAP_UPDATE,
    HELPER_PID_TGID,
    SYS_GETPID,
    TAG,
    bpf_clean,
    counter_prog,
    raw_getpid,
    u64_at,
)

pytestmark = pytest.mark.kernel


def k32(i: int) -> bytes:
    return i.to_bytes(4, "little")


def k64(i: int) -> bytes:
    return i.to_bytes(8, "little")


@pytest.mark.parametrize("kind", [MapType.HASH, MapType.LRU_HASH])
def test_hash_round_trip(kind: MapType) -> None:
    with BpfMap.create(kind, 8, 16, 64, TAG + "h") as m:
        assert m.lookup(k64(1)) is None
        m.update(k64(1), b"a" * 16)
        m.update(k64(2), b"b" * 16)
        assert m.lookup(k64(1)) == b"a" * 16
        with pytest.raises(BpfError) as info:
            m.update(k64(1), b"c" * 16, BPF_NOEXIST)
        assert info.value.errno == errno.EEXIST
        assert sorted(m.keys()) == [k64(1), k64(2)]
        assert sorted(m.items()) == [(k64(1), b"a" * 16), (k64(2), b"b" * 16)]
        assert m.delete(k64(1)) is True
        assert m.delete(k64(1)) is False
        m.clear()
        assert m.items() == [] and m.keys() == []
        with pytest.raises(ValueError, match="8-byte keys"):
            m.lookup(b"123")
        with pytest.raises(ValueError, match="16-byte values"):
            m.update(k64(1), b"short")
    m.close()  # idempotent
    assert m.fd == -1


def test_array_round_trip() -> None:
    with BpfMap.create(MapType.ARRAY, 4, 12, 5, TAG + "a") as m:
        assert m.lookup(k32(4)) == bytes(12)  # arrays are preallocated and zeroed
        assert m.lookup(k32(5)) is None
        m.update(k32(3), b"x" * 12)
        assert m.keys() == [k32(i) for i in range(5)]
        assert dict(m.items())[k32(3)] == b"x" * 12
        m.clear()  # zeroes: array elements cannot be deleted
        assert all(v == bytes(12) for _, v in m.items())


def test_hash_batch_of_10000_matches_walk() -> None:
    with BpfMap.create(MapType.HASH, 8, 8, 12000, TAG + "b") as m:
        for i in range(10000):
            m.update(k64(i), k64(i * 7))
        batch = m.items_batch()
        assert batch is not None and len(batch) == 10000
        assert sorted(batch) == sorted(m.items_walk())
        assert dict(m.items()) == {k64(i): k64(i * 7) for i in range(10000)}
        m.clear()
        assert m.items() == []


def test_batch_vs_walk_timing() -> None:
    """Not a pass/fail speed test: prints the figures (pytest -s)."""
    n = 50000
    with BpfMap.create(MapType.HASH, 8, 8, n, TAG + "t") as m:
        for i in range(n):
            m.update(k64(i), k64(i))
        t0 = time.perf_counter()
        batch = m.items_batch()
        t1 = time.perf_counter()
        walk = m.items_walk()
        t2 = time.perf_counter()
        assert batch is not None and len(batch) == len(walk) == n
        print(f"\n{n} entries: batch {1e3 * (t1 - t0):.0f} ms, get_next_key {1e3 * (t2 - t1):.0f} ms")
        assert t1 - t0 < t2 - t1


@pytest.mark.parametrize("kind", [MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH, MapType.PERCPU_ARRAY])
def test_percpu_round_trip(kind: MapType) -> None:
    ncpu = possible_cpus()
    with BpfMap.create(kind, 4, 12, 16, TAG + "p") as m:
        assert m.value_buffer_size == 16 * ncpu  # 12 rounded up to 8, per possible CPU
        values = [bytes([i + 1]) * 12 for i in range(ncpu)]
        m.update(k32(3), values)
        assert m.lookup_percpu(k32(3)) == values
        m.update(k32(4), b"z" * 12)  # one value: every CPU gets it
        assert m.lookup_percpu(k32(4)) == [b"z" * 12] * ncpu
        items = dict(m.items_percpu())
        assert items[k32(3)] == values and items[k32(4)] == [b"z" * 12] * ncpu
        with pytest.raises(TypeError, match="per-CPU"):
            m.lookup(k32(3))
        with pytest.raises(ValueError):
            m.update(k32(3), values[:1] * (ncpu + 1))


def test_percpu_hash_batch_of_10000() -> None:
    ncpu = possible_cpus()
    with BpfMap.create(MapType.PERCPU_HASH, 4, 8, 10000, TAG + "pb") as m:
        for i in range(10000):
            m.update(k32(i), [k64(i * 10 + c) for c in range(ncpu)])
        items = m.items_percpu()
        assert len(items) == 10000
        assert all(v == [k64(int.from_bytes(k, "little") * 10 + c) for c in range(ncpu)]
                   for k, v in items)


def test_percpu_values_written_by_a_program_on_each_cpu() -> None:
    """test_run on a chosen CPU increments that CPU's slot only."""
    ncpu = possible_cpus()
    with BpfMap.create(MapType.PERCPU_ARRAY, 4, 8, 1, TAG + "pc") as m:
        fd = load_program(ProgType.RAW_TRACEPOINT, counter_prog(m.fd), name=TAG + "pc")
        try:
            for cpu in range(ncpu):
                for _ in range(cpu + 1):
                    test_run(fd, bytes(8), cpu=cpu)
        finally:
            os.close(fd)
        assert [int.from_bytes(v, "little") for v in m.lookup_percpu(k32(0)) or []] == \
            [c + 1 for c in range(ncpu)]


def test_freeze_and_from_fd() -> None:
    with BpfMap.create(MapType.ARRAY, 4, 8, 2, TAG + "f", BPF_F_RDONLY_PROG) as m:
        m.update(k32(1), k64(42))
        m.freeze()
        with pytest.raises(BpfError, match="frozen") as info:
            m.update(k32(1), k64(43))
        assert info.value.errno == errno.EPERM
        with BpfMap.from_fd(os.dup(m.fd)) as again:
            assert (again.map_type, again.key_size, again.value_size, again.max_entries) == \
                (MapType.ARRAY, 4, 8, 2)
            assert again.flags & BPF_F_RDONLY_PROG
            assert again.lookup(k32(1)) == k64(42)


def test_ringbuf_size_is_checked() -> None:
    with pytest.raises(ValueError, match="power of 2"):
        BpfMap.create(MapType.RINGBUF, 0, 0, 3 * 4096, TAG + "r")
    with BpfMap.create(MapType.RINGBUF, 0, 0, 1 << 16, TAG + "r") as m:
        assert m.max_entries == 1 << 16


def _stack_prog(stacks_fd: int, out_fd: int) -> bytes:
    """raw_tp sys_enter: for our getpid calls, store get_stackid() in out[0]."""
    a = I.Asm().emit(I.mov64_reg(I.R6, I.R1), I.ldx(8, I.R2, I.R6, 8))
    a.jmp(I.JNE, I.R2, "out", imm=SYS_GETPID)
    a.emit(I.call(HELPER_PID_TGID), I.alu64_imm(I.RSH, I.R0, 32)).jmp(I.JNE, I.R0, "out", imm=os.getpid())
    a.emit(I.mov64_reg(I.R1, I.R6), I.ld_map_fd(I.R2, stacks_fd), I.mov64_imm(I.R3, 0),
           I.call(HELPER_GET_STACKID),
           I.st_imm(4, I.R10, -4, 0), I.stx(8, I.R10, -16, I.R0), I.ld_map_fd(I.R1, out_fd),
           I.mov64_reg(I.R2, I.R10), I.alu64_imm(I.ADD, I.R2, -4), I.mov64_reg(I.R3, I.R10),
           I.alu64_imm(I.ADD, I.R3, -16), I.mov64_imm(I.R4, 0), I.call(HELPER_MAP_UPDATE))
    a.label("out").emit(I.mov64_imm(I.R0, 0), I.exit_insn())
    return a.assemble()


def test_stack_trace_map() -> None:
    depth = int(Path("/proc/sys/kernel/perf_event_max_stack").read_text())
    with BpfMap.create(MapType.STACK_TRACE, 4, 8 * depth, 128, TAG + "st") as stacks, \
            BpfMap.create(MapType.ARRAY, 4, 8, 1, TAG + "sid") as out:
        out.update(k32(0), (-1).to_bytes(8, "little", signed=True))
        fd = load_program(ProgType.RAW_TRACEPOINT, _stack_prog(stacks.fd, out.fd), name=TAG + "st")
        try:
            with attach_raw_tracepoint(fd, "sys_enter"):
                raw_getpid()
        finally:
            os.close(fd)
        stack_id = int.from_bytes(out.lookup(k32(0)) or b"", "little", signed=True)
        assert stack_id >= 0
        assert k32(stack_id) in stacks.keys()
        frames = stacks.stack(stack_id)
        assert frames and all(f >= 0xFFFF800000000000 for f in frames)  # kernel text (x86_64)
        raw = stacks.lookup(k32(stack_id))
        assert raw is not None and len(raw) == 8 * depth  # the whole u64 array
        assert dict(stacks.items())[k32(stack_id)] == raw  # no batch op: the walk serves
        assert stacks.stack(-14) is None  # a helper error code is "no stack"
        assert u64_at(out, 0) == stack_id
