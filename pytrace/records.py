"""Record classes: the subset of ``dataclasses`` pytrace uses, made cheap to import.

``@dataclass`` spends most of a class's creation compiling the source of its
generated methods (one ``exec`` per method) and inspecting signatures; with
~120 record classes that was about a third of pytrace's start-up (≈90 ms of
≈250 ms of imports on the CI machine).  This module builds the same methods
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, frozen
``__setattr__``/``__delattr__``) from one generated source per class and
keeps the compiled code in a per-user cache (marshal, keyed by the source
text), so a start after the first one executes ready code objects.

Supported, with ``dataclasses``' meaning: ``@dataclass``, ``eq=``,
``frozen=``; ``field(default=, default_factory=, compare=, repr=,
kw_only=, init=)``; inheritance of fields (a redefined field keeps its place),
``__post_init__``, ``fields()`` and ``replace()``.  Not supported (unused
here): ``order``, ``slots``, ``InitVar``, ``ClassVar`` detection beyond the
``ClassVar[...]`` annotation text.
"""

from __future__ import annotations

import atexit
import marshal
import os
import sys
from functools import lru_cache
from typing import Any, Iterator, TypeVar

C = TypeVar("C", bound=type)

# Bumped when the generated code's shape changes (old cache entries then
# simply stop matching: the key is the source text).
_CACHE_FORMAT = 2
# pytrace has ~120 record classes; beyond this many cached sources, stale ones are dropped.
_CACHE_MAX = 400


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One field of a record (what ``field()`` returns and ``fields()`` lists)."""

    __slots__ = ("name", "default", "default_factory", "compare", "repr", "kw_only", "init")

    def __init__(self, default: Any, default_factory: Any, compare: bool, repr: bool, kw_only: bool,
                 init: bool = True) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr
        self.kw_only = kw_only
        self.init = init

    def copy(self, name: str) -> "Field":
        f = Field(self.default, self.default_factory, self.compare, self.repr, self.kw_only, self.init)
        f.name = name
        return f

    def __repr__(self) -> str:
        return f"Field(name={self.name!r})"


def field(*, default: Any = MISSING, default_factory: Any = MISSING, compare: bool = True, repr: bool = True,
          kw_only: bool = False, init: bool = True) -> Any:
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, compare, repr, kw_only, init)


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in definition order."""
    cls = obj if isinstance(obj, type) else type(obj)
    return tuple(cls.__record_fields__.values())


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of a record with some fields changed (``dataclasses.replace``)."""
    for f in fields(obj):
        if f.init and f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return type(obj)(**changes)


def dataclass(cls: C | None = None, /, *, eq: bool = True, frozen: bool = False) -> Any:
    """Make ``cls`` a record class (drop-in for the ``dataclasses`` subset above)."""
    def wrap(c: C) -> C:
        return _process(c, eq, frozen)
    return wrap if cls is None else wrap(cls)


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _collect(cls: type) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        out.update(base.__dict__.get("__record_fields__", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        f = value.copy(name) if isinstance(value, Field) else Field(value, MISSING, True, True, False).copy(name)
        if isinstance(value, Field):
            # As in dataclasses: the class attribute is the default, or absent.
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        out[name] = f
    return out


def _process(cls: C, eq: bool, frozen: bool) -> C:
    flds = _collect(cls)
    for base in cls.__mro__[1:]:
        base_frozen = base.__dict__.get("__record_frozen__")
        if base_frozen is not None and base_frozen != frozen:
            raise TypeError(f"cannot inherit {'non-' if frozen else ''}frozen record from a "
                            f"{'' if base_frozen else 'non-'}frozen one")
    src, env = _source(cls, flds, eq, frozen)
    ns: dict[str, Any] = {}
    exec(_compiled(src), env, ns)
    cls.__record_fields__ = flds  # type: ignore[attr-defined]
    cls.__record_frozen__ = frozen  # type: ignore[attr-defined]
    explicit_hash = "__hash__" in cls.__dict__ and not (cls.__dict__["__hash__"] is None
                                                         and "__eq__" in cls.__dict__)
    for name, fn in ns.items():
        fn.__qualname__ = f"{cls.__qualname__}.{name}"
        if name == "__hash__":
            if not explicit_hash:
                cls.__hash__ = fn  # type: ignore[method-assign]
        elif name not in cls.__dict__:
            setattr(cls, name, fn)
        elif name in ("__setattr__", "__delattr__"):
            raise TypeError(f"cannot overwrite {name} in frozen record {cls.__qualname__}")
    if eq and not frozen and not explicit_hash:
        # eq without frozen: unhashable, as dataclasses makes it.
        cls.__hash__ = None  # type: ignore[assignment]
    return cls


def _source(cls: type, flds: dict[str, Field], eq: bool, frozen: bool) -> tuple[str, dict[str, Any]]:
    env: dict[str, Any] = {"__MISSING": MISSING, "__FrozenInstanceError": FrozenInstanceError,
                           "__object_setattr": object.__setattr__}
    params: list[str] = []
    kw_params: list[str] = []
    body: list[str] = []
    for i, f in enumerate(flds.values()):
        if f.default is not MISSING:
            env[f"__d{i}"] = f.default
        elif f.default_factory is not MISSING:
            env[f"__f{i}"] = f.default_factory
        if not f.init:
            # Not a parameter: set from its factory or default, if any.
            if f.default_factory is not MISSING:
                value = f"__f{i}()"
            elif f.default is not MISSING:
                value = f"__d{i}"
            else:
                continue
        else:
            param = (f"{f.name}=__d{i}" if f.default is not MISSING else
                     f"{f.name}=__MISSING" if f.default_factory is not MISSING else f.name)
            (kw_params if f.kw_only else params).append(param)
            value = f"__f{i}() if {f.name} is __MISSING else {f.name}" if f.default_factory is not MISSING else f.name
        body.append(f"    __object_setattr(self, {f.name!r}, {value})" if frozen else f"    self.{f.name} = {value}")
    _check_order(cls, params)
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    signature = ", ".join(["self", *params] + (["*", *kw_params] if kw_params else []))
    lines = [f"def __init__({signature}):", *(body or ["    pass"])]
    shown = [f.name for f in flds.values() if f.repr]
    parts = ", ".join(f"{n}={{self.{n}!r}}" for n in shown)
    lines += ["def __repr__(self):", f"    return f'{{self.__class__.__qualname__}}({parts})'"]
    compared = [f"self.{f.name}" for f in flds.values() if f.compare]
    mine = "(" + "".join(f"{c}," for c in compared) + ")"
    if eq:
        theirs = mine.replace("self.", "other.")
        lines += ["def __eq__(self, other):",
                  "    if other.__class__ is self.__class__:",
                  f"        return {mine} == {theirs}",
                  "    return NotImplemented"]
    if eq and frozen:
        lines += ["def __hash__(self):", f"    return hash({mine})"]
    if frozen:
        lines += ["def __setattr__(self, name, value):",
                  "    raise __FrozenInstanceError(f'cannot assign to field {name!r}')",
                  "def __delattr__(self, name):",
                  "    raise __FrozenInstanceError(f'cannot delete field {name!r}')"]
    return "\n".join(lines) + "\n", env


def _check_order(cls: type, params: list[str]) -> None:
    seen_default = False
    for p in params:
        if "=" in p:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {p!r} follows default argument in {cls.__qualname__}")


# ------------------------------------------------------------------ code cache

class _CodeCache:
    """Compiled method sources by their text, loaded once per process from
    ``~/.cache/pytrace/records-<python>.marshal`` and written back at exit
    when something new was compiled."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.codes: dict[str, Any] = {}
        self.used: set[str] = set()
        self.dirty = False
        if path is None:
            return
        try:
            with open(path, "rb") as f:
                loaded = marshal.load(f)
            if isinstance(loaded, dict) and loaded.get("format") == _CACHE_FORMAT:
                self.codes = loaded["codes"]
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            self.codes = {}

    def get(self, src: str) -> Any:
        # Keyed by the whole text (a few KiB in all): no hashing, no collisions.
        code = self.codes.get(src)
        self.used.add(src)
        if code is None:
            code = compile(src, "<pytrace record>", "exec")
            self.codes[src] = code
            if not self.dirty and self.path is not None:
                self.dirty = True
                atexit.register(self.save)
        return code

    def save(self) -> None:
        if self.path is None:
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            codes = self.codes
            if len(codes) > _CACHE_MAX:
                # Edited classes leave stale sources behind: keep what this
                # process used (other processes add back what they use).
                codes = {src: code for src, code in codes.items() if src in self.used}
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                marshal.dump({"format": _CACHE_FORMAT, "codes": codes}, f)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home only costs the compile next time


def marshal_cache_path(kind: str) -> str | None:
    """``$XDG_CACHE_HOME/pytrace/<kind>-<python>.marshal`` (marshal data is
    specific to one Python), or None when PYTRACE_NO_CACHE is set."""
    if os.environ.get("PYTRACE_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = sys.implementation.cache_tag or "python"
    return os.path.join(base, "pytrace", f"{kind}-{tag}.marshal")


@lru_cache(maxsize=1)
def _cache() -> _CodeCache:
    return _CodeCache(marshal_cache_path("records"))


def _compiled(src: str) -> Any:
    return _cache().get(src)


def iter_fields(obj: Any) -> Iterator[tuple[str, Any]]:
    """(name, value) of each field of a record instance."""
    for name in type(obj).__record_fields__:
        yield name, getattr(obj, name)


__all__ = ["FrozenInstanceError", "MISSING", "Field", "dataclass", "field", "fields", "replace", "iter_fields",
           "marshal_cache_path"]
