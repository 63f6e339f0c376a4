"""Tab completion for the REPL: probes, builtins, names, fields, commands.

``ProbeCatalog`` holds what the machine offers to complete attach points
with: each listed provider's probes (``Provider.list_probes``, the same
listing as ``pytrace -l``), the programs on PATH and the libraries of
ld.so.cache, and per binary its functions (uprobe) or USDT probes.  The
kernel lists are read by a background thread started at construction, so
the prompt appears at once; a completion asked before a list is ready waits
a few milliseconds for it at most and offers what is ready.  A binary's
symbols are listed in a thread of their own on first use and cached.

``PytraceCompleter`` finds where the cursor is (an attach point, a
predicate or action block and the probe it belongs to, a config block, a
``.command`` line) and offers what fits there.  It never raises: a broken
binary, an unreadable tracefs or a half-typed script yields fewer
completions, never a traceback in the middle of the prompt.
"""

from __future__ import annotations

import bisect
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from ..library import stdlib_dirs
from ..builtins.registry import Builtin, Kind, default_registry
from ..kernel.info import has_wildcard
from ..providers.base import ListEnv, ResolvedAttach, split_attach_point
from ..providers.registry import ProviderRegistry
from ..providers.special import BeginProvider
from ..records import dataclass
from .lexer import CONSTANTS, DECLARABLE_TYPES, EXPRESSION_KEYWORDS, STATEMENT_KEYWORDS, TOP_KEYWORDS
from .state import ReplState

if TYPE_CHECKING:
    from ..kernel.info import KernelInfo

# More entries than a completion menu can usefully show: typing narrows them.
MAX_COMPLETIONS = 1000
# Providers listed first by the background thread (the ones typed most).
_FIRST = ("tracepoint", "software", "interval", "profile", "iter", "rawtracepoint")
# Listings whose probes sit after a binary part (uprobe:BIN:FUNC, usdt:BIN:PROV:NAME).
_TARGET_KINDS = {"uprobe": "uprobe", "uretprobe": "uprobe", "usdt": "usdt"}
# Characters that end an unquoted attach point (grammar ATTACH_POINT).
_UNQUOTED_BAD = re.compile(r'[\s,{}"<;:]')
# grammar ATTACH_POINT, with the last quoted part allowed to be unterminated
# (the cursor may be inside it).
_ATTACH = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(?::(?:"(?:[^"\\\n]|\\.)*"?|[^\s,{}"<;])*)?')
# grammar C_DEFINITION (struct/union/enum/typedef definitions at the top level).
_C_DEF = re.compile(r"(?:struct|union|enum)\s+[A-Za-z_]\w*\s*\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}[^;{}]*;"
                    r"|typedef\s[^;{]*(?:\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\})?[^;{}]*;")
# A string literal, ended by its quote or by the end of its line (grammar STRING).
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*(?:"|(?=\n))')
# The first ':'-part of an attach point's rest (quotes may hold ':').
_PART = re.compile(r'(?:"(?:[^"\\\n]|\\.)*"?|[^:"])*')
_ENDPRED = re.compile(r"/\s*([{<])")
# Strings and comments (unterminated ones run to the end).
_NOISE = re.compile(r'"(?:[^"\\\n]|\\.)*"?|//[^\n]*|/\*(?:[^*]|\*+[^*/])*(?:\*+/|\Z)')


class _Pending:
    """Work done in a thread of its own: its result once ``done`` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: tuple[Any, ...] = ()


def _list_rests(cls: type, warn: Callable[[str], None]) -> list[str]:
    """What follows 'provider:' in each probe a provider lists (a fresh
    instance: providers cache per instance and this runs in a thread)."""
    prov = cls()
    lines = prov.list_probes("*", ListEnv(warn=warn))
    return [ln.partition(":")[2] for ln in lines if ln.startswith(prov.name + ":")]


def _list_target(kind: str, binary: str) -> list[str]:
    """A binary's functions (kind 'uprobe') or USDT probes ('usdt', as
    PROVIDER:NAME), through the provider's own listing."""
    from ..providers.uprobe import UprobeProvider
    from ..providers.usdt import UsdtProvider
    prov = UprobeProvider() if kind == "uprobe" else UsdtProvider()
    where = binary if not _UNQUOTED_BAD.search(binary) else '"' + binary.replace('"', '\\"') + '"'
    keep = 1 if kind == "uprobe" else 2
    return [":".join(ln.split(":")[-keep:]) for ln in prov.list_probes(f"{where}:*", ListEnv())]


