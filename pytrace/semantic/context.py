"""What the type checker may ask about names it does not define itself.

``TypeEnv`` answers: struct layouts (script definitions first, then kernel
BTF), enum constants and C macros (``AF_INET``), named types (typedefs), and
the types and values of positional parameters.  ``CheckOptions`` holds the
command-line switches that change checking (``--unsafe``, ``-c``...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernel.info import KernelInfo
from ..records import dataclass, field
from ..source import Span
from . import types as T

if TYPE_CHECKING:
    from .typecheck import Checker


@dataclass
class CheckOptions:
    unsafe: bool = False
    has_cpid: bool = False          # -c CMD was given
    strlen: int = 64                # BPFTRACE_STRLEN / config max_strlen
    params: list[str] = field(default_factory=list)
    stack_mode: str = "bpftrace"    # config stack_mode: the default for kstack/ustack
    # A stdlib tool's positional parameters are optional by design (its
    # usage header says so): an unset one reads as 0 without a warning.
    optional_params: bool = False


class TypeEnv:
    """Names known outside the script's own variables and maps."""

    def __init__(self, kernel: KernelInfo | None, options: CheckOptions,
                 structs: dict[str, T.StructType] | None = None,
                 enum_values: dict[str, tuple[int, T.EnumType]] | None = None,
                 typedefs: dict[str, T.Type] | None = None,
                 macros: dict[str, int] | None = None) -> None:
        self.kernel = kernel
        self.options = options
        self.structs = structs or {}        # 'struct x' -> layout, from the script
        self.enum_values = enum_values or {}
        self.typedefs = typedefs or {}
        self.macros = macros or {}
        self._btf_struct_cache: dict[str, T.StructType | None] = {}

    def _btf(self):  # type: ignore[no-untyped-def]
        return self.kernel.btf() if self.kernel is not None else None

    def struct(self, kind: str, tag: str) -> T.StructType | None:
        key = f"{kind} {tag}"
        if key in self.structs:
            return self.structs[key]
        if key in self._btf_struct_cache:
            return self._btf_struct_cache[key]
        btf = self._btf()
        found = None
        if btf is not None:
            found = btf.struct(tag) if kind == "struct" else btf.union(tag)
        self._btf_struct_cache[key] = found
        return found

    def named_type(self, name: str) -> T.Type | None:
        if name in T.INT_TYPE_NAMES:
            return T.INT_TYPE_NAMES[name]
        if name in self.typedefs:
            return self.typedefs[name]
        if name.startswith(("struct ", "union ")):
            kind, tag = name.split(" ", 1)
            return self.struct(kind, tag)
        if name.startswith("enum "):
            # A script's enum (by its tag) before the kernel's.
            tag = name[5:].strip()
            for _value, et in self.enum_values.values():
                if et.tag == tag:
                    return et
        btf = self._btf()
        if btf is not None:
            return btf.type_by_name(name)
        return None

    def constant(self, name: str) -> int | None:
        if name in self.macros:
            return self.macros[name]
        if name in self.enum_values:
            return self.enum_values[name][0]
        btf = self._btf()
        if btf is not None:
            hit = btf.enum_value(name)
            if hit is not None:
                return hit[0]
        return None

    def identifier(self, name: str) -> T.Type | None:
        """The type of a bare name that is not a builtin: a macro or enum constant."""
        if name in self.macros:
            return T.I64
        if name in self.enum_values:
            return self.enum_values[name][1]
        btf = self._btf()
        if btf is not None:
            hit = btf.enum_value(name)
            if hit is not None:
                return hit[1]
        return None

    def identifier_names(self) -> list[str]:
        return list(self.macros) + list(self.enum_values)

    def positional_int(self, index: int) -> int | None:
        params = self.options.params
        if 1 <= index <= len(params):
            try:
                return int(params[index - 1], 0)
            except ValueError:
                return None
        return 0

    def positional_type(self, index: int, checker: "Checker", span: Span | None) -> T.Type:
        params = self.options.params
        if index == 0:
            checker.error("positional parameters start at $1", span)
            return T.I64
        if index > len(params):
            # bpftrace treats an unset parameter as 0 (or "" inside str()).
            if not self.options.optional_params:
                checker.warning(f"positional parameter ${index} is not set; it reads as 0", span)
            return T.I64
        value = params[index - 1]
        try:
            int(value, 0)
            return T.I64
        except ValueError:
            return T.StringType(len(value.encode()) + 1)
