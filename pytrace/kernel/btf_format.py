"""The BTF binary format: header, type records, string section, type-id index.

This module owns raw access to a BTF blob (as produced by pahole / the kernel's
``/sys/kernel/btf/vmlinux``) and nothing else: no semantic types, no caching
policy.  ``BtfData`` wraps a buffer (``bytes`` or a read-only ``mmap``) plus a
``TypeIndex``: the word offset of every type record (type ids are
positional, so finding type N means knowing where types 1..N-1 end) and the
name offset of every type.  Everything else is answered straight from the
buffer with C-speed ``find`` calls instead of Python-level dictionaries, which
would cost ~100 ms to build for vmlinux:

* name -> ids: find ``\\0name`` in the string section (strings are
  deduplicated, so the first exact hit is the one), then find that 4-byte
  string offset in the index's name column and keep the ids of the wanted kind;
* enumerator -> enum: find the string offset in the type section itself and
  keep hits that fall on an enumerator record of an ENUM/ENUM64 type (the
  enclosing record is found by bisection in the offset column).

Format reference: https://docs.kernel.org/bpf/btf.html.  Only little-endian
(native) BTF is supported, which is what every BPF-capable x86_64/arm64 kernel
exposes.
"""

from __future__ import annotations

import mmap
import struct
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from operator import itemgetter
from typing import Union

BTF_MAGIC = 0xEB9F
HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len

KIND_UNKN = 0
KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

# Names accepted by Btf.type_id(kind, name), mapped to the BTF kinds they cover.
KIND_BY_NAME: dict[str, tuple[int, ...]] = {
    "int": (KIND_INT,),
    "struct": (KIND_STRUCT,),
    "union": (KIND_UNION,),
    "enum": (KIND_ENUM, KIND_ENUM64),
    "enum64": (KIND_ENUM64,),
    "fwd": (KIND_FWD,),
    "typedef": (KIND_TYPEDEF,),
    "func": (KIND_FUNC,),
    "var": (KIND_VAR,),
    "datasec": (KIND_DATASEC,),
    "float": (KIND_FLOAT,),
    "decl_tag": (KIND_DECL_TAG,),
    "type_tag": (KIND_TYPE_TAG,),
}

# BTF_INT_ENCODING bits.
INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

# Record length in 32-bit words = _STEP_BASE[info >> 24] + _STEP_PER[info >> 24] * vlen.
# Indexed by the whole top byte of ``info`` (kind in bits 24..28, kind_flag in
# bit 31) so the hot loop needs no masking.  Bits 29..30 must be zero and kinds
# above ENUM64 are unknown: both get a step so large that the scan overshoots
# the section end and reports the blob as malformed, without an extra branch
# in the loop.
_INVALID_STEP = 1 << 40
_BASE_BY_KIND = {
    KIND_INT: 4, KIND_PTR: 3, KIND_ARRAY: 6, KIND_STRUCT: 3, KIND_UNION: 3, KIND_ENUM: 3,
    KIND_FWD: 3, KIND_TYPEDEF: 3, KIND_VOLATILE: 3, KIND_CONST: 3, KIND_RESTRICT: 3,
    KIND_FUNC: 3, KIND_FUNC_PROTO: 3, KIND_VAR: 4, KIND_DATASEC: 3, KIND_FLOAT: 3,
    KIND_DECL_TAG: 4, KIND_TYPE_TAG: 3, KIND_ENUM64: 3,
}
_PER_MEMBER_BY_KIND = {
    KIND_STRUCT: 3, KIND_UNION: 3, KIND_ENUM: 2, KIND_FUNC_PROTO: 2, KIND_DATASEC: 3, KIND_ENUM64: 3,
}
_STEP_BASE: tuple[int, ...] = tuple(
    _BASE_BY_KIND.get(top & 0x1F, _INVALID_STEP) if not top & 0x60 else _INVALID_STEP
    for top in range(256)
)
_STEP_PER: tuple[int, ...] = tuple(_PER_MEMBER_BY_KIND.get(top & 0x1F, 0) for top in range(256))

Buffer = Union[bytes, bytearray, mmap.mmap]
# Word offsets of the type records: an array when scanned, a zero-copy
# memoryview of the cache mmap when loaded.
Offsets = Union[array, memoryview]


