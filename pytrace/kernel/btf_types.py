"""Conversion of BTF type records into ``pytrace.semantic.types``.

This module owns the mapping rules (what a BTF INT, PTR, STRUCT... becomes)
and the per-type-id memo that makes repeated conversions free.  It reads the
blob only through ``BtfData``.

Rules:

* INT -> ``IntType(size * 8, signed)`` from the BTF encoding; ``_Bool`` -> ``U8``
  (as bpftrace does).  ``char`` follows its encoding (the kernel is built with
  ``-funsigned-char`` since 6.2, so it is usually unsigned) except as an array
  element, where it is always ``I8`` so callers can spot C strings the same way
  on every kernel.
* PTR -> ``PointerType(pointee)``.  A named struct/union pointee (or a
  forward declaration) is *not* expanded: it becomes
  ``StructType(kind, tag, fields=None, byte_size=size)`` and the caller resolves
  it with ``Btf.struct(tag)`` when it is dereferenced.  This keeps conversion
  proportional to what a script touches instead of the whole type graph.
  Anonymous pointees have no tag to resolve later, so they are expanded.
  Function pointers -> ``PointerType(VoidType())``.  A ``__user`` type tag
  (``btf_type_tag("user")``) yields ``AddrSpace.USER``; everything else is
  ``AddrSpace.NONE`` (the probe context decides).
* STRUCT/UNION by value -> fully converted ``StructType``; anonymous members
  have name ``""``.  Field offsets are in bytes; for bitfields
  ``Field.offset = bit_offset // 8`` and ``Field.bitfield =
  (bit_offset % 8, bit_size)``: read ``ceil((bit + size) / 8)`` little-endian
  bytes at ``offset``, shift right by ``bit``, mask ``size`` bits (bpftrace's
  layout).  Both kind_flag encodings are handled (``bitfield_size << 24 |
  bit_offset`` in the member, or the legacy INT encoding offset/nr_bits).
* ENUM/ENUM64 -> ``EnumType(tag, size * 8, signed=kind_flag)``.
* TYPEDEF, CONST, VOLATILE, RESTRICT, TYPE_TAG -> their target.
* ARRAY -> ``ArrayType(element, nelems)``.
* FLOAT -> ``ArrayType(U8, size)``: the type model has no floats; opaque bytes
  keep sizes and offsets right and refuse arithmetic.
"""

from __future__ import annotations

from pytrace.kernel.btf_format import (
    INT_BOOL,
    INT_SIGNED,
    KIND_ARRAY,
    KIND_CONST,
    KIND_ENUM,
    KIND_ENUM64,
    KIND_FLOAT,
    KIND_FUNC_PROTO,
    KIND_FWD,
    KIND_INT,
    KIND_PTR,
    KIND_RESTRICT,
    KIND_STRUCT,
    KIND_TYPE_TAG,
    KIND_TYPEDEF,
    KIND_UNION,
    KIND_VOLATILE,
    BtfData,
    BtfError,
)
from pytrace.semantic.types import (
    I8,
    U8,
    VOID,
    AddrSpace,
    ArrayType,
    EnumType,
    Field,
    IntType,
    PointerType,
    StructType,
    Type,
)

_QUALIFIERS = frozenset({KIND_TYPEDEF, KIND_CONST, KIND_VOLATILE, KIND_RESTRICT, KIND_TYPE_TAG})
# A chain of typedefs/qualifiers longer than this can only be a malformed loop.
_MAX_CHAIN = 64


