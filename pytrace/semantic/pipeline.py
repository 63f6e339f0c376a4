"""The front end's ordered passes: source text to a checked program.

Each pass is a small function over one ``Compilation`` and runs in the order
of ``PASSES``; the pipeline stops after the first pass that reported an
error (as bpftrace does), so later passes can trust earlier results.  The
result, ``CheckedProgram``, is the contract with the back end: the AST with a
type on every expression, the resolved attach points of every probe, the
maps with their key and value types, the C types and the configuration.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Mapping

from ..builtins.registry import Registry, default_registry
from ..diagnostics import Diagnostics, suggest
from ..frontend import ast
from ..frontend.parser import parse
from ..kernel.info import KernelInfo
from ..providers.base import ResolveEnv, ResolvedAttach, split_attach_point, substitute_params
from ..providers.registry import ProviderRegistry
from ..records import dataclass, field
from ..source import SourceFile
from . import config as config_mod
from . import types as T
from .context import CheckOptions, TypeEnv
from .typecheck import Checker, MapInfo

DEFAULT_INCLUDE_DIRS = ["/usr/local/include", "/usr/include/x86_64-linux-gnu", "/usr/include"]


@dataclass
class CompileOptions:
    kernel: KernelInfo | None = None
    unsafe: bool = False
    params: list[str] = field(default_factory=list)
    pid: int | None = None
    has_cpid: bool = False
    optional_params: bool = False  # a stdlib tool: unset $N read as 0 silently (context.CheckOptions)
    # Definitions that come before the script as sources of their own (the
    # REPL's macros and .import lines): merged as imports are, diagnostics
    # at their own lines.
    preludes: list[SourceFile] = field(default_factory=list)
    include_dirs: list[str] = field(default_factory=lambda: list(DEFAULT_INCLUDE_DIRS))
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Where derived data (preprocessed headers) is kept between runs; None: nowhere.
    cache_dir: str | None = field(default_factory=lambda: default_cache_dir())


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pytrace")


@dataclass
class CheckedProbe:
    probe: ast.Probe
    attaches: list[ResolvedAttach]


@dataclass
class Compilation:
    """Everything the passes build up; the last pass's view is the result."""

    source: SourceFile
    options: CompileOptions
    diags: Diagnostics
    registry: Registry = field(default_factory=default_registry)
    program: ast.Program | None = None
    config: dict[str, int | str | bool] = field(default_factory=dict)
    macros: dict[str, int] = field(default_factory=dict)
    structs: dict[str, T.StructType] = field(default_factory=dict)
    enum_values: dict[str, tuple[int, T.EnumType]] = field(default_factory=dict)
    typedefs: dict[str, T.Type] = field(default_factory=dict)
    probes: list[CheckedProbe] = field(default_factory=list)
    maps: dict[str, MapInfo] = field(default_factory=dict)
    env: TypeEnv | None = None
    providers: ProviderRegistry = field(default_factory=ProviderRegistry)


# ---------------------------------------------------------------- passes

def parse_pass(c: Compilation) -> None:
    c.program = parse(c.source, c.diags)


def config_pass(c: Compilation) -> None:
    assert c.program is not None
    c.config = config_mod.resolve(c.program.config, c.options.environ, c.diags)


def c_items_pass(c: Compilation) -> None:
    """Preprocessor lines and C definitions: macros, structs, enums, typedefs."""
    assert c.program is not None
    items = [(i.kind, i.text, i.span) for i in c.program.c_items]
    if not items:
        return
    from . import cdecl, cpp
    kernel = c.options.kernel
    btf = kernel.btf() if kernel is not None else None
    predefined = cpp.default_predefined(btf is not None)
    result = cpp.evaluate(items, predefined=predefined, include_dirs=list(c.options.include_dirs),
                          diags=c.diags, cache_dir=c.options.cache_dir)
    # Evaluating every macro of the included headers costs milliseconds;
    # only the names the script uses are needed.
    used = {n.name for p in c.program.probes for n in p.walk() if isinstance(n, ast.Ident)}
    for name in used & set(result.macros):
        value = result.macro_int(name)
        if value is not None:
            c.macros[name] = value

    def resolve(kind: str, name: str) -> T.Type | None:
        if btf is None:
            return None
        if kind == "struct":
            return btf.struct(name)
        if kind == "union":
            return btf.union(name)
        if kind == "enum":
            return btf.type_by_name(f"enum {name}")
        return btf.typedef(name)

    decls = cdecl.parse_definitions(result.active_definitions, resolve, c.diags, constants=result.macro_int)
    c.structs.update(decls.structs)
    c.enum_values.update(decls.enum_values)
    c.typedefs.update(decls.typedefs)