class BtfError(Exception):
    """The BTF blob is missing, malformed or of an unsupported flavour."""


class TypeIndex:
    """The per-type columns every lookup needs, built by one scan.

    ``offsets[i]`` is the word index (in the type section) of the record of
    type id ``i + 1``.  The name offset of each type is kept as little-endian
    uint32 bytes in ``names_buf[names_at:names_at + 4 * n]`` rather than as an
    array, so ``find()`` can search it at C speed (it is either a ``bytes`` of
    its own or a window of the cache mmap).
    """

    __slots__ = ("offsets", "names_buf", "names_at")

    def __init__(self, offsets: Offsets, names_buf: Buffer, names_at: int = 0) -> None:
        self.offsets, self.names_buf, self.names_at = offsets, names_buf, names_at

    def names_bytes(self) -> memoryview:
        return memoryview(self.names_buf)[self.names_at:self.names_at + 4 * len(self.offsets)]


def scan_type_index(words: memoryview) -> TypeIndex:
    """Find the start and name of every type record in the type section.

    This is the one unavoidable O(number of types) Python loop (~126k
    iterations for vmlinux, ~30-40 ms); it is kept minimal on purpose and its
    result is what the on-disk cache stores.
    """
    offsets: list[int] = []
    add_offset = offsets.append
    base, per = _STEP_BASE, _STEP_PER
    i, n = 0, len(words) - 1  # a record needs at least its info word (i + 1)
    while i < n:
        add_offset(i)
        info = words[i + 1]
        top = info >> 24
        i += base[top] + per[top] * (info & 0xFFFF)
    if i != len(words):
        raise BtfError("malformed BTF: type records do not tile the type section")
    # Gathering the names at C speed afterwards beats a second append in the loop.
    if len(offsets) > 1:
        names = array("I", itemgetter(*offsets)(words))
    else:
        names = array("I", [words[i] for i in offsets])
    return TypeIndex(array("I", offsets), names.tobytes())


def find_u32(buf: Buffer, value: int, start: int, end: int) -> Iterator[int]:
    """Positions of 4-byte-aligned (relative to ``start``) little-endian
    ``value`` in ``buf[start:end]``, as word indices relative to ``start``.

    The needle is cut after its last non-zero byte: find() skips quickly only
    when the needle's last byte is rare, and the high bytes of small numbers
    are zero, the most common byte in BTF.  Hits are then checked in full.
    """
    full = struct.pack("<I", value)
    needle = full.rstrip(b"\0") or b"\0"
    pos = buf.find(needle, start, end)
    while pos >= 0:
        rel = pos - start
        if rel & 3 == 0 and pos + 4 <= end and buf[pos:pos + 4] == full:
            yield rel >> 2
        pos = buf.find(needle, pos + 1, end)


