"""Tests for the BTF reader (pytrace.kernel.btf and its helper modules).

Part (a) builds a small BTF blob by hand and checks every conversion rule;
part (b) (``@pytest.mark.kernel``) checks the running kernel's BTF against
``bpftool btf dump ... format raw``.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytrace.kernel.btf import Btf, BtfError
from pytrace.semantic.types import (I8, I32, I64, U8, U32, U64, VOID, AddrSpace, ArrayType, EnumType,
                                    IntType, PointerType, StructType, Type)

VMLINUX = "/sys/kernel/btf/vmlinux"

# --- (a) a hand-built blob ------------------------------------------------------

K_INT, K_PTR, K_ARRAY, K_STRUCT, K_UNION, K_ENUM, K_FWD, K_TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
K_VOLATILE, K_CONST, K_FUNC, K_FUNC_PROTO, K_TYPE_TAG, K_ENUM64 = 9, 10, 12, 13, 18, 19


class BtfBuilder:
    """Assembles a little-endian BTF blob: header, type section, string section."""

    def __init__(self) -> None:
        self.strings = bytearray(b"\0")
        self.string_index: dict[str, int] = {"": 0}
        self.types: list[bytes] = []

    def s(self, name: str) -> int:
        if name not in self.string_index:
            self.string_index[name] = len(self.strings)
            self.strings += name.encode() + b"\0"
        return self.string_index[name]

    def add(self, name: str, kind: int, vlen: int = 0, kflag: int = 0, size_or_type: int = 0,
            tail: bytes = b"") -> int:
        info = (kflag << 31) | (kind << 24) | vlen
        self.types.append(struct.pack("<III", self.s(name), info, size_or_type) + tail)
        return len(self.types)

    def int_(self, name: str, size: int, encoding: int = 0, offset: int = 0, bits: int | None = None) -> int:
        nr_bits = size * 8 if bits is None else bits
        return self.add(name, K_INT, size_or_type=size,
                        tail=struct.pack("<I", (encoding << 24) | (offset << 16) | nr_bits))

    def ref(self, kind: int, target: int, name: str = "") -> int:
        return self.add(name, kind, size_or_type=target)

    def array(self, elem: int, index: int, count: int) -> int:
        return self.add("", K_ARRAY, tail=struct.pack("<III", elem, index, count))

    def aggregate(self, kind: int, name: str, size: int, members: list[tuple[str, int, int, int]],
                  kflag: int = 1) -> int:
        """members: (name, type id, bit offset, bitfield size)."""
        tail = b"".join(struct.pack("<III", self.s(n), t, (bs << 24 | off) if kflag else off)
                        for n, t, off, bs in members)
        return self.add(name, kind, len(members), kflag, size, tail)

    def enum(self, name: str, size: int, values: list[tuple[str, int]], signed: bool) -> int:
        tail = b"".join(struct.pack("<Ii", self.s(n), v) if signed else struct.pack("<II", self.s(n), v)
                        for n, v in values)
        return self.add(name, K_ENUM, len(values), int(signed), size, tail)

    def enum64(self, name: str, values: list[tuple[str, int]]) -> int:
        tail = b"".join(struct.pack("<III", self.s(n), v & 0xFFFFFFFF, v >> 32) for n, v in values)
        return self.add(name, K_ENUM64, len(values), 0, 8, tail)

    def func_proto(self, ret: int, params: list[tuple[str, int]]) -> int:
        tail = b"".join(struct.pack("<II", self.s(n), t) for n, t in params)
        return self.add("", K_FUNC_PROTO, len(params), size_or_type=ret, tail=tail)

    def func(self, name: str, proto: int) -> int:
        return self.add(name, K_FUNC, vlen=1, size_or_type=proto)  # vlen = linkage (global)

    def blob(self) -> bytes:
        types = b"".join(self.types)
        header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(self.strings))
        return header + types + bytes(self.strings)


@dataclass
class Sample:
    blob: bytes
    ids: dict[str, int] = field(default_factory=dict)
    n_types: int = 0


def build_sample() -> Sample:
    b = BtfBuilder()
    ids: dict[str, int] = {}
    ids["int"] = b.int_("int", 4, encoding=1)
    ids["char"] = b.int_("char", 1)  # unsigned, as with -funsigned-char
    ids["bool"] = b.int_("_Bool", 1, encoding=4)
    ids["ulong"] = b.int_("long unsigned int", 8)
    ids["ptr_foo"] = b.ref(K_PTR, 7)  # forward reference to struct foo
    ids["char16"] = b.array(ids["char"], ids["int"], 16)
    foo_id = b.aggregate(K_STRUCT, "foo", 40, [
        ("a", ids["int"], 0, 0),
        ("b", 8, 32, 3),          # unsigned int b:3
        ("c", 8, 35, 5),          # unsigned int c:5
        ("flag", ids["bool"], 40, 0),
        ("name", ids["char16"], 48, 0),
        ("next", ids["ptr_foo"], 192, 0),
        ("", 9, 256, 0),          # anonymous union
    ])
    assert foo_id == 7
    ids["foo"] = foo_id
    ids["uint"] = b.int_("unsigned int", 4)
    assert ids["uint"] == 8
    ids["anon_union"] = b.aggregate(K_UNION, "", 8, [("x", ids["ulong"], 0, 0), ("y", ids["int"], 0, 0)], kflag=0)
    assert ids["anon_union"] == 9
    ids["color"] = b.enum("color", 4, [("RED", 0), ("GREEN", 1), ("NEG", -1)], signed=True)
    ids["u32"] = b.ref(K_TYPEDEF, ids["uint"], "u32")
    ids["my_u32"] = b.ref(K_TYPEDEF, ids["u32"], "my_u32")
    ids["const_my_u32"] = b.ref(K_CONST, ids["my_u32"])
    ids["proto_do_foo"] = b.func_proto(ids["int"], [("p", ids["ptr_foo"]), ("n", ids["const_my_u32"])])
    ids["do_foo"] = b.func("do_foo", ids["proto_do_foo"])
    ids["big"] = b.enum64("big", [("HUGE", 1 << 40)])
    legacy_bits = b.int_("unsigned int", 4, offset=2, bits=6)
    ids["bar"] = b.aggregate(K_STRUCT, "bar", 8, [("lb", legacy_bits, 0, 0), ("plain", ids["int"], 32, 0)], kflag=0)
    ids["ptr_proto"] = b.ref(K_PTR, ids["proto_do_foo"])
    ids["volatile_int"] = b.ref(K_VOLATILE, ids["int"])
    ids["baz"] = b.aggregate(K_STRUCT, "baz", 56, [
        ("foo", ids["foo"], 0, 0), ("fp", ids["ptr_proto"], 320, 0), ("vol", ids["volatile_int"], 384, 0),
    ])
    ids["opaque"] = b.add("opaque", K_FWD)
    ids["ptr_opaque"] = b.ref(K_PTR, ids["opaque"])
    ids["ptr_void"] = b.ref(K_PTR, 0)
    tp_proto = b.func_proto(0, [("", ids["ptr_void"]), ("", ids["ptr_foo"]), ("", ids["int"])])
    ids["btf_trace_foo_event"] = b.ref(K_TYPEDEF, b.ref(K_PTR, tp_proto), "btf_trace_foo_event")
    named_proto = b.func_proto(0, [("__data", ids["ptr_void"]), ("task", ids["ptr_foo"]), ("val", ids["int"])])
    ids["__bpf_trace_foo_event"] = b.func("__bpf_trace_foo_event", named_proto)
    anon_tp_proto = b.func_proto(0, [("", ids["ptr_void"]), ("", ids["int"])])
    b.ref(K_TYPEDEF, b.ref(K_PTR, anon_tp_proto), "btf_trace_nameless")
    user_char = b.ref(K_TYPE_TAG, ids["char"], "user")
    ids["ptr_user_char"] = b.ref(K_PTR, user_char)
    user_proto = b.func_proto(ids["ulong"], [("ubuf", ids["ptr_user_char"]), ("", 0)])  # (char __user *, ...)
    ids["user_fn"] = b.func("user_fn", user_proto)
    ids["named_u"] = b.aggregate(K_UNION, "named_u", 4, [("i", ids["int"], 0, 0), ("u", ids["uint"], 0, 0)])
    ids["padded"] = b.aggregate(K_STRUCT, "padded", 5, [("x", ids["int"], 0, 0), ("c", ids["char"], 32, 0)])
    return Sample(b.blob(), ids, len(b.types))


@pytest.fixture(scope="module")
def sample() -> Sample:
    return build_sample()


@pytest.fixture(scope="module")
def btf(sample: Sample) -> Btf:
    return Btf.from_bytes(sample.blob)


def test_struct_layout_and_bitfields(btf: Btf) -> None:
    foo = btf.struct("foo")
    assert foo is not None and foo.fields is not None
    assert (foo.kind, foo.tag, foo.size, foo.align) == ("struct", "foo", 40, 8)
    by_name = {f.name: f for f in foo.fields}
    assert by_name["a"].type == I32 and by_name["a"].offset == 0 and by_name["a"].bitfield is None
    assert (by_name["b"].offset, by_name["b"].bitfield, by_name["b"].type) == (4, (0, 3), U32)
    assert (by_name["c"].offset, by_name["c"].bitfield) == (4, (3, 5))
    assert (by_name["flag"].offset, by_name["flag"].type) == (5, U8)  # _Bool reads as u8
    assert by_name["name"].type == ArrayType(I8, 16)  # char arrays: I8 elements for string detection
    assert by_name["name"].offset == 6


def test_pointer_to_struct_is_unresolved(btf: Btf) -> None:
    foo = btf.struct("foo")
    assert foo is not None
    nxt = foo.field("next")
    assert nxt is not None and nxt.offset == 24
    assert isinstance(nxt.type, PointerType)
    pointee = nxt.type.pointee
    assert isinstance(pointee, StructType)
    assert (pointee.kind, pointee.tag, pointee.fields, pointee.size) == ("struct", "foo", None, 40)


def test_anonymous_union_member(btf: Btf) -> None:
    foo = btf.struct("foo")
    assert foo is not None and foo.fields is not None
    anon = foo.fields[-1]
    assert anon.name == "" and anon.offset == 32
    assert isinstance(anon.type, StructType) and anon.type.kind == "union" and anon.type.fields is not None
    x = foo.field("x")
    assert x is not None and x.offset == 32 and x.type == U64
    assert "y" in foo.field_names()


def test_named_union(btf: Btf) -> None:
    u = btf.union("named_u")
    assert u is not None and u.kind == "union" and u.size == 4
    assert [(f.name, f.offset) for f in u.fields or ()] == [("i", 0), ("u", 0)]
    assert btf.struct("named_u") is None and btf.union("foo") is None


def test_legacy_bitfield_encoding(btf: Btf) -> None:
    bar = btf.struct("bar")
    assert bar is not None
    lb, plain = bar.field("lb"), bar.field("plain")
    assert lb is not None and plain is not None
    assert (lb.offset, lb.bitfield) == (0, (2, 6))
    assert (plain.offset, plain.bitfield, plain.type) == (4, None, I32)


def test_nested_struct_by_value_and_function_pointer(btf: Btf) -> None:
    baz = btf.struct("baz")
    assert baz is not None
    inner = baz.field("foo")
    assert inner is not None and isinstance(inner.type, StructType) and inner.type.fields is not None
    assert inner.type is btf.struct("foo")  # conversions are memoised by id
    fp = baz.field("fp")
    assert fp is not None and fp.type == PointerType(VOID) and fp.offset == 40
    vol = baz.field("vol")
    assert vol is not None and vol.type == I32 and vol.offset == 48


def test_packed_struct_alignment(btf: Btf) -> None:
    padded = btf.struct("padded")
    assert padded is not None and padded.size == 5 and padded.align == 1


def test_ints(btf: Btf) -> None:
    assert btf.type_by_name("int") == I32
    assert btf.type_by_name("char") == IntType(8, False)  # scalar char follows its BTF encoding
    assert btf.type_by_name("_Bool") == U8
    assert btf.type_by_name("long unsigned int") == U64
    assert btf.type_by_name("unsigned long") == U64  # C spelling fallback
    assert btf.type_by_name("no_such_type") is None


def test_enums(btf: Btf) -> None:
    color = EnumType("color", 32, True)
    assert btf.enum_value("RED") == (0, color)
    assert btf.enum_value("GREEN") == (1, color)
    assert btf.enum_value("NEG") == (-1, color)
    assert btf.enum_value("HUGE") == (1 << 40, EnumType("big", 64, False))
    assert btf.enum_value("BLUE") is None
    assert btf.enum_value("foo") is None  # a type name, not an enumerator
    assert btf.type_by_name("enum color") == color


def test_typedef_chain_and_qualifiers(btf: Btf) -> None:
    assert btf.typedef("u32") == U32
    assert btf.typedef("my_u32") == U32
    assert btf.type_by_name("my_u32") == U32
    assert btf.typedef("foo") is None


def test_type_by_name_forms(btf: Btf) -> None:
    foo = btf.type_by_name("struct foo")
    assert isinstance(foo, StructType) and foo.fields is not None
    ptr = btf.type_by_name("struct  foo **")
    assert ptr == PointerType(PointerType(StructType("struct", "foo")))
    assert btf.type_by_name("union named_u") == StructType("union", "named_u")
    assert btf.type_by_name("struct missing") is None
    assert btf.type_by_name("void *") == PointerType(VOID)


def test_func(btf: Btf) -> None:
    result = btf.func("do_foo")
    assert result is not None
    params, ret = result
    assert [n for n, _ in params] == ["p", "n"]
    assert params[0][1] == PointerType(StructType("struct", "foo"))
    assert params[1][1] == U32  # const and a typedef chain stripped
    assert ret == I32
    assert btf.func("missing") is None
    assert btf.func("foo") is None


def test_user_pointer_and_varargs(btf: Btf) -> None:
    result = btf.func("user_fn")
    assert result is not None
    params, ret = result
    assert len(params) == 1  # the trailing "..." is dropped
    name, ptype = params[0]
    assert name == "ubuf" and isinstance(ptype, PointerType)
    assert ptype.addrspace == AddrSpace.USER and ptype.pointee == IntType(8, False)
    assert ret == U64


def test_forward_declaration_pointer(btf: Btf, sample: Sample) -> None:
    t = btf.type_by_id(sample.ids["ptr_opaque"])
    assert isinstance(t, PointerType) and isinstance(t.pointee, StructType)
    assert (t.pointee.tag, t.pointee.fields) == ("opaque", None)
    assert btf.struct("opaque") is None  # only declared


def test_raw_tracepoint_args(btf: Btf) -> None:
    args = btf.raw_tracepoint_args("foo_event")
    assert args == [("task", PointerType(StructType("struct", "foo"))), ("val", I32)]
    assert btf.raw_tracepoint_args("cat:foo_event") == args
    assert btf.raw_tracepoint_args("nameless") == [("arg0", I32)]
    assert btf.raw_tracepoint_args("missing") is None


def test_type_ids_and_listings(btf: Btf, sample: Sample) -> None:
    ids = sample.ids
    assert btf.type_id("struct", "foo") == ids["foo"]
    assert btf.type_id("func", "do_foo") == ids["do_foo"]
    assert btf.type_id("typedef", "btf_trace_foo_event") == ids["btf_trace_foo_event"]
    assert btf.type_id("enum", "big") == ids["big"]
    assert btf.type_id("union", "foo") is None
    with pytest.raises(ValueError):
        btf.type_id("bogus", "foo")
    assert set(btf.func_names()) == {"do_foo", "__bpf_trace_foo_event", "user_fn"}
    assert set(btf.struct_names()) == {"foo", "bar", "baz", "padded"}
    assert set(btf.union_names()) == {"named_u"}
    assert btf.type_by_id(0) == VOID
    assert btf.n_types == sample.n_types


def test_malformed_blobs(sample: Sample) -> None:
    with pytest.raises(BtfError):
        Btf.from_bytes(b"\x00" * 24)
    with pytest.raises(BtfError):
        Btf.from_bytes(sample.blob[:20])
    bad = bytearray(sample.blob)
    struct.pack_into("<I", bad, 12, struct.unpack_from("<I", bad, 12)[0] - 4)  # type_len cut by a word
    with pytest.raises(BtfError):
        Btf.from_bytes(bytes(bad))
    swapped = bytearray(sample.blob)
    swapped[0:2] = b"\xeb\x9f"
    with pytest.raises(BtfError, match="big-endian"):
        Btf.from_bytes(bytes(swapped))


def _layout(btf: Btf) -> list[str]:
    return [repr(btf.struct(n)) for n in ("foo", "bar", "baz")] + [repr(btf.enum_value("NEG"))]


def test_cache_roundtrip_corruption_and_staleness(sample: Sample, tmp_path: Path) -> None:
    src = tmp_path / "blob.btf"
    src.write_bytes(sample.blob)
    cache = tmp_path / "cache"
    first = Btf.load(str(src), str(cache))
    assert not first.from_cache
    files = list(cache.iterdir())
    assert len(files) == 1
    second = Btf.load(str(src), str(cache))
    assert second.from_cache and _layout(second) == _layout(first)

    # Corrupt the index: detected by the checksum, silently rebuilt.
    data = bytearray(files[0].read_bytes())
    data[40] ^= 0xFF
    files[0].write_bytes(bytes(data))
    third = Btf.load(str(src), str(cache))
    assert not third.from_cache and _layout(third) == _layout(first)
    assert Btf.load(str(src), str(cache)).from_cache

    # Truncated cache file.
    files[0].write_bytes(files[0].read_bytes()[:-10])
    assert not Btf.load(str(src), str(cache)).from_cache

    # Garbage cache file.
    files[0].write_bytes(b"garbage")
    assert not Btf.load(str(src), str(cache)).from_cache

    # Stale: the source changed (different size and mtime).
    b = BtfBuilder()
    b.aggregate(K_STRUCT, "foo", 4, [("only", b.int_("int", 4, 1), 0, 0)])
    src.write_bytes(b.blob())
    os.utime(src, ns=(1, 1))
    fresh = Btf.load(str(src), str(cache))
    assert not fresh.from_cache
    foo = fresh.struct("foo")
    assert foo is not None and [f.name for f in foo.fields or ()] == ["only"]


def test_unwritable_cache_dir_does_not_fail(sample: Sample, tmp_path: Path) -> None:
    src = tmp_path / "blob.btf"
    src.write_bytes(sample.blob)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    btf = Btf.load(str(src), str(not_a_dir / "cache"))  # makedirs fails: ignored
    assert btf.struct("foo") is not None
    assert not Btf.load(str(src), str(not_a_dir / "cache")).from_cache


def test_default_cache_dir_uses_xdg(sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "blob.btf"
    src.write_bytes(sample.blob)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    Btf.load(str(src))
    assert any((tmp_path / "xdg" / "pytrace").iterdir())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BtfError):
        Btf.load(str(tmp_path / "nope"), str(tmp_path))


# --- (b) the running kernel ---------------------------------------------------------

needs_vmlinux = pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no /sys/kernel/btf/vmlinux")

KERNEL_STRUCTS = ["task_struct", "sock", "sock_common", "sk_buff", "file", "path", "dentry",
                  "mm_struct", "cfs_rq", "sched_entity", "inode", "linux_binprm"]

_TYPE_LINE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
_MEMBER_LINE = re.compile(r"^\t'([^']*)' (.*)$")
_ATTR = re.compile(r"(\w+)=(\S+)")


@dataclass
class DumpType:
    kind: str
    name: str
    attrs: dict[str, str]
    members: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@dataclass
class Dump:
    types: dict[int, DumpType]
    first_id: dict[tuple[str, str], int]

    def strip(self, type_id: int) -> int:
        while type_id and self.types[type_id].kind in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
            type_id = int(self.types[type_id].attrs["type_id"])
        return type_id


def _parse_dump(text: str) -> Dump:
    types: dict[int, DumpType] = {}
    first_id: dict[tuple[str, str], int] = {}
    current: DumpType | None = None
    for line in text.splitlines():
        m = _TYPE_LINE.match(line)
        if m:
            tid, kind, name, rest = int(m[1]), m[2], m[3], m[4]
            current = DumpType(kind, "" if name == "(anon)" else name, dict(_ATTR.findall(rest)))
            types[tid] = current
            first_id.setdefault((kind, current.name), tid)
            continue
        m = _MEMBER_LINE.match(line)
        if m and current is not None:
            current.members.append(("" if m[1] == "(anon)" else m[1], dict(_ATTR.findall(m[2]))))
    return Dump(types, first_id)


@pytest.fixture(scope="module")
def dump() -> Dump:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    out = subprocess.run([bpftool, "btf", "dump", "file", VMLINUX, "format", "raw"],
                         check=True, capture_output=True, text=True).stdout
    return _parse_dump(out)


@pytest.fixture(scope="module")
def kernel_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("btf-cache"))


@pytest.fixture(scope="module")
def kbtf(kernel_cache: str) -> Btf:
    t0 = time.perf_counter()
    btf = Btf.load(VMLINUX, kernel_cache)
    t1 = time.perf_counter()
    btf.struct("task_struct")
    t2 = time.perf_counter()
    print(f"\n[btf] cold load, no cache: {1e3 * (t1 - t0):.1f} ms (from_cache={btf.from_cache}); "
          f"struct('task_struct'): {1e3 * (t2 - t1):.1f} ms")
    return btf


def _check_type_class(dump: Dump, type_id: int, ours: Type, where: str) -> None:
    base = dump.strip(type_id)
    kind = dump.types[base].kind if base else "VOID"
    expected = {
        "INT": (IntType,), "PTR": (PointerType,), "ARRAY": (ArrayType,), "STRUCT": (StructType,),
        "UNION": (StructType,), "ENUM": (EnumType,), "ENUM64": (EnumType,), "VOID": (type(VOID),),
    }.get(kind)
    if expected is not None:
        assert isinstance(ours, expected), f"{where}: BTF {kind}, got {ours!r}"
    if kind in ("STRUCT", "UNION"):
        assert isinstance(ours, StructType) and ours.fields is not None, where
        assert ours.size == int(dump.types[base].attrs["size"]), where


def _compare_aggregate(dump: Dump, type_id: int, ours: StructType, where: str) -> None:
    expected = dump.types[type_id]
    assert ours.fields is not None, where
    assert ours.size == int(expected.attrs["size"]), where
    assert len(ours.fields) == len(expected.members), where
    for f, (name, attrs) in zip(ours.fields, expected.members):
        at = f"{where}.{name or '(anon)'}"
        assert f.name == name, at
        bit = f.offset * 8 + (f.bitfield[0] if f.bitfield else 0)
        assert bit == int(attrs["bits_offset"]), at
        bitfield_size = int(attrs.get("bitfield_size", 0))
        assert (f.bitfield[1] if f.bitfield else 0) == bitfield_size, at
        member_id = int(attrs["type_id"])
        _check_type_class(dump, member_id, f.type, at)
        base = dump.strip(member_id)
        # Recurse into anonymous aggregates: their members are reached through the parent.
        if not name and base and dump.types[base].kind in ("STRUCT", "UNION"):
            assert isinstance(f.type, StructType)
            _compare_aggregate(dump, base, f.type, at)


@pytest.mark.kernel
@needs_vmlinux
@pytest.mark.parametrize("name", KERNEL_STRUCTS)
def test_kernel_struct_matches_bpftool(kbtf: Btf, dump: Dump, name: str) -> None:
    ours = kbtf.struct(name)
    assert ours is not None
    type_id = dump.first_id[("STRUCT", name)]
    assert kbtf.type_id("struct", name) == type_id
    _compare_aggregate(dump, type_id, ours, name)


@pytest.mark.kernel
@needs_vmlinux
def test_kernel_all_aggregates_match_bpftool(kbtf: Btf, dump: Dump) -> None:
    t0 = time.perf_counter()
    count = 0
    for type_id, t in dump.types.items():
        if t.kind in ("STRUCT", "UNION"):
            ours = kbtf.type_by_id(type_id)
            assert isinstance(ours, StructType)
            assert (ours.kind, ours.tag) == (t.kind.lower(), t.name)
            _compare_aggregate(dump, type_id, ours, f"[{type_id}] {t.name or '(anon)'}")
            count += 1
    print(f"\n[btf] compared {count} structs/unions with bpftool in {time.perf_counter() - t0:.2f} s")


@pytest.mark.kernel
@needs_vmlinux
def test_kernel_task_struct_pid(kbtf: Btf, dump: Dump) -> None:
    task = kbtf.struct("task_struct")
    assert task is not None
    pid = task.field("pid")
    assert pid is not None and pid.type == I32 and pid.bitfield is None
    expected = dict(dump.types[dump.first_id[("STRUCT", "task_struct")]].members)["pid"]
    assert pid.offset * 8 == int(expected["bits_offset"])
    comm = task.field("comm")
    assert comm is not None and comm.type == ArrayType(I8, 16)
    se = task.field("se")
    assert se is not None and isinstance(se.type, StructType) and se.type.field("cfs_rq") is not None


@pytest.mark.kernel
@needs_vmlinux
def test_kernel_sched_switch_raw_tracepoint(kbtf: Btf) -> None:
    args = kbtf.raw_tracepoint_args("sched_switch")
    assert args is not None
    assert [n for n, _ in args] == ["preempt", "prev", "next", "prev_state"]
    types = dict(args)
    assert types["preempt"] == U8
    assert types["prev"] == PointerType(StructType("struct", "task_struct"))
    assert types["next"] == types["prev"]
    assert types["prev_state"] == U32


@pytest.mark.kernel
@needs_vmlinux
def test_kernel_vfs_read(kbtf: Btf, dump: Dump) -> None:
    result = kbtf.func("vfs_read")
    assert result is not None
    params, ret = result
    assert [n for n, _ in params] == ["file", "buf", "count", "pos"]
    assert params[0][1] == PointerType(StructType("struct", "file"))
    assert isinstance(params[1][1], PointerType)
    assert params[2][1] == U64
    assert params[3][1] == PointerType(I64)
    assert ret == I64
    assert kbtf.type_id("func", "vfs_read") == dump.first_id[("FUNC", "vfs_read")]
    assert kbtf.type_id("typedef", "btf_trace_sched_switch") == dump.first_id[("TYPEDEF", "btf_trace_sched_switch")]


def _enumerators(dump: Dump) -> Iterator[tuple[str, int, str]]:
    for t in dump.types.values():
        if t.kind in ("ENUM", "ENUM64"):
            for name, attrs in t.members:
                yield name, int(attrs["val"].rstrip("UL")), t.name


@pytest.mark.kernel
@needs_vmlinux
def test_kernel_enum_values(kbtf: Btf, dump: Dump) -> None:
    value, enum_type = kbtf.enum_value("BPF_MAP_TYPE_HASH") or (None, None)
    assert value == 1 and enum_type == EnumType("bpf_map_type", 32, False)
    expected = {name: (val, tag) for name, val, tag in reversed(list(_enumerators(dump)))}
    for name in ("SKB_DROP_REASON_NOT_SPECIFIED", "BPF_PROG_TYPE_KPROBE", "PERF_CONTEXT_KERNEL"):
        if name in expected:
            got = kbtf.enum_value(name)
            assert got is not None and (got[0], got[1].tag) == expected[name], name
    assert kbtf.enum_value("TASK_RUNNING") is None  # a #define, not an enumerator


@pytest.mark.kernel
@needs_vmlinux
def test_kernel_warm_cache_identical(kbtf: Btf, kernel_cache: str) -> None:
    t0 = time.perf_counter()
    warm = Btf.load(VMLINUX, kernel_cache)
    t1 = time.perf_counter()
    assert warm.from_cache
    for name in KERNEL_STRUCTS:
        assert repr(warm.struct(name)) == repr(kbtf.struct(name)), name
    assert warm.func("vfs_read") == kbtf.func("vfs_read")
    assert warm.raw_tracepoint_args("sched_switch") == kbtf.raw_tracepoint_args("sched_switch")
    assert warm.enum_value("BPF_MAP_TYPE_HASH") == kbtf.enum_value("BPF_MAP_TYPE_HASH")
    print(f"\n[btf] warm load (same process): {1e3 * (t1 - t0):.2f} ms")


_FRESH_PROCESS = """
import sys, time
t0 = time.perf_counter()
from pytrace.kernel.btf import Btf
t1 = time.perf_counter()
btf = Btf.load(cache_dir=sys.argv[1])
t2 = time.perf_counter()
task = btf.struct("task_struct")
t3 = time.perf_counter()
btf.struct("task_struct")
t4 = time.perf_counter()
assert btf.from_cache and task is not None
print(f"import {1e3*(t1-t0):.2f} ms, load {1e3*(t2-t1):.2f} ms, first struct('task_struct') "
      f"{1e3*(t3-t2):.2f} ms, again {1e6*(t4-t3):.1f} us")
"""


@pytest.mark.kernel
@needs_vmlinux
def test_kernel_fresh_process_timing(kbtf: Btf, kernel_cache: str) -> None:
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, kernel_cache], check=True,
                         capture_output=True, text=True, env=env).stdout
    print(f"\n[btf] fresh process, warm cache: {out.strip()}")