def imports_pass(c: Compilation) -> None:
    """Merge imported snippets into the program (semantic/imports.py); the
    stdlib's base macros (ppid, pcomm, assert...) need no import, as in
    bpftrace 0.25+, where they are builtins or an implicit stdlib."""
    assert c.program is not None
    from .imports import implicit_base, resolve
    if c.options.preludes:
        from .imports import merge_preludes
        merge_preludes(c.program, c.options.preludes, c.options.environ, c.diags)
    implicit = implicit_base(c.program, lambda name: c.registry.get(name) is not None)
    if c.program.imports or implicit:
        resolve(c.program, c.source, c.options.environ, c.diags, implicit=implicit)


def macros_pass(c: Compilation) -> None:
    """Expand every macro call (semantic/macros.py)."""
    assert c.program is not None
    if not c.program.macros:
        return
    from .macros import expand
    expand(c.program, lambda name: c.registry.get(name) is not None, c.diags)


def probes_pass(c: Compilation) -> None:
    """Resolve every attach point through its provider."""
    assert c.program is not None
    if not c.program.probes:
        c.diags.error("the script has no probes", None,
                      hints=["a script needs at least one probe, e.g. BEGIN { printf(\"hello\\n\"); }"])
        return
    kernel = c.options.kernel
    if kernel is None:
        raise RuntimeError("probe resolution needs a KernelInfo")
    providers = c.providers
    env = ResolveEnv(kernel, c.diags, c.options.params, c.options.pid, c.options.unsafe,
                     strlen=int(c.config.get("max_strlen", 64)))
    total = 0
    for probe in c.program.probes:
        attaches: list[ResolvedAttach] = []
        for ap in probe.attach_points:
            parts = split_attach_point(ap.raw)
            parts = [parts[0]] + [substitute_params(p, ap, env) for p in parts[1:]]
            provider = providers.lookup(parts[0])
            if provider is None:
                c.diags.error(f"unknown probe type '{parts[0]}'", ap.span,
                              hints=suggest(parts[0], providers.names()))
                continue
            attaches.extend(provider.resolve(ap, parts, env))
        kinds = {a.provider for a in attaches}
        if "iter" in kinds and len(kinds) > 1:
            c.diags.error("iter probes cannot share a block with other probe types", probe.span)
        total += len(attaches)
        c.probes.append(CheckedProbe(probe, attaches))
    if total == 0 and not c.diags.has_errors():
        # As bpftrace 0.17 ("No probes to attach"): attach points that name
        # nothing (a uprobe on a function the library lacks: warned above)
        # are passed over, and only a script left with none fails.
        c.diags.error("no probes to attach: every attach point of the script was passed over", None)
    max_probes = int(c.config.get("max_probes", 512))
    syscall_like = all(a.provider == "tracepoint" for p in c.probes for a in p.attaches)
    # Tracepoints are attached through shared raw tracepoints (issue: fast
    # wildcards), so only other kinds count against max_probes.
    if total > max_probes and not syscall_like:
        c.diags.error(f"the script attaches {total} probes; the limit is {max_probes}", None,
                      hints=["raise it with config = { max_probes = N } or BPFTRACE_MAX_PROBES"])


def typecheck_pass(c: Compilation) -> None:
    assert c.program is not None
    opts = CheckOptions(unsafe=c.options.unsafe, has_cpid=c.options.has_cpid,
                        strlen=int(c.config.get("max_strlen", 64)), params=c.options.params,
                        stack_mode=str(c.config.get("stack_mode", "bpftrace")),
                        optional_params=c.options.optional_params)
    env = TypeEnv(c.options.kernel, opts, c.structs, c.enum_values, c.typedefs, c.macros)
    c.env = env
    checker = Checker(c.registry, env, opts, c.diags)
    checker.check_program([(p.probe, p.attaches) for p in c.probes])
    c.maps = checker.maps


PASSES: list[tuple[str, Callable[[Compilation], None]]] = [
    ("parse", parse_pass),
    ("config", config_pass),
    ("imports", imports_pass),
    ("macros", macros_pass),
    ("c", c_items_pass),
    ("probes", probes_pass),
    ("types", typecheck_pass),
]


def run(source: SourceFile, options: CompileOptions, diags: Diagnostics, *,
        until: str | None = None) -> Compilation:
    """Run the passes in order, stopping after the first that reports an
    error, or after the pass named ``until``."""
    # The checker walks the AST recursively; the parser caps nesting (400
    # expression levels, 100 blocks), which needs more than Python's default.
    if sys.getrecursionlimit() < 10000:
        sys.setrecursionlimit(10000)
    c = Compilation(source, options, diags)
    for name, fn in PASSES:
        fn(c)
        if diags.has_errors() or name == until:
            break
    return c
