"""The type model: every expression, map key and map value gets one of these.

Types are small frozen dataclasses, compared by value.  Sizes and alignments
follow the x86_64 ABI that BPF shares.  Integer promotion follows bpftrace:
arithmetic between integers widens to 64 bits, unsigned if either side is.
"""

from __future__ import annotations

from enum import Enum

from ..records import dataclass, field


class Type:
    """Base class of all types."""

    @property
    def size(self) -> int:
        raise NotImplementedError

    @property
    def align(self) -> int:
        return min(max(self.size, 1), 8)

    def is_integer(self) -> bool:
        return False

    def name(self) -> str:
        return str(self)


@dataclass(frozen=True)
class VoidType(Type):
    @property
    def size(self) -> int:
        return 0

    def __str__(self) -> str:
        return "none"


@dataclass(frozen=True)
class IntType(Type):
    bits: int = 64
    signed: bool = False

    @property
    def size(self) -> int:
        return self.bits // 8

    def is_integer(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"{'' if self.signed else 'u'}int{self.bits}"


@dataclass(frozen=True)
class BoolType(Type):
    @property
    def size(self) -> int:
        return 1

    def is_integer(self) -> bool:
        # bool takes part in arithmetic and conditions as 0/1, as in bpftrace.
        return True

    def __str__(self) -> str:
        return "bool"


@dataclass(frozen=True)
class StringType(Type):
    """A NUL-padded fixed-size string (``string[64]``)."""

    length: int = 64

    @property
    def size(self) -> int:
        return self.length

    @property
    def align(self) -> int:
        return 1

    def __str__(self) -> str:
        return f"string[{self.length}]"


@dataclass(frozen=True)
class BufferType(Type):
    """``buf()`` result: a length byte plus bytes, printed with ``%r``."""

    length: int = 64

    @property
    def size(self) -> int:
        return self.length + 1

    @property
    def align(self) -> int:
        return 1

    def __str__(self) -> str:
        return f"buffer[{self.length}]"


class AddrSpace(Enum):
    KERNEL = "kernel"
    USER = "user"
    NONE = "none"


@dataclass(frozen=True)
class PointerType(Type):
    pointee: Type = field(default_factory=VoidType)
    addrspace: AddrSpace = AddrSpace.NONE

    @property
    def size(self) -> int:
        return 8

    def __str__(self) -> str:
        return f"{self.pointee} *"


@dataclass(frozen=True)
class ArrayType(Type):
    element: Type = field(default_factory=IntType)
    count: int = 0

    @property
    def size(self) -> int:
        return self.element.size * self.count

    @property
    def align(self) -> int:
        return self.element.align

    def __str__(self) -> str:
        return f"{self.element}[{self.count}]"


@dataclass(frozen=True)
class Field:
    name: str
    type: Type
    offset: int
    bitfield: tuple[int, int] | None = None  # (bit offset within the unit, bit width)


@dataclass(frozen=True, eq=False)
class StructType(Type):
    """A struct or union.  ``fields`` is None while the layout is unknown
    (declared by name only; resolved from BTF or a script definition)."""

    kind: str = "struct"  # "struct" | "union"
    tag: str = ""
    fields: tuple[Field, ...] | None = None
    byte_size: int = 0
    byte_align: int = 1

    @property
    def size(self) -> int:
        return self.byte_size

    @property
    def align(self) -> int:
        return self.byte_align

    def field(self, name: str) -> Field | None:
        """Find a field by name, looking through anonymous struct/union members."""
        for f in self.fields or ():
            if f.name == name:
                return f
            if not f.name and isinstance(f.type, StructType):
                inner = f.type.field(name)
                if inner is not None:
                    return Field(inner.name, inner.type, f.offset + inner.offset, inner.bitfield)
        return None

    def field_names(self) -> list[str]:
        names: list[str] = []
        for f in self.fields or ():
            if f.name:
                names.append(f.name)
            elif isinstance(f.type, StructType):
                names.extend(f.type.field_names())
        return names

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StructType) and (self.kind, self.tag) == (other.kind, other.tag)

    def __hash__(self) -> int:
        return hash((self.kind, self.tag))

    def __str__(self) -> str:
        return f"{self.kind} {self.tag}" if self.tag else f"{self.kind} <anon>"