class BtfData:
    """A BTF blob plus its type-offset index, with raw accessors.

    Type ids are 1-based (id 0 is ``void``); ``offsets[id - 1]`` is the word
    index of the record in ``words`` (the type section viewed as uint32).
    """

    __slots__ = ("buf", "base", "size", "words", "index", "offsets", "n_types",
                 "type_start", "type_end", "str_start", "str_end")

    def __init__(self, buf: Buffer, index: TypeIndex | None = None, base: int = 0, size: int | None = None) -> None:
        """``buf[base:base + size]`` is the blob (a window lets the cache mmap
        its file once and use it in place); all positions kept are absolute
        indices into ``buf``."""
        size = len(buf) - base if size is None else size
        if size < HEADER.size or base + size > len(buf):
            raise BtfError("BTF blob too short for its header")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(buf, base)
        if magic != BTF_MAGIC:
            if magic == 0x9FEB:
                raise BtfError("big-endian BTF is not supported")
            raise BtfError(f"bad BTF magic {magic:#x}")
        if version != 1:
            raise BtfError(f"unsupported BTF version {version}")
        self.buf, self.base, self.size = buf, base, size
        self.type_start = base + hdr_len + type_off
        self.type_end = self.type_start + type_len
        self.str_start = base + hdr_len + str_off
        self.str_end = self.str_start + str_len
        if (self.type_end > base + size or self.str_end > base + size or type_len % 4
                or (str_len and buf[self.str_start] != 0)):
            raise BtfError("malformed BTF header")
        self.words = memoryview(buf)[self.type_start:self.type_end].cast("I")
        self.index = scan_type_index(self.words) if index is None else index
        self.offsets = self.index.offsets
        self.n_types = len(self.offsets)

    def blob(self) -> memoryview:
        """The BTF blob itself (for writing the cache)."""
        return memoryview(self.buf)[self.base:self.base + self.size]

    # --- raw record access --------------------------------------------------

    def record(self, type_id: int) -> int:
        """Word index of the record of ``type_id`` (1-based)."""
        return self.offsets[type_id - 1]

    def kind(self, type_id: int) -> int:
        return (self.words[self.offsets[type_id - 1] + 1] >> 24) & 0x1F

    def name(self, type_id: int) -> str:
        return self.string(self.words[self.offsets[type_id - 1]])

    def string(self, offset: int) -> str:
        start = self.str_start + offset
        end = self.buf.find(b"\0", start, self.str_end)
        if end < 0:
            raise BtfError(f"string offset {offset} is not NUL-terminated")
        # surrogateescape so that any byte string round-trips through lookups.
        return self.buf[start:end].decode("utf-8", "surrogateescape")

    # --- searching ----------------------------------------------------------

    def string_offset(self, name: str) -> int | None:
        """Offset of ``name`` in the string section.

        The first occurrence is the only one: libbpf's string set (used by
        pahole and by the kernel for module BTF) deduplicates strings, so
        scanning on for duplicates would only double the cost of a lookup.
        """
        if not name or "\0" in name:
            return None
        encoded = name.encode("utf-8", "surrogateescape")
        # No trailing NUL in the needle (see find_u32): check it per hit.
        needle, after = b"\0" + encoded, len(encoded) + 1
        buf, end = self.buf, self.str_end
        pos = buf.find(needle, self.str_start, end)
        while pos >= 0:
            if pos + after < end and buf[pos + after] == 0:
                return pos + 1 - self.str_start
            pos = buf.find(needle, pos + 1, end)
        return None

    def ids_named(self, name: str, kinds: tuple[int, ...]) -> list[int]:
        """Ids of the types called ``name`` whose kind is in ``kinds``, ascending."""
        index, words = self.index, self.words
        offsets, at = index.offsets, index.names_at
        str_off = self.string_offset(name)
        if str_off is None:
            return []
        return [idx + 1 for idx in find_u32(index.names_buf, str_off, at, at + 4 * self.n_types)
                if (words[offsets[idx] + 1] >> 24) & 0x1F in kinds]

    def enumerator(self, name: str) -> tuple[int, int] | None:
        """``(enum type id, value)`` of the enumerator called ``name``."""
        offsets, words = self.offsets, self.words
        str_off = self.string_offset(name)
        if str_off is not None:
            # Enumerator names live inside ENUM records, so search the whole
            # type section; the enclosing record is found by bisection.
            for w in find_u32(self.buf, str_off, self.type_start, self.type_end):
                idx = bisect_right(offsets, w) - 1
                if idx < 0:
                    continue
                rec = offsets[idx]
                info = words[rec + 1]
                kind = (info >> 24) & 0x1F
                if kind == KIND_ENUM:
                    stride = 2
                elif kind == KIND_ENUM64:
                    stride = 3
                else:
                    continue
                rel = w - (rec + 3)
                if rel < 0 or rel % stride or rel // stride >= info & 0xFFFF:
                    continue
                signed = bool(info >> 31)
                if kind == KIND_ENUM:
                    value = words[w + 1]
                    if signed and value >= 1 << 31:
                        value -= 1 << 32
                else:
                    value = words[w + 1] | (words[w + 2] << 32)
                    if signed and value >= 1 << 63:
                        value -= 1 << 64
                return idx + 1, value
        return None

    def ids_of_kind(self, kinds: tuple[int, ...]) -> Iterator[int]:
        """All ids whose kind is in ``kinds`` (a full walk: for listings only)."""
        words = self.words
        for idx, rec in enumerate(self.offsets):
            if (words[rec + 1] >> 24) & 0x1F in kinds:
                yield idx + 1
