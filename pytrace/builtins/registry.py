"""The builtin registry: every builtin variable, function and aggregation.

One entry per name holds everything the compiler knows about it: arity, where
it is valid, whether it is unsafe, a signature for hints and docs, and the
``check`` function that types a use of it.  The code generator adds its
lowering to the same entries, so adding a builtin touches one module.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Callable

from ..records import dataclass, field
from ..semantic.types import Type

if TYPE_CHECKING:
    from ..frontend import ast
    from ..semantic.typecheck import Checker


class Kind(Enum):
    VARIABLE = "variable"        # a bare name: pid, comm, kstack
    FUNCTION = "function"        # printf(...), str(...)
    AGGREGATION = "aggregation"  # count(), hist(...): only as '@map = f(...)'


CheckFn = Callable[["ast.Expr", "Checker"], "Type | None"]


@dataclass(frozen=True)
class Builtin:
    name: str
    kind: Kind
    check: CheckFn
    signature: str
    doc: str
    min_args: int = 0
    max_args: int | None = 0            # None: variadic
    unsafe: bool = False
    # Why an unsafe builtin needs --unsafe ('runs a shell command').
    unsafe_reason: str = ""
    # Canonical provider names where the builtin is meaningful; None: everywhere.
    providers: frozenset[str] | None = None
    # Also usable as a bare name without parentheses (kstack, ustack).
    bare_ok: bool = False
    # Evaluated in user space when the event is printed (printf, time, ...).
    is_async: bool = False
    tags: tuple[str, ...] = field(default=())


class Registry:
    """All builtins by name."""

    def __init__(self, entries: list[Builtin],
                 dynamic: tuple[Callable[[str], "Builtin | None"], ...] = ()) -> None:
        self._by_name: dict[str, Builtin] = {}
        for e in entries:
            if e.name in self._by_name:
                raise ValueError(f"builtin {e.name} registered twice")
            self._by_name[e.name] = e
        self.entries = entries
        # Families of names made on demand (arg0..argN).
        self._dynamic = dynamic

    def get(self, name: str) -> Builtin | None:
        hit = self._by_name.get(name)
        if hit is None:
            for make in self._dynamic:
                hit = make(name)
                if hit is not None:
                    break
        return hit

    def variables(self) -> list[str]:
        return sorted(e.name for e in self.entries if e.kind is Kind.VARIABLE or e.bare_ok)

    def functions(self) -> list[str]:
        return sorted(e.name for e in self.entries if e.kind is not Kind.VARIABLE)

    def names(self) -> list[str]:
        return sorted(self._by_name)


def default_registry() -> Registry:
    from . import aggregations, functions, variables
    return Registry(variables.ENTRIES + functions.ENTRIES + aggregations.ENTRIES,
                    dynamic=(variables.argn_entry,))