@dataclass(frozen=True)
class EnumType(Type):
    tag: str = ""
    bits: int = 32
    signed: bool = False
    # (value, name) of each enumerator, for printf's %s (bpftrace 0.22):
    # the name of a value, or the value when no enumerator has it.
    names: tuple[tuple[int, str], ...] = field(default=(), compare=False)

    def name_of(self, value: int) -> str:
        for v, n in self.names:
            if v == value:
                return n
        return str(value)

    @property
    def size(self) -> int:
        return self.bits // 8

    def is_integer(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"enum {self.tag}"


@dataclass(frozen=True)
class TupleType(Type):
    elements: tuple[Type, ...] = ()

    def offsets(self) -> list[int]:
        out, off = [], 0
        for t in self.elements:
            off = _align_up(off, t.align)
            out.append(off)
            off += t.size
        return out

    @property
    def size(self) -> int:
        off = 0
        for t in self.elements:
            off = _align_up(off, t.align) + t.size
        return _align_up(off, self.align)

    @property
    def align(self) -> int:
        return max((t.align for t in self.elements), default=1)

    def __str__(self) -> str:
        return "(" + ", ".join(map(str, self.elements)) + ")"


class StackMode(Enum):
    BPFTRACE = "bpftrace"
    PERF = "perf"
    RAW = "raw"


@dataclass(frozen=True)
class StackType(Type):
    user: bool = False
    limit: int = 127
    mode: StackMode = StackMode.BPFTRACE

    @property
    def size(self) -> int:
        # stack id (8) + pid (for user stacks, symbolised per process) packed in 16 bytes
        return 16

    def __str__(self) -> str:
        return ("ustack" if self.user else "kstack") + f"({self.mode.value}, {self.limit})"


class SymbolKind(Enum):
    KSYM = "ksym"
    USYM = "usym"
    USERNAME = "username"
    INET = "inet"          # ntop() result
    CGROUP_PATH = "cgroup_path"
    TIMESTAMP = "timestamp"
    MACADDR = "macaddr"
    PROBE = "probe"         # the 'probe' builtin: an index into the probe name table
    FUNC = "func"
    KADDR = "kaddr"
    STRERROR = "strerror"


@dataclass(frozen=True)
class SymbolType(Type):
    """A value resolved to text in user space (ksym, usym, username, ntop, ...)."""

    kind: SymbolKind = SymbolKind.KSYM
    byte_size: int = 8

    @property
    def size(self) -> int:
        return self.byte_size

    def __str__(self) -> str:
        return self.kind.value


class AggKind(Enum):
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    STATS = "stats"
    HIST = "hist"
    LHIST = "lhist"


@dataclass(frozen=True)
class AggregationType(Type):
    """The value of a map assigned from an aggregation function."""

    kind: AggKind = AggKind.COUNT
    signed: bool = False
    params: tuple[int, ...] = ()  # hist: (bits,), lhist: (min, max, step)

    @property
    def size(self) -> int:
        return 8

    def __str__(self) -> str:
        p = ", ".join(map(str, self.params))
        return f"{self.kind.value}_t" + (f"({p})" if p else "")


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


# Common instances.
VOID = VoidType()
BOOL = BoolType()
U8, U16, U32, U64 = IntType(8, False), IntType(16, False), IntType(32, False), IntType(64, False)
I8, I16, I32, I64 = IntType(8, True), IntType(16, True), IntType(32, True), IntType(64, True)

INT_TYPE_NAMES: dict[str, IntType] = {
    "uint8": U8, "uint16": U16, "uint32": U32, "uint64": U64,
    "int8": I8, "int16": I16, "int32": I32, "int64": I64,
}

# C spellings that appear in tracepoint format files, BTF and script struct
# definitions, mapped to sized integers (LP64).
C_INT_TYPES: dict[str, IntType] = {
    "char": I8, "signed char": I8, "unsigned char": U8,
    "short": I16, "short int": I16, "signed short": I16, "unsigned short": U16,
    "unsigned short int": U16, "short unsigned int": U16,
    "int": I32, "signed int": I32, "signed": I32, "unsigned": U32, "unsigned int": U32,
    "long": I64, "long int": I64, "signed long": I64, "unsigned long": U64,
    "long unsigned int": U64, "unsigned long int": U64,
    "long long": I64, "long long int": I64, "unsigned long long": U64,
    "long long unsigned int": U64, "unsigned long long int": U64,
    "_Bool": U8, "bool": U8,
    "u8": U8, "u16": U16, "u32": U32, "u64": U64, "s8": I8, "s16": I16, "s32": I32, "s64": I64,
    "__u8": U8, "__u16": U16, "__u32": U32, "__u64": U64,
    "__s8": I8, "__s16": I16, "__s32": I32, "__s64": I64,
    "uint8_t": U8, "uint16_t": U16, "uint32_t": U32, "uint64_t": U64,
    "int8_t": I8, "int16_t": I16, "int32_t": I32, "int64_t": I64,
    "size_t": U64, "ssize_t": I64, "pid_t": I32, "uid_t": U32, "gid_t": U32,
    "umode_t": U16, "loff_t": I64, "off_t": I64, "dev_t": U32, "gfp_t": U32,
    "__le16": U16, "__le32": U32, "__le64": U64, "__be16": U16, "__be32": U32, "__be64": U64,
    "sector_t": U64, "ino_t": U64, "clockid_t": I32, "key_serial_t": I32, "qid_t": U32,
    "aio_context_t": U64, "timer_t": I32, "mqd_t": I32, "rwf_t": I32, "cap_user_header_t": U64,
    "cap_user_data_t": U64, "unsigned long long int": U64,
}


def int_of_size(size: int, signed: bool) -> IntType:
    bits = {1: 8, 2: 16, 4: 32, 8: 64}.get(size, 64)
    return IntType(bits, signed)


def promote(a: Type, b: Type) -> IntType:
    """The result type of integer arithmetic between ``a`` and ``b`` (bpftrace rules:
    64-bit, signed only if both operands are signed)."""
    sa = getattr(a, "signed", False) if not isinstance(a, BoolType) else False
    sb = getattr(b, "signed", False) if not isinstance(b, BoolType) else False
    return I64 if (sa and sb) else U64
