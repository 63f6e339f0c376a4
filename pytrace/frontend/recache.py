"""The parser's compiled regular expressions, kept between runs.

Lark's contextual lexer builds one scanner per parser state it meets: a
regular expression that alternates every terminal allowed there.  Compiling
those (``re``'s parser and code generator, in Python) was the largest part
of parsing even ``BEGIN { exit(); }``: ~20-30 ms of start-up on the CI
machine, every run.

This module saves what ``re`` compiled while the script was parsed (the
pattern, flags and the ``_sre`` code the compiler produced) in
``~/.cache/pytrace/regex-<python>.marshal`` and, in later runs, puts the
compiled patterns into ``re``'s own cache before Lark asks for them, built
directly with ``_sre.compile`` (what ``re._compiler.compile`` ends with).
These are CPython internals: the cache file is keyed by the exact Python
version and ``_sre.MAGIC``, and any surprise (a missing name, a changed
signature, a corrupt file) turns the cache off, which only costs the
compile.  ``PYTRACE_NO_CACHE=1`` turns it off too.
"""

from __future__ import annotations

import atexit
import marshal
import os
import re
import sys
from functools import lru_cache
from typing import Any

from ..records import marshal_cache_path

_FORMAT = 1
# Entries beyond this many are dropped (the lexer of the grammar builds a
# few dozen scanners at most; stale ones pile up only across grammar edits).
_MAX_ENTRIES = 300

Key = tuple[str, int]
Entry = tuple[int, list[int], int, dict[str, int], tuple[Any, ...]]


class RegexCache:
    """Compiled patterns by (pattern, flags), for one Python build."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.entries: dict[Key, Entry] = {}
        self.dirty = False
        self.enabled = path is not None and _internals_present()
        if not self.enabled or path is None:
            return
        try:
            with open(path, "rb") as f:
                loaded = marshal.load(f)
            if isinstance(loaded, dict) and loaded.get("format") == _FORMAT and loaded.get("python") == _tag():
                self.entries = loaded["entries"]
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            self.entries = {}

    def warm(self) -> set[Any]:
        """Put every cached pattern into ``re``'s cache; the keys ``re``'s
        cache held afterwards (for learn())."""
        if self.enabled:
            import _sre
            cache = re._cache  # type: ignore[attr-defined]
            try:
                for (pattern, flags), (final_flags, code, groups, groupindex, indexgroup) in self.entries.items():
                    key = (str, pattern, flags)
                    if key not in cache:
                        cache[key] = _sre.compile(pattern, final_flags, code, groups, groupindex, indexgroup)
            except Exception:  # noqa: BLE001 - an internal API changed: stop using the cache
                self.enabled = False
        return set(re._cache)  # type: ignore[attr-defined]

    def learn(self, before: set[Any]) -> None:
        """Record the string patterns ``re`` compiled since warm()."""
        if not self.enabled:
            return
        from re import _compiler, _parser  # type: ignore[attr-defined]
        for key in list(re._cache):  # type: ignore[attr-defined]
            kind, pattern, flags = key
            if key in before or kind is not str or (pattern, flags) in self.entries:
                continue
            try:
                p = _parser.parse(pattern, flags)
                code = _compiler._code(p, flags)
                indexgroup = [None] * p.state.groups
                for name, i in p.state.groupdict.items():
                    indexgroup[i] = name
                # Plain ints: the opcodes are int subclasses marshal refuses.
                self.entries[(pattern, int(flags))] = (int(flags | p.state.flags), [int(c) for c in code],
                                                       int(p.state.groups - 1), dict(p.state.groupdict),
                                                       tuple(indexgroup))
            except Exception:  # noqa: BLE001 - as in warm()
                self.enabled = False
                return
            if not self.dirty:
                self.dirty = True
                atexit.register(self.save)

    def save(self) -> None:
        if self.path is None or not self.enabled:
            return
        entries = self.entries
        if len(entries) > _MAX_ENTRIES:
            entries = dict(list(entries.items())[-_MAX_ENTRIES:])
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            data = marshal.dumps({"format": _FORMAT, "python": _tag(), "entries": entries})
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
        except (OSError, ValueError):
            pass  # an unwritable cache only costs the compile next time


def _tag() -> str:
    import _sre
    return f"{sys.version} sre {getattr(_sre, 'MAGIC', '?')}"


def _internals_present() -> bool:
    try:
        import _sre
        from re import _compiler, _parser  # type: ignore[attr-defined]
    except ImportError:
        return False
    return (isinstance(getattr(re, "_cache", None), dict) and callable(getattr(_sre, "compile", None))
            and callable(getattr(_compiler, "_code", None)) and callable(getattr(_parser, "parse", None)))


@lru_cache(maxsize=1)
def regex_cache() -> RegexCache:
    return RegexCache(marshal_cache_path("regex"))
