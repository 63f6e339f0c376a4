"""pytrace.records behaves as ``dataclasses`` does for the subset pytrace uses."""

from __future__ import annotations

import dataclasses
import marshal
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pytrace import records as R


def _pair(**opts: Any) -> tuple[Any, Any]:
    """The same class body built by dataclasses and by records."""
    out = []
    for mod in (dataclasses, R):
        @mod.dataclass(**opts)
        class Base:
            span: object = mod.field(default=None, compare=False, repr=False, kw_only=True)

        @mod.dataclass(**opts)
        class Point(Base):
            x: int
            y: int = 0
            tags: tuple = mod.field(default_factory=tuple)
            hidden: int = mod.field(default=7, repr=False)
            loose: int = mod.field(default=0, compare=False)
            derived: tuple = mod.field(default_factory=tuple, init=False)
            limit: ClassVar[int] = 3

        out.append(Point)
    return out[0], out[1]


@pytest.mark.parametrize("opts", [{}, {"eq": True}, {"frozen": True}, {"eq": False}, {"frozen": True, "eq": False}])
def test_same_behaviour_as_dataclasses(opts: dict[str, Any]) -> None:
    D, Rc = _pair(**opts)
    for args, kw in [((1,), {}), ((1, 2), {"tags": (3,)}), ((1,), {"span": "s", "loose": 9}), ((4, 5, (6,), 8, 1), {})]:
        d, r = D(*args, **kw), Rc(*args, **kw)
        assert repr(d).replace("test_same_behaviour_as_dataclasses.<locals>._pair.<locals>.", "") == \
            repr(r).replace("test_same_behaviour_as_dataclasses.<locals>._pair.<locals>.", "")
        assert [(f.name, getattr(d, f.name)) for f in dataclasses.fields(d)] == \
            [(f.name, getattr(r, f.name)) for f in R.fields(r)]
        assert (d == D(*args, **kw)) == (r == Rc(*args, **kw))
        assert (d == D(99)) == (r == Rc(99))
        assert (D.__hash__ is None) == (Rc.__hash__ is None)
        if D.__hash__ is not None and opts.get("eq", True) and opts.get("frozen"):
            assert hash(r) == hash(Rc(*args, **kw))
    assert Rc.limit == 3 and "limit" not in [f.name for f in R.fields(Rc)]


def test_compare_false_fields_do_not_count() -> None:
    _, P = _pair()
    assert P(1, span="a", loose=1) == P(1, span="b", loose=2)
    assert P(1) != P(2)
    assert P(1).__eq__(object()) is NotImplemented


def test_frozen_rejects_assignment_and_replace_copies() -> None:
    _, P = _pair(frozen=True)
    p = P(1, 2)
    with pytest.raises(R.FrozenInstanceError):
        p.x = 3
    with pytest.raises(AttributeError):
        del p.y
    q = R.replace(p, y=5)
    assert (q.x, q.y, p.y) == (1, 5, 2)


def test_defaults_factories_and_post_init() -> None:
    calls = []

    @R.dataclass
    class C:
        a: int
        items: list = R.field(default_factory=list)

        def __post_init__(self) -> None:
            calls.append(self.a)

    c1, c2 = C(1), C(2)
    c1.items.append(1)
    assert c2.items == [] and calls == [1, 2]
    with pytest.raises(TypeError):
        C()  # type: ignore[call-arg]


def test_non_default_after_default_is_an_error() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b'"):
        @R.dataclass
        class Bad:
            a: int = 1
            b: int  # type: ignore[misc]


def test_inheriting_across_frozenness_is_an_error() -> None:
    @R.dataclass(frozen=True)
    class F:
        a: int

    with pytest.raises(TypeError):
        @R.dataclass
        class G(F):
            b: int = 0


def test_explicit_methods_are_kept() -> None:
    @R.dataclass(frozen=True)
    class K:
        a: int

        def __repr__(self) -> str:
            return "K!"

        def __hash__(self) -> int:
            return 42

    assert repr(K(1)) == "K!" and hash(K(1)) == 42 and K(1) == K(1)


def test_code_cache_is_written_and_reused(tmp_path: Path) -> None:
    """A first process compiles and saves the methods' code; a second one
    loads it (the cache file then lists the same sources) and behaves the same."""
    prog = ("from pytrace.records import dataclass, field\n"
            "@dataclass(frozen=True)\nclass A:\n    x: int\n    y: str = 'q'\n"
            "print(A(1), A(1) == A(1), hash(A(2)) == hash(A(2)))\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("PYTRACE_NO_CACHE", None)
    first = subprocess.run([sys.executable, "-c", prog], env=env, capture_output=True, text=True, check=True)
    cache = tmp_path / "pytrace" / f"records-{sys.implementation.cache_tag}.marshal"
    saved = marshal.loads(cache.read_bytes())
    assert any("def __init__(self, x, y=__d1):" in src for src in saved["codes"])
    mtime = cache.stat().st_mtime_ns
    second = subprocess.run([sys.executable, "-c", prog], env=env, capture_output=True, text=True, check=True)
    assert first.stdout == second.stdout == "A(x=1, y='q') True True\n"
    assert cache.stat().st_mtime_ns == mtime  # nothing new to save


def test_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pytrace").mkdir()
    (tmp_path / "pytrace" / f"records-{sys.implementation.cache_tag}.marshal").write_bytes(b"\x00garbage")
    prog = "from pytrace.records import dataclass\n@dataclass\nclass A:\n    x: int\nprint(A(3))\n"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", prog], env=env, capture_output=True, text=True, check=True)
    assert out.stdout == "A(x=3)\n"
