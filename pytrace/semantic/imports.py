"""``import "name";``: finding, vetting and merging imported snippets.

Resolution (the first that exists wins):

* ``"/abs/path"``: that file;
* ``"./x"``, ``"../x"``: relative to the importing file's directory (the
  current directory for ``-e`` and stdin);
* any other name: the importing file's directory, then each directory of
  ``PYTRACE_PATH`` (``:``-separated), then the stdlib.

Each candidate is tried as written, then with ``.pt`` and ``.bt`` appended;
a directory imports every ``.pt``/``.bt`` file in it, in name order.

pytrace runs as root, so a file anyone could have changed is refused before
it is read: a file writable by every user or owned by another user, or one
under a directory writable by every user without the sticky bit (``/tmp``
has it; a plain ``chmod 777`` directory does not).  An import cycle is an
error at the ``import`` that closes it; a file imported twice (by two
snippets) is merged once.

An imported file is parsed as its own source, so a diagnostic inside it
points at its own name and line.  What it defines (macros, probes, map
declarations, C definitions) joins the importing program; a macro the
importing file defines itself replaces an imported one of the same name
(user macros override the stdlib's, as in bpftrace).  ``config`` belongs to
the main script only.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Callable, Mapping

from ..diagnostics import Diagnostics
from ..frontend import ast
from ..source import SourceFile

SUFFIXES = ("", ".pt", ".bt")


def _base_dir(source: SourceFile) -> Path:
    path = Path(source.name)
    return path.resolve().parent if source.name not in ("stdin", "-") and path.is_file() else Path.cwd()


def search_dirs(importer: SourceFile, environ: Mapping[str, str]) -> list[Path]:
    """Where a bare name is looked for, in order."""
    from ..library import stdlib_dirs
    dirs = [_base_dir(importer)]
    dirs += [Path(d) for d in environ.get("PYTRACE_PATH", "").split(":") if d]
    return dirs + stdlib_dirs()


def candidates(name: str, importer: SourceFile, environ: Mapping[str, str]) -> list[Path]:
    """Every path ``import "name"`` tries, in order."""
    if name.startswith("/"):
        bases = [Path(name)]
    elif name.startswith(("./", "../")):
        bases = [_base_dir(importer) / name]
    else:
        bases = [d / name for d in search_dirs(importer, environ)]
    return [Path(str(b) + suffix) for b in bases for suffix in SUFFIXES]


def unsafe_reason(path: Path) -> str | None:
    """Why root must not read ``path`` (None: it is safe)."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if st.st_mode & stat.S_IWOTH:
        return f"{path} is writable by every user"
    if st.st_uid not in (0, os.geteuid()):
        return f"{path} belongs to another user (uid {st.st_uid})"
    for d in path.resolve().parents:
        try:
            ds = d.stat()
        except OSError:
            continue
        if ds.st_mode & stat.S_IWOTH and not ds.st_mode & stat.S_ISVTX:
            return f"its directory {d} is writable by every user"
    return None


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".pt", ".bt") and p.is_file())
    return [path]