class TypeConverter:
    """Converts type ids to semantic types, memoised by id."""

    def __init__(self, data: BtfData) -> None:
        self._data = data
        self._memo: dict[int, Type] = {}
        # Ids being converted right now; only malformed BTF can revisit one.
        self._active: set[int] = set()

    def convert(self, type_id: int) -> Type:
        t = self._memo.get(type_id)
        if t is None:
            if type_id in self._active:
                raise BtfError(f"malformed BTF: type {type_id} contains itself")
            self._active.add(type_id)
            try:
                t = self._convert(type_id)
            finally:
                self._active.discard(type_id)
            self._memo[type_id] = t
        return t

    def strip(self, type_id: int) -> int:
        """Follow typedefs and qualifiers to the underlying type id."""
        data = self._data
        for _ in range(_MAX_CHAIN):
            if type_id > data.n_types:
                raise BtfError(f"malformed BTF: reference to type {type_id} of {data.n_types}")
            if type_id == 0 or data.kind(type_id) not in _QUALIFIERS:
                return type_id
            type_id = data.words[data.record(type_id) + 2]
        raise BtfError("malformed BTF: typedef/qualifier chain too long")

    def func_proto(self, type_id: int) -> tuple[list[tuple[str, Type]], Type] | None:
        """Parameters and return type of a FUNC_PROTO (after stripping), or None.

        A trailing ``...`` (encoded as an unnamed void parameter) is dropped.
        """
        type_id = self.strip(type_id)
        data = self._data
        if type_id == 0 or data.kind(type_id) != KIND_FUNC_PROTO:
            return None
        words = data.words
        rec = data.record(type_id)
        params: list[tuple[str, Type]] = []
        for j in range(words[rec + 1] & 0xFFFF):
            m = rec + 3 + 2 * j
            name_off, ptype = words[m], words[m + 1]
            if ptype == 0 and name_off == 0:
                continue
            params.append((data.string(name_off), self.convert(ptype)))
        return params, self.convert(words[rec + 2])

    # --- per-kind conversion ------------------------------------------------

    def _convert(self, type_id: int) -> Type:
        if type_id == 0:
            return VOID
        data = self._data
        if type_id > data.n_types:
            raise BtfError(f"malformed BTF: reference to type {type_id} of {data.n_types}")
        words = data.words
        rec = data.record(type_id)
        info = words[rec + 1]
        kind = (info >> 24) & 0x1F
        if kind in _QUALIFIERS:
            return self.convert(words[rec + 2])
        if kind == KIND_INT:
            return self._int(rec)
        if kind == KIND_PTR:
            return self._pointer(words[rec + 2])
        if kind == KIND_ARRAY:
            elem_id, _index_type, count = words[rec + 3], words[rec + 4], words[rec + 5]
            return ArrayType(self._array_element(elem_id), count)
        if kind == KIND_STRUCT or kind == KIND_UNION:
            return self._struct(rec, info)
        if kind == KIND_ENUM or kind == KIND_ENUM64:
            signed = bool(info >> 31)
            names = []
            # Enumerators follow: ENUM {name, i32 value}, ENUM64 {name, lo, hi}.
            step = 2 if kind == KIND_ENUM else 3
            for j in range(info & 0xFFFF):
                m = rec + 3 + step * j
                value = words[m + 1] if kind == KIND_ENUM else words[m + 1] | (words[m + 2] << 32)
                if signed and kind == KIND_ENUM and value >= 1 << 31:
                    value -= 1 << 32
                names.append((value, data.string(words[m])))
            return EnumType(data.string(words[rec]), words[rec + 2] * 8, signed, names=tuple(names))
        if kind == KIND_FWD:
            return StructType("union" if info >> 31 else "struct", data.string(words[rec]), None)
        if kind == KIND_FLOAT:
            return ArrayType(U8, words[rec + 2])
        # FUNC, FUNC_PROTO, VAR, DATASEC, DECL_TAG: not value types.
        return VOID

    def _int(self, rec: int) -> Type:
        words = self._data.words
        size, encoding = words[rec + 2], (words[rec + 3] >> 24) & 0x0F
        if encoding & INT_BOOL:
            return U8
        return IntType(size * 8, bool(encoding & INT_SIGNED))

    def _array_element(self, elem_id: int) -> Type:
        base = self.strip(elem_id)
        data = self._data
        if base and data.kind(base) == KIND_INT and data.name(base) == "char":
            return I8
        return self.convert(elem_id)

    def _pointer(self, target: int) -> Type:
        data = self._data
        words = data.words
        space = AddrSpace.NONE
        # Walk qualifiers by hand (not strip()) to notice a __user type tag.
        for _ in range(_MAX_CHAIN):
            if target == 0:
                return PointerType(VOID, space)
            if target > data.n_types:
                raise BtfError(f"malformed BTF: reference to type {target} of {data.n_types}")
            rec = data.record(target)
            kind = (words[rec + 1] >> 24) & 0x1F
            if kind not in _QUALIFIERS:
                break
            if kind == KIND_TYPE_TAG and data.string(words[rec]) == "user":
                space = AddrSpace.USER
            target = words[rec + 2]
        else:
            raise BtfError("malformed BTF: typedef/qualifier chain too long")
        if kind == KIND_FUNC_PROTO:
            return PointerType(VOID, space)
        if kind in (KIND_STRUCT, KIND_UNION, KIND_FWD):
            tag = data.string(words[rec])
            if tag:
                if kind == KIND_FWD:
                    return PointerType(StructType("union" if words[rec + 1] >> 31 else "struct", tag, None), space)
                struct_kind = "union" if kind == KIND_UNION else "struct"
                return PointerType(StructType(struct_kind, tag, None, words[rec + 2]), space)
        if target in self._active:
            # Only malformed BTF can point back into a type being expanded
            # without going through a name; degrade instead of recursing.
            return PointerType(VOID, space)
        return PointerType(self.convert(target), space)

    def _struct(self, rec: int, info: int) -> StructType:
        data = self._data
        words = data.words
        kind = "union" if (info >> 24) & 0x1F == KIND_UNION else "struct"
        tag = data.string(words[rec])
        size = words[rec + 2]
        kind_flag = info >> 31
        fields: list[Field] = []
        align = 1
        convert, string = self.convert, data.string
        for m in range(rec + 3, rec + 3 + 3 * (info & 0xFFFF), 3):
            member_type_id, raw_offset = words[m + 1], words[m + 2]
            ftype = convert(member_type_id)
            if kind_flag:
                bit_offset, bit_size = raw_offset & 0xFFFFFF, raw_offset >> 24
            else:
                bit_offset, bit_size = raw_offset, 0
                # Only an INT can carry a legacy bitfield encoding.
                if type(ftype) is IntType:
                    extra, legacy_size = self._legacy_bitfield(member_type_id)
                    if legacy_size:
                        bit_offset, bit_size = bit_offset + extra, legacy_size
            if not bit_size and bit_offset % 8:
                # Not byte aligned yet not marked as a bitfield: only possible in
                # hand-made BTF; describe it as a full-width bitfield.
                bit_size = ftype.size * 8
            bitfield = (bit_offset % 8, bit_size) if bit_size else None
            fields.append(Field(string(words[m]), ftype, bit_offset // 8, bitfield))
            align = max(align, ftype.align)
        if size % align:
            align = 1  # packed: the size is not a multiple of the members' alignment
        return StructType(kind, tag, tuple(fields), size, align)

    def _legacy_bitfield(self, member_type_id: int) -> tuple[int, int]:
        """``(extra bit offset, bit size)`` of a kind_flag=0 bitfield member,
        whose INT type carries the bitfield in its encoding; (0, 0) otherwise."""
        base = self.strip(member_type_id)
        data = self._data
        if base == 0 or data.kind(base) != KIND_INT:
            return 0, 0
        rec = data.record(base)
        size, encoding = data.words[rec + 2], data.words[rec + 3]
        int_offset, nr_bits = (encoding >> 16) & 0xFF, encoding & 0xFF
        if int_offset or nr_bits != size * 8:
            return int_offset, nr_bits
        return 0, 0


def c_spelling(data: BtfData, type_id: int) -> str:
    """How C (and bpftrace's ``-lv``) spells type ``type_id``: typedef names
    kept (``size_t``), ``struct file *``, ``const char *``, ``u8[16]``; a
    function pointer as ``void (*)(...)``-like ``ret (*)()``."""
    words = data.words
    suffix = ""
    prefix = ""
    for _ in range(_MAX_CHAIN):
        if type_id == 0:
            return f"{prefix}void{suffix}"
        kind = data.kind(type_id)
        rec = data.record(type_id)
        name = data.name(type_id)
        if kind in (KIND_INT, KIND_TYPEDEF, KIND_FLOAT):
            return f"{prefix}{name}{suffix}"
        if kind in (KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FWD):
            tag = "union" if kind == KIND_UNION or (kind == KIND_FWD and words[rec + 1] >> 31) else \
                "enum" if kind in (KIND_ENUM, KIND_ENUM64) else "struct"
            return f"{prefix}{tag} {name or '(anonymous)'}{suffix}"
        if kind == KIND_PTR:
            target = words[rec + 2]
            if target and data.kind(target) == KIND_FUNC_PROTO:
                ret = c_spelling(data, words[data.record(target) + 2])
                return f"{prefix}{ret} (*){suffix}"
            suffix = " *" + suffix
            type_id = target
            continue
        if kind == KIND_CONST:
            prefix = "const " + prefix
        elif kind == KIND_VOLATILE:
            prefix = "volatile " + prefix
        elif kind == KIND_ARRAY:
            elem, _index, nelems = words[rec + 3], words[rec + 4], words[rec + 5]
            return f"{prefix}{c_spelling(data, elem)}[{nelems}]{suffix}"
        elif kind == KIND_FUNC_PROTO:
            return f"{prefix}{c_spelling(data, words[rec + 2])} (){suffix}"
        # RESTRICT, TYPE_TAG and other qualifiers: spelled as their target.
        type_id = words[rec + 2]
    raise BtfError("malformed BTF: typedef/qualifier chain too long")