def _list_binaries() -> list[str]:
    """Programs on PATH and the sonames of ld.so.cache: what a uprobe or
    usdt binary part may name without a path."""
    from ..kernel.libraries import read_ld_so_cache
    names: set[str] = set()
    for d in os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":"):
        try:
            with os.scandir(d or ".") as it:
                names.update(e.name for e in it if e.is_file() and os.access(e.path, os.X_OK))
        except OSError:
            continue
    try:
        names.update(soname for soname, _path in read_ld_so_cache())
    except (OSError, ValueError):
        pass
    return sorted(names)


class ProbeCatalog:
    """The probes of this machine, for completion (see the module docstring).

    ``kernel`` answers probe resolution (``args`` fields); the live kernel
    by default.  ``sources`` (canonical provider name -> a function
    returning what follows ``provider:`` in each probe), ``binaries`` and
    ``target_lister(kind, binary)`` replace the live listings (tests).
    ``on_update`` is called, from a background thread, whenever something
    becomes ready (the REPL may re-run completion then).  A completion
    waits ``wait`` seconds at most for a kernel list still being read, and
    ``slow_wait`` for a binary's symbols or a probe's arguments."""

    def __init__(self, kernel: KernelInfo | None = None, *,
                 sources: Mapping[str, Callable[[], Iterable[str]]] | None = None,
                 binaries: Callable[[], Iterable[str]] | None = None,
                 target_lister: Callable[[str, str], Iterable[str]] | None = None,
                 on_update: Callable[[], None] | None = None,
                 wait: float = 0.005, slow_wait: float = 0.03) -> None:
        self.registry = ProviderRegistry()
        self.problems: list[str] = []
        self.wait, self.slow_wait = wait, slow_wait
        self._kernel = kernel
        self._on_update = on_update
        if sources is None:
            # BEGIN and END list themselves but take no parts: the provider
            # names already complete them.
            listed = [p for p in self.registry.providers if p.listed_by_default and not isinstance(p, BeginProvider)]
            listed.sort(key=lambda p: _FIRST.index(p.name) if p.name in _FIRST else len(_FIRST))
            sources = {p.name: (lambda cls=type(p): _list_rests(cls, self.problems.append)) for p in listed}
        self._sources = {**sources, " binaries": binaries or _list_binaries}
        self._target_lister = target_lister or _list_target
        self._entries: dict[str, tuple[str, ...]] = {}
        self._ready = {name: threading.Event() for name in self._sources}
        self._done = threading.Event()
        # Probe resolution and the kernel's caches are not thread-safe.
        self._lock = threading.Lock()
        self._later_lock = threading.Lock()
        self._targets: OrderedDict[tuple[str, str], _Pending] = OrderedDict()
        self._resolved: OrderedDict[str, _Pending] = OrderedDict()
        # What was listed or resolved, how many times: tests assert the work
        # done rather than time taken.
        self.loads: dict[str, int] = {}
        threading.Thread(target=self._load_all, name="pytrace-probe-catalog", daemon=True).start()

    @property
    def kernel(self) -> KernelInfo:
        if self._kernel is None:
            from ..kernel.info import LiveKernel
            self._kernel = LiveKernel()
        return self._kernel

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until every list is loaded; False on timeout."""
        return self._done.wait(timeout)

    def _load_all(self) -> None:
        for name, source in self._sources.items():
            self._count(name)
            try:
                self._entries[name] = tuple(sorted(set(source())))
            except Exception as exc:  # one listing failing must not stop the others
                self.problems.append(f"cannot list {name.strip()}: {exc}")
            self._ready[name].set()
            self._notify()
        try:
            # Warm what resolving 'args' needs (BTF, the tracepoint index) so
            # that the first 'args.' does not pay for it.
            with self._lock:
                self.kernel.btf()
                self.kernel.categories()
        except Exception as exc:  # no tracefs or BTF: 'args' fields are then not offered
            self.problems.append(f"probe arguments cannot be completed: {exc}")
        self._done.set()
        self._notify()

    def _count(self, what: str) -> None:
        self.loads[what] = self.loads.get(what, 0) + 1

    def _notify(self) -> None:
        try:
            if self._on_update is not None:
                self._on_update()
        except Exception:  # the REPL's callback failing must not kill the loader
            pass

    def _later(self, cache: OrderedDict[Any, _Pending], key: Any, work: Callable[[], tuple[Any, ...]],
               limit: int) -> tuple[Any, ...]:
        """``work()``'s result, computed once per ``key`` in a thread of its
        own; () while it runs (waiting ``slow_wait`` at most)."""
        with self._later_lock:
            pending = cache.get(key)
            if pending is None:
                pending = cache[key] = _Pending()
                while len(cache) > limit:
                    cache.popitem(last=False)
                threading.Thread(target=self._finish, args=(pending, work), daemon=True,
                                 name="pytrace-complete").start()
            else:
                cache.move_to_end(key)
        pending.done.wait(self.slow_wait)
        return pending.value

    def _finish(self, pending: _Pending, work: Callable[[], tuple[Any, ...]]) -> None:
        try:
            pending.value = work()
        except Exception:  # not a binary, a half-typed probe: nothing to complete
            pending.value = ()
        pending.done.set()
        self._notify()

    def entries(self, provider: str) -> tuple[str, ...]:
        """What follows ``provider:`` in each probe of a listed provider
        (canonical name), sorted; empty while not loaded yet."""
        ev = self._ready.get(provider)
        if ev is not None and not ev.is_set():
            ev.wait(self.wait)
        return self._entries.get(provider, ())

    def binaries(self) -> tuple[str, ...]:
        """Program and library names a binary part may use, sorted."""
        return self.entries(" binaries")

    def targets(self, kind: str, binary: str) -> tuple[str, ...]:
        """The functions ('uprobe') or PROVIDER:NAME USDT probes ('usdt') of
        ``binary``, sorted (cached per binary)."""
        def work() -> tuple[str, ...]:
            self._count(f"{kind}:{binary}")
            return tuple(sorted(set(self._target_lister(kind, binary))))
        return self._later(self._targets, (kind, binary), work, 16)

    def resolve(self, header: str) -> tuple[ResolvedAttach, ...]:
        """The attach points of a probe header (``a:b:c, d:e``) resolved by
        their providers against ``kernel``; those that do not resolve are
        left out (cached per header)."""
        return self._later(self._resolved, header.strip(), lambda: self._resolve(header.strip()), 64)

    def _resolve(self, header: str) -> tuple[ResolvedAttach, ...]:
        from ..diagnostics import Diagnostics
        from ..frontend.ast import AttachPoint
        from ..providers.base import ResolveEnv
        self._count(f"resolve {header}")
        out: list[ResolvedAttach] = []
        with self._lock:
            for raw in split_attach_list(header):
                parts = split_attach_point(raw)
                prov = self.registry.lookup(parts[0])
                if prov is not None:
                    out.extend(prov.resolve(AttachPoint(raw), parts, ResolveEnv(self.kernel, Diagnostics())))
        return tuple(out)


def split_attach_list(text: str) -> list[str]:
    """The attach points of a probe header (``a:b, c:"d e":f /* x */``),
    comments left out."""
    text = _NOISE.sub(lambda m: " " if m.group()[0] == "/" else m.group(), text)
    return [m.group() for m in _ATTACH.finditer(text)]


@dataclass(frozen=True)
class Where:
    """Where the cursor is: ``kind`` is 'attach' (``start``: where the
    attach point being typed begins; ``first``: it begins a top-level item),
    'expr' (a predicate or block; ``probe``: its probe's attach points),
    'config' (a config block), 'none' (a string, a comment, C code...)."""

    kind: str
    start: int = 0
    first: bool = False
    probe: str = ""


def locate(text: str) -> Where:
    """Read ``text`` (what precedes the cursor) as the grammar would, far
    enough to know which construct the cursor is in."""
    n, i = len(text), 0
    mode = "item"          # item | attach | pred | body | angle | config | macro | skip
    depth = 0              # braces open in a block
    expect = first = True  # an attach point may start here / it would start the item
    header, probe = 0, ""  # where the probe's attach points start; their text
    last = ""              # last significant character ('>' closes '< >' after ';', '}' or '<')
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if text.startswith(("//", "/*"), i) or (c == '"' and mode not in ("item", "attach")):
            m = (_STRING if c == '"' else _NOISE).match(text, i)
            if m is None or m.end() >= n and c == "/" and not (len(m.group()) > 3 and m.group().endswith("*/")):
                return Where("none")  # the cursor is inside the string or comment
            i = m.end()
            continue
        if mode in ("item", "attach"):
            if mode == "item" and (c == "#" or re.match(r"(?:struct|union|enum|typedef)\s", text[i:i + 8])):
                # A preprocessor line, a C definition: skipped whole.
                m = re.compile(r"#[^\n]*\n").match(text, i) if c == "#" else _C_DEF.match(text, i)
                if m is None:
                    return Where("none")
                i = m.end()
                continue
            if expect and (c.isascii() and c.isalpha() or c == "_"):
                m = _ATTACH.match(text, i)
                assert m is not None
                if m.end() >= n:
                    return Where("attach", i, first=mode == "item")
                word = m.group()
                if mode == "item" and word in ("import", "let", "config", "macro"):
                    mode = word if word in ("config", "macro") else "skip"
                else:
                    mode, expect, header, first = "attach", False, header if not first else i, False
                i = m.end()
                continue
            if c == ",":
                expect = True
            elif c in "/{<" and mode == "attach":
                probe, mode, depth, last = text[header:i], {"/": "pred", "{": "body", "<": "angle"}[c], 1, c
            i += 1
            continue
        if mode == "skip":
            if c == ";":
                mode, expect, first = "item", True, True
        elif mode in ("config", "macro") and depth == 0:
            depth = 1 if c == "{" else 0
        elif mode == "pred":
            m = _ENDPRED.match(text, i)
            if m is not None:
                mode, last = ("body" if m.group(1) == "{" else "angle"), m.group(1)
                i = m.end()
                continue
        elif mode == "angle" and depth == 1 and c == ">" and last in ("<", ";", "}"):
            depth = 0
        elif c in "{}":
            depth += 1 if c == "{" else -1
        if mode in ("body", "angle", "config", "macro") and depth == 0 and c in "}>":
            mode, expect, first = "item", True, True
        last = c
        i += 1
    if mode in ("item", "attach"):
        return Where("attach", n, first=mode == "item") if expect else Where("none")
    if mode == "pred" or (mode in ("body", "angle", "macro") and depth > 0):
        return Where("expr", probe=probe)
    return Where("config") if mode == "config" and depth > 0 else Where("none")


def _first_colon(rest: str) -> int | None:
    """Where the first part of ``rest`` ends (its first ':' outside quotes)."""
    end = _PART.match(rest).end()  # type: ignore[union-attr]
    return end if rest[end:end + 1] == ":" else None


class PytraceCompleter(Completer):
    """Completion for the REPL's input (see the module docstring)."""

    def __init__(self, state: ReplState, catalog: ProbeCatalog, *,
                 stdlib: Sequence[Path] | None = None) -> None:
        self.state = state
        self.catalog = catalog
        self._stdlib = list(stdlib) if stdlib is not None else None
        self._builtins: list[Builtin] = sorted(default_registry().entries, key=lambda b: b.name)
        self._paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        try:
            found = self.complete(document.text_before_cursor, complete_event.completion_requested)
        except Exception:  # a completion bug must never break the prompt: offer nothing
            return
        yield from found

    def complete(self, before: str, requested: bool) -> list[Completion]:
        """The completions at the end of ``before`` (the input up to the
        cursor); ``requested``: Tab was pressed (an empty word then gets
        every candidate, while typing it gets none)."""
        stripped = before.lstrip()
        if stripped.startswith(".") and "\n" not in stripped:
            return self._command(stripped, requested)
        where = locate(before)
        if where.kind == "attach":
            return self._attach(before[where.start:], requested, where.first)
        if where.kind == "expr":
            return self._expr(before, where.probe, requested)
        if where.kind == "config":
            return self._config(before, requested)
        return []

    # ------------------------------------------------------------ attach points
    def _attach(self, word: str, requested: bool, first: bool) -> list[Completion]:
        if ":" not in word:
            if not word and not requested:
                return []
            out = []
            for name in self.catalog.registry.names():
                prov = self.catalog.registry.lookup(name)
                if prov is not None and name.startswith(word):
                    usage = prov.usage()
                    meta = f"alias of {prov.name}" if name != prov.name else "" if usage == name else usage
                    # BEGIN and END take no parts.
                    text = name if isinstance(prov, BeginProvider) else name + ":"
                    out.append(Completion(text, -len(word), display_meta=meta))
            if first:
                out += [Completion(k, -len(word), display_meta="keyword") for k in TOP_KEYWORDS if k.startswith(word)]
            return out
        head, _, rest = word.partition(":")
        prov = self.catalog.registry.lookup(head)
        if prov is None:
            return []
        kind = _TARGET_KINDS.get(prov.name)
        if kind is None:
            return self._tree(word, head + ":", self.catalog.entries(prov.name), rest)
        end = _first_colon(rest)
        if end is None:
            return self._binary(word, head + ":", rest)
        binary = split_attach_point(rest[:end])[0]
        if not binary:
            return []
        entries = self.catalog.targets(kind, binary)
        return self._tree(word, word[: len(head) + 2 + end], entries, rest[end + 1:])

    def _tree(self, word: str, prefix: str, entries: Sequence[str], typed: str) -> list[Completion]:
        """Complete ``typed`` against sorted ``entries`` one ':'-part at a
        time (``sched:`` first, then ``sched_switch``); the text replaces
        the whole attach point, the display shows the part."""
        if has_wildcard(typed):
            return []
        cut = typed.rfind(":") + 1
        out: list[Completion] = []
        k = bisect.bisect_left(entries, typed)
        group, count = "", 0

        def flush() -> None:
            if group:
                meta = f"{count} probes" if group.endswith(":") and count > 1 else ""
                out.append(Completion(prefix + group, -len(word), display=group[cut:], display_meta=meta))

        while k < len(entries) and entries[k].startswith(typed) and len(out) < MAX_COMPLETIONS:
            entry = entries[k]
            colon = entry.find(":", len(typed))
            cand = entry if colon < 0 else entry[:colon + 1]
            if cand != group:
                flush()
                group, count = cand, 0
            count += 1
            k += 1
        flush()
        return out[:MAX_COMPLETIONS]

    def _binary(self, word: str, prefix: str, part: str) -> list[Completion]:
        """The binary of a uprobe/usdt: a path (from '/' when nothing is
        typed yet), or a program or library name."""
        quoted = part.startswith('"')
        path = part[1:] if quoted else part
        out: list[Completion] = []
        if not path or "/" in path:
            cut = path.rfind("/") + 1
            typed_dir, base = (path[:cut], path[cut:]) if path else ("/", "")
            try:
                with os.scandir(os.path.expanduser(typed_dir) or ".") as it:
                    found = sorted((e.name, e.is_dir()) for e in it
                                   if e.name.startswith(base) and (base.startswith(".") or not e.name.startswith(".")))
            except OSError:
                return []
            for name, is_dir in found[:MAX_COMPLETIONS]:
                full = typed_dir + name
                if quoted or _UNQUOTED_BAD.search(full):
                    text = '"' + full.replace('"', '\\"') + ("/" if is_dir else '":')
                else:
                    text = full + ("/" if is_dir else ":")
                out.append(Completion(prefix + text, -len(word), display=name + ("/" if is_dir else "")))
            return out
        names = self.catalog.binaries()
        k = bisect.bisect_left(names, path)
        while k < len(names) and names[k].startswith(path) and len(out) < MAX_COMPLETIONS:
            meta = "library" if ".so" in names[k] else "program"
            out.append(Completion(prefix + names[k] + ":", -len(word), display=names[k], display_meta=meta))
            k += 1
        return out

    # ------------------------------------------------------------ expressions
    def _expr(self, before: str, probe: str, requested: bool) -> list[Completion]:
        m = re.search(r"(?<![\w$@.>])args\s*(?:\.|->)\s*(\w*)$", before)
        if m:
            return self._fields(probe, m.group(1))
        m = re.search(r"([@$])(\w*)$", before)
        if m and not re.search(r"\w$", before[: m.start()]):
            sigil, partial = m.group(1), m.group(2)
            earlier = _NOISE.sub(" ", before[: m.start()])
            used = set(re.findall(r"[" + re.escape(sigil) + r"][A-Za-z_]\w*", earlier))
            used |= self.state.map_names if sigil == "@" else self.state.variable_names
            what = "map" if sigil == "@" else "variable"
            return [Completion(name, -len(m.group()), display_meta=what)
                    for name in sorted(used) if name.startswith(sigil + partial) and name != sigil]
        m = re.search(r"[A-Za-z_]\w*$", before)
        word = m.group() if m else ""
        start = len(before) - len(word)
        if before[:start].rstrip().endswith((".", "->")) or re.search(r"[\w$@]$", before[:start]):
            return []
        if not word and not requested:
            return []
        providers = {p.name for raw in split_attach_list(probe)
                     if (p := self.catalog.registry.lookup(split_attach_point(raw)[0])) is not None}
        out: dict[str, Completion] = {}
        for b in self._builtins:
            if not b.name.startswith(word):
                continue
            if b.providers is not None and providers and not (b.providers & providers):
                continue
            meta = b.doc if b.kind is Kind.VARIABLE else b.signature
            out[b.name] = Completion(b.name, -len(word), display_meta=meta)
        for kw in STATEMENT_KEYWORDS + EXPRESSION_KEYWORDS + CONSTANTS:
            if kw.startswith(word):
                out.setdefault(kw, Completion(kw, -len(word), display_meta="keyword"))
        for t in DECLARABLE_TYPES:
            if t.startswith(word):
                out.setdefault(t, Completion(t, -len(word), display_meta="type"))
        return [out[k] for k in sorted(out)]

    def _fields(self, probe: str, partial: str) -> list[Completion]:
        """The fields of ``args`` in the probe being written: those every
        attach point of the probe has, with the same type (as the type
        checker reads a multi-probe 'args')."""
        structs = [a.args for a in self.catalog.resolve(probe) if a.args is not None]
        if not structs:
            return []
        first = structs[0]
        out = []
        for f in first.fields or ():
            if f.name.startswith(partial) and all(
                    (o := s.field(f.name)) is not None and o.type == f.type for s in structs[1:]):
                out.append(Completion(f.name, -len(partial), display_meta=str(f.type)))
        return out

    def _config(self, before: str, requested: bool) -> list[Completion]:
        from ..semantic.config import ALIASES, SETTINGS
        entry = re.split(r"[{;\n]", before)[-1]
        m = re.fullmatch(r"\s*(\w*)", entry)
        if m:
            if not m.group(1) and not requested:
                return []
            names = sorted([*SETTINGS, *ALIASES])
            return [Completion(n, -len(m.group(1)), display_meta=SETTINGS[ALIASES.get(n, n)].doc)
                    for n in names if n.startswith(m.group(1))]
        m = re.fullmatch(r"\s*(\w+)\s*=\s*(\w*)", entry)
        setting = SETTINGS.get(ALIASES.get(m.group(1), m.group(1))) if m else None
        if m is None or setting is None:
            return []
        values = setting.choices or (("true", "false") if isinstance(setting.default, bool) else ())
        return [Completion(v, -len(m.group(2))) for v in values if v.startswith(m.group(2))]

    # ------------------------------------------------------------ commands
    def _command(self, line: str, requested: bool) -> list[Completion]:
        name, space, rest = line[1:].partition(" ")
        commands = self.state.commands
        if not space:
            return [Completion("." + c.name, -len(line), display_meta=c.help)
                    for c in sorted(commands.values(), key=lambda c: c.name) if c.name.startswith(name)]
        info = commands.get(name)
        if info is None:
            return []
        words = rest.split()
        current = "" if rest[-1:].isspace() or not rest else words[-1]
        index = len(words) - (1 if current else 0)
        usage = info.usage.split()[1:]
        token = usage[index].strip("[]") if index < len(usage) else ""
        if "|" in token or (token and token.islower() and token.isidentifier()):
            choices = token.split("|")
        elif not token or (not current and not requested):
            return []
        elif token == "COMMAND":
            choices = sorted(commands)
        elif info.argument == "file":
            return list(self._paths.get_completions(Document(current), CompleteEvent(completion_requested=True)))
        elif info.argument in ("glob", "probe"):
            return self._attach(current, requested, False)
        elif info.argument == "map":
            choices = sorted(n for n in self.state.map_names if n != "@")
        elif info.argument == "onoff":
            choices = ["on", "off"]
        elif info.argument == "stdlib":
            choices = self.stdlib_names()
        else:
            return []
        return [Completion(c, -len(current)) for c in choices if c.startswith(current)]

    def stdlib_names(self) -> list[str]:
        """The stdlib's .pt files, as paths under it: what ``import "..."``
        names (``.import`` adds that statement)."""
        names: set[str] = set()
        for d in self._stdlib if self._stdlib is not None else stdlib_dirs():
            try:
                names.update(p.relative_to(d).as_posix() for p in d.rglob("*.pt") if p.is_file())
            except OSError:
                continue
        return sorted(names)