class Importer:
    """Resolves the imports of one program, recursively."""

    def __init__(self, environ: Mapping[str, str], diags: Diagnostics) -> None:
        self.environ = environ
        self.diags = diags
        self.done: set[Path] = set()

    def run(self, program: ast.Program, source: SourceFile) -> None:
        own = Path(source.name).resolve() if Path(source.name).is_file() else None
        if own is not None:
            self.done.add(own)
        self._merge_imports(program, source, [own] if own else [])

    def _merge_imports(self, program: ast.Program, source: SourceFile, stack: list[Path]) -> None:
        from ..frontend.parser import parse
        imported = ast.Program()
        for imp in program.imports:
            found = next((p for p in candidates(imp.path, source, self.environ) if p.exists()), None)
            if found is None:
                where = ", ".join(str(d) for d in search_dirs(source, self.environ))
                self.diags.error(f"cannot find '{imp.path}' to import", imp.span,
                                 hints=[f"looked for {imp.path}, {imp.path}.pt and {imp.path}.bt in: {where}"])
                continue
            for path in _files(found):
                real = path.resolve()
                if real in stack:
                    chain = " -> ".join(p.name for p in stack[stack.index(real):] + [real])
                    self.diags.error(f"import cycle: {chain}", imp.span)
                    continue
                if real in self.done:
                    continue
                reason = unsafe_reason(path)
                if reason is not None:
                    self.diags.error(f"refusing to import '{imp.path}': {reason}", imp.span,
                                     hints=["pytrace runs as root: make it writable only by its owner "
                                            "(chmod go-w), in a directory others cannot write"])
                    continue
                self.done.add(real)
                try:
                    text = path.read_text(encoding="utf-8", errors="surrogateescape")
                except OSError as exc:
                    self.diags.error(f"cannot read '{path}': {exc.strerror}", imp.span)
                    continue
                sub_source = SourceFile(str(path), text)
                sub = parse(sub_source, self.diags)
                self._merge_imports(sub, sub_source, stack + [real])
                for cfg in sub.config:
                    self.diags.error("config belongs in the main script, not in an imported file", cfg.span)
                imported.c_items += sub.c_items
                imported.map_decls += sub.map_decls
                imported.macros += sub.macros
                imported.probes += sub.probes
        own_macros = {m.name for m in program.macros}
        program.c_items[:0] = imported.c_items
        program.map_decls[:0] = imported.map_decls
        program.macros[:0] = [m for m in imported.macros if m.name not in own_macros]
        program.probes[:0] = imported.probes


def resolve(program: ast.Program, source: SourceFile, environ: Mapping[str, str], diags: Diagnostics, *,
            implicit: Path | None = None) -> None:
    """Merge every import of ``program`` into it (and ``implicit``, the
    stdlib's base snippet, when the program uses its macros unimported)."""
    importer = Importer(environ, diags)
    if implicit is not None:
        base = SourceFile(str(implicit), implicit.read_text(encoding="utf-8"))
        from ..frontend.parser import parse
        sub = parse(base, diags)
        importer.done.add(implicit.resolve())
        own = {m.name for m in program.macros}
        program.macros[:0] = [m for m in sub.macros if m.name not in own]
    if program.imports:
        importer.run(program, source)


def merge_preludes(program: ast.Program, preludes: list[SourceFile], environ: Mapping[str, str],
                   diags: Diagnostics) -> None:
    """Put the definitions of ``preludes`` (sources of their own, e.g. the
    REPL's earlier macro lines) before ``program``'s; the program's own
    macros replace theirs of the same name, as with imports."""
    from ..frontend.parser import parse
    importer = Importer(environ, diags)
    own = {m.name for m in program.macros}
    for source in reversed(preludes):
        sub = parse(source, diags)
        importer._merge_imports(sub, source, [])  # noqa: SLF001 - same resolution as the script's imports
        program.c_items[:0] = sub.c_items
        program.map_decls[:0] = sub.map_decls
        program.macros[:0] = [m for m in sub.macros if m.name not in own]
        own |= {m.name for m in sub.macros}


_MACRO_NAME = re.compile(r"^macro\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)


def implicit_base(program: ast.Program, builtin: Callable[[str], bool]) -> Path | None:
    """The stdlib's base.pt when ``program`` calls one of its macros without
    defining or importing it; None otherwise (the usual case costs one walk
    of the probes)."""
    if any(i.path in ("base", "base.pt") for i in program.imports):
        return None
    defined = {m.name for m in program.macros}
    unknown = {n.name for p in program.probes for n in p.walk()
               if isinstance(n, (ast.Call, ast.Ident)) and n.name not in defined and not builtin(n.name)}
    if not unknown:
        return None
    from ..library import stdlib_dirs
    for d in stdlib_dirs():
        path = d / "base.pt"
        try:
            names = set(_MACRO_NAME.findall(path.read_text(encoding="utf-8")))
        except OSError:
            continue
        if names & unknown:
            return path
    return None
