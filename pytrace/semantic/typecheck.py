"""The type checker: gives every expression a type and reports misuse.

Rules follow bpftrace: scratch variables are per probe and keep the type of
their first assignment; maps are global with one key type and one value type
across all probes (a conflict is reported at both places); aggregations may
only be assigned directly to a map; integer arithmetic widens to 64 bits.

Maps may be read in a probe that comes before the one assigning them, so the
checker makes two passes: the first (silent) learns map types, the second
reports.  Builtins are typed by their entries in ``builtins.registry``.
"""

from __future__ import annotations

import re
from typing import Iterator

from ..builtins.registry import Kind, Registry
from ..diagnostics import Diagnostics, Note, suggest
from ..frontend import ast
from ..providers.base import ResolvedAttach
from ..providers.registry import PROVIDER_CLASSES
from ..records import dataclass, field
from ..source import Span
from . import types as T
from .macros import split_hygienic
from .context import CheckOptions, TypeEnv


# Canonical probe type names, for hints about where a builtin is available.
_PROVIDER_NAMES = [cls.name for cls in PROVIDER_CLASSES]


def _join_or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# '1.5' parses as a tuple index on an integer.
_FLOAT = re.compile(r"^[0-9]+\.[0-9]+$")


def _tuple_index_span(e: ast.TupleIndex) -> Span | None:
    """The span of the index after the '.' of 't.N'."""
    if e.span is None:
        return None
    dot = e.span.text.rfind(".")
    return Span(e.span.file, e.span.start + dot + 1, e.span.end) if dot >= 0 else e.span


@dataclass
class MapInfo:
    name: str
    key: T.Type | None              # None: scalar map (no key)
    value: T.Type | None
    first_span: Span | None
    key_span: Span | None = None
    assigned: bool = False


@dataclass
class ProbeScope:
    attaches: list[ResolvedAttach]
    variables: dict[str, tuple[T.Type, Span | None]] = field(default_factory=dict)
    loop_depth: int = 0

    @property
    def providers(self) -> set[str]:
        return {a.provider for a in self.attaches}


class Checker:
    """Types one program.  ``check_probe`` is called per probe, twice."""

    def __init__(self, registry: Registry, env: TypeEnv, options: CheckOptions, diags: Diagnostics) -> None:
        self.registry = registry
        self.env = env
        self.options = options
        self.real_diags = diags
        self.diags = diags
        self.maps: dict[str, MapInfo] = {}
        self.scope = ProbeScope([])
        self.silent = False
        # Where errors were reported: an error about an expression that
        # contains one of them is a consequence of it and is not reported.
        self._error_spans: list[Span] = []
        # Errors reported so far, and the expressions that contain one.
        self._attempts = 0
        self._bad: dict[int, ast.Expr] = {}

    # ------------------------------------------------------------ reporting
    def error(self, message: str, span: Span | None, *, hints: list[str] | None = None,
              notes: list[Note] | None = None, independent: bool = False) -> None:
        """Report an error unless it only follows from one already reported
        inside the same expression; ``independent`` errors (that do not
        depend on the types of subexpressions) are always reported."""
        if self.silent:
            return
        self._attempts += 1
        if span is not None and not independent:
            for prev in self._error_spans[-64:]:
                if prev.file is span.file and span.start <= prev.start and prev.end <= span.end:
                    return
        if span is not None:
            self._error_spans.append(span)
        self.diags.error(message, span, hints=hints or [], notes=notes or [])

    def warning(self, message: str, span: Span | None, *, hints: list[str] | None = None) -> None:
        if not self.silent:
            self.diags.warning(message, span, hints=hints or [])

    # ------------------------------------------------------------ entry points
    def check_program(self, probes: list[tuple[ast.Probe, list[ResolvedAttach]]]) -> None:
        self.silent = True
        for probe, attaches in probes:
            self.check_probe(probe, attaches)
        self.silent = False
        for probe, attaches in probes:
            self.check_probe(probe, attaches)

    def check_probe(self, probe: ast.Probe, attaches: list[ResolvedAttach]) -> None:
        self.scope = ProbeScope(attaches)
        iters = [a for a in attaches if a.provider == "iter"]
        if len(iters) > 1:
            # As bpftrace: ctx is each iterator's own struct (bpf_iter__<name>).
            self.error("an iter probe has one attach point", iters[1].span, independent=True,
                       hints=["write one probe per iterator"])
        if probe.predicate is not None:
            t = self.expr(probe.predicate)
            if not self._is_condition(t):
                self.error(f"a predicate must be an integer or a pointer, not {t}", probe.predicate.span)
        self.block(probe.body)

    # ------------------------------------------------------------ statements
    def block(self, b: ast.Block) -> None:
        for s in b.stmts:
            self.stmt(s)

    def stmt(self, s: ast.Stmt) -> None:
        if isinstance(s, ast.ExprStmt):
            e = s.expr
            if isinstance(e, ast.Call):
                b = self.registry.get(e.name)
                if b is not None and b.kind is Kind.AGGREGATION:
                    self.error(f"{e.name}() must be assigned directly to a map", e.span,
                               hints=[f"write '{self._agg_usage(e.name)}'"])
                    return
            self.expr(e)
        elif isinstance(s, ast.Assign):
            self.assign(s)
        elif isinstance(s, ast.Let):
            self.let(s)
        elif isinstance(s, ast.If):
            t = self.expr(s.cond)
            if not self._is_condition(t):
                self.error(f"the condition of 'if' must be an integer or a pointer, not {t}", s.cond.span)
            self.block(s.then)
            if s.orelse is not None:
                self.block(s.orelse)
        elif isinstance(s, ast.Unroll):
            n = self.const_int(s.count)
            if n is None:
                self.error("unroll needs a constant count", s.count.span)
            elif not 1 <= n <= 100:
                self.error(f"unroll count must be between 1 and 100, not {n}", s.count.span)
            self.block(s.body)
        elif isinstance(s, ast.While):
            t = self.expr(s.cond)
            if not self._is_condition(t):
                self.error(f"the condition of 'while' must be an integer, not {t}", s.cond.span)
            self._loop(s.body)
        elif isinstance(s, ast.ForMap):
            info = self.maps.get(s.map.name)
            self.expr(s.map, allow_bare_map=True)
            if info is None or info.value is None:
                kv: T.Type = T.TupleType((T.U64, T.U64))
            else:
                key = info.key if info.key is not None else T.U64
                kv = T.TupleType((key, self._readable(info.value)))
            s.var.ty = kv
            self._define_var(s.var.name, kv, s.var.span)
            self._loop(s.body)
        elif isinstance(s, ast.ForRange):
            for e in (s.start, s.end):
                t = self.expr(e)
                if not t.is_integer():
                    self.error(f"a range bound must be an integer, not {t}", e.span)
            s.var.ty = T.I64
            self._define_var(s.var.name, T.I64, s.var.span)
            self._loop(s.body)
        elif isinstance(s, (ast.Break, ast.Continue)):
            if self.scope.loop_depth == 0:
                word = "break" if isinstance(s, ast.Break) else "continue"
                self.error(f"'{word}' outside of a loop", s.span)
        elif isinstance(s, ast.Return):
            if s.value is not None:
                self.expr(s.value)
        elif isinstance(s, ast.BlockStmt):
            self.block(s.block)

    def _loop(self, body: ast.Block) -> None:
        self.scope.loop_depth += 1
        self.block(body)
        self.scope.loop_depth -= 1

    def let(self, s: ast.Let) -> None:
        declared: T.Type | None = None
        if s.type_spec is not None:
            declared = self.type_of_spec(s.type_spec)
        if s.value is not None:
            vt = self.expr(s.value)
            if declared is not None and vt is not None and not self._assignable(declared, vt):
                self.error(f"cannot initialise {s.var.name} of type {declared} with a value of type {vt}",
                           s.value.span)
            declared = declared or vt
        if declared is None:
            declared = T.I64
        if s.var.name in self.scope.variables and not self.silent:
            prev = self.scope.variables[s.var.name][1]
            self.error(f"variable {s.var.name} is already declared", s.var.span,
                       notes=[Note("declared here", prev)] if prev is not None else [])
        s.var.ty = declared
        self.scope.variables[s.var.name] = (declared, s.var.span)

    def assign(self, s: ast.Assign) -> None:
        target = s.target
        value = s.value
        if isinstance(value, ast.Call):
            b = self.registry.get(value.name)
            if b is not None and b.kind is Kind.AGGREGATION:
                if not isinstance(target, ast.Map):
                    self.error(f"{value.name}() must be assigned directly to a map, not to a variable",
                               value.span, hints=[f"write '{self._agg_usage(value.name)}'"])
                    self.expr(value, allow_aggregation=True)
                    return
                if s.op != "=":
                    self.error(f"{value.name}() must be assigned with '=', not '{s.op}'", value.span,
                               hints=[f"write '{self._agg_usage(value.name, target.name)}'"])
                vt = self.expr(value, allow_aggregation=True)
                self._map_store(target, vt, value.span)
                return
        vt = self.expr(value)
        if isinstance(target, ast.Map):
            if s.op != "=":
                info = self.maps.get(target.name)
                current = info.value if info else None
                if isinstance(current, T.AggregationType):
                    self.error(f"'{s.op}' cannot be applied to {target.name}, which holds {current}", s.span,
                               hints=[f"a {current.kind.value}() map is only updated by "
                                      f"'{self._agg_usage(current.kind.value, target.name)}'"])
                    return
                if current is not None and not current.is_integer():
                    self.error(f"'{s.op}' needs an integer map, but {target.name} holds {current}", s.span)
                if not vt.is_integer() and not isinstance(vt, T.PointerType):
                    self.error(f"'{s.op}' needs an integer operand, not {vt}", value.span)
                vt = T.I64 if current is None else current
            if isinstance(vt, T.VoidType):
                self.error(self._no_value(value, "assigned"), value.span)
                return
            self._map_store(target, vt, value.span)
        elif isinstance(target, ast.Variable):
            if s.op != "=":
                prev = self.scope.variables.get(target.name)
                if prev is None:
                    self.error(f"undefined variable {target.name}", target.span)
                    return
                if not prev[0].is_integer() and not isinstance(prev[0], T.PointerType):
                    self.error(f"'{s.op}' needs an integer variable, but {target.name} is {prev[0]}", s.span)
                target.ty = prev[0]
                return
            if isinstance(vt, T.VoidType):
                self.error(self._no_value(value, "assigned"), value.span)
                return
            prev = self.scope.variables.get(target.name)
            if prev is not None:
                if not self._assignable(prev[0], vt):
                    self.error(f"type mismatch for {target.name}: it holds {prev[0]} and cannot take {vt}",
                               value.span, notes=[Note(f"{target.name} got its type here", prev[1])])
                    return
                vt = self._unify(prev[0], vt)
            target.ty = vt
            self.scope.variables[target.name] = (vt, prev[1] if prev else target.span)

    def _agg_usage(self, name: str, map_name: str = "@name") -> str:
        """'@name = hist(value)': how an aggregation is written."""
        b = self.registry.get(name)
        sig = b.signature if b is not None else f"@m = {name}(...)"
        return sig.replace("@m", map_name, 1)

    @staticmethod
    def _no_value(e: ast.Expr, use: str) -> str:
        if isinstance(e, ast.Call):
            return f"{e.name}() returns no value and cannot be {use}"
        return f"this expression has no value and cannot be {use}"

    def _define_var(self, name: str, t: T.Type, span: Span | None) -> None:
        self.scope.variables[name] = (t, span)

    def _map_store(self, m: ast.Map, vt: T.Type, vspan: Span | None) -> None:
        kt = self._map_key_type(m)
        info = self.maps.get(m.name)
        if info is None:
            self.maps[m.name] = MapInfo(m.name, kt, vt, m.span, m.span, assigned=True)
            m.ty = vt
            return
        self._check_key(info, m, kt)
        if info.value is None:
            info.value = vt
            info.first_span = m.span
        elif not self._same_map_value(info.value, vt):
            self.error(f"type mismatch for map {m.name}: it holds {info.value} and cannot take {vt}", vspan,
                       notes=[Note(f"{m.name} got its type here", info.first_span)])
        else:
            info.value = self._unify(info.value, vt)
        info.assigned = True
        m.ty = info.value

    def _map_key_type(self, m: ast.Map) -> T.Type | None:
        if m.keys is None:
            return None
        kts = []
        for k in m.keys:
            t = self.expr(k)
            if isinstance(t, T.VoidType):
                self.error(self._no_value(k, "a map key"), k.span)
            elif isinstance(t, T.AggregationType):
                self.error(f"{t} cannot be a map key", k.span)
            kts.append(self._key_form(t))
        if not kts:
            return None
        return kts[0] if len(kts) == 1 else T.TupleType(tuple(kts))

    @staticmethod
    def _key_form(t: T.Type) -> T.Type:
        # Keys are stored at full width so that @m[(uint8)1] and @m[1] meet.
        # An enum with enumerators stays itself: such keys print as names.
        if isinstance(t, T.EnumType) and t.names:
            return t
        if isinstance(t, (T.IntType, T.BoolType, T.EnumType)):
            return T.I64 if getattr(t, "signed", False) else T.U64
        return t

    def _check_key(self, info: MapInfo, m: ast.Map, kt: T.Type | None) -> None:
        if (info.key is None) != (kt is None):
            if info.key is None:
                self.error(f"map {m.name} is used with a key here but without one elsewhere", m.span,
                           notes=[Note(f"{m.name} used without a key here", info.key_span)])
            else:
                self.error(f"map {m.name} is used without a key here but with one elsewhere", m.span,
                           notes=[Note(f"{m.name} used with a key here", info.key_span)])
            return
        if kt is None or info.key is None:
            return
        if not self._same_map_value(info.key, kt):
            self.error(f"map {m.name} has key type {info.key} and cannot take a key of type {kt}", m.span,
                       notes=[Note(f"{m.name} got its key type here", info.key_span)])
        else:
            info.key = self._unify(info.key, kt)

    # ------------------------------------------------------------ expressions
    def expr(self, e: ast.Expr, *, allow_aggregation: bool = False, allow_bare_map: bool = False) -> T.Type:
        before = self._attempts
        t = self._expr(e, allow_aggregation, allow_bare_map)
        e.ty = t
        if self._attempts != before:
            self._bad[id(e)] = e
        return t

    def _is_bad(self, e: ast.Expr) -> bool:
        """Whether an error was reported inside ``e`` (its type is a guess)."""
        return id(e) in self._bad

    def _expr(self, e: ast.Expr, allow_agg: bool, allow_bare_map: bool) -> T.Type:
        if isinstance(e, ast.Integer):
            return T.I64 if e.value < 2**63 else T.U64
        if isinstance(e, ast.Bool):
            return T.BOOL
        if isinstance(e, ast.String):
            return T.StringType(len(e.value.encode("utf-8", "surrogateescape")) + 1)
        if isinstance(e, ast.Variable):
            v = self.scope.variables.get(e.name)
            if v is None:
                name, macro = split_hygienic(e.name)
                if macro is not None:
                    self.error(f"undefined variable {name} in macro '{macro}'", e.span,
                               hints=[f"a macro's scratch variables are its own: pass the caller's {name} "
                                      f"as a parameter ({name}) to use it"])
                else:
                    self.error(f"undefined variable {e.name}", e.span,
                               hints=suggest(e.name, list(self.scope.variables)))
                return T.I64
            return v[0]
        if isinstance(e, ast.Positional):
            return self.env.positional_type(e.index, self, e.span)
        if isinstance(e, ast.ParamCount):
            return T.I64
        if isinstance(e, ast.Map):
            return self.map_read(e, allow_bare_map)
        if isinstance(e, ast.Ident):
            return self.ident(e)
        if isinstance(e, ast.Call):
            return self.call(e, allow_agg)
        if isinstance(e, ast.MacroExpansion):
            for s in e.stmts:
                self.stmt(s)
            if e.result is None:
                return T.VOID
            return self.expr(e.result, allow_aggregation=allow_agg, allow_bare_map=allow_bare_map)
        if isinstance(e, ast.Binary):
            return self.binary(e)
        if isinstance(e, ast.Unary):
            return self.unary(e)
        if isinstance(e, ast.IncDec):
            return self.incdec(e)
        if isinstance(e, ast.Ternary):
            return self.ternary(e)
        if isinstance(e, ast.Cast):
            return self.cast(e)
        if isinstance(e, ast.FieldAccess):
            return self.field_access(e)
        if isinstance(e, ast.TupleIndex):
            if isinstance(e.operand, ast.Integer) and e.span is not None and _FLOAT.match(e.span.text):
                self.error("floating-point numbers are not supported", e.span,
                           hints=["use integers (scale the value, e.g. by 1000)"])
                return T.I64
            t = self.expr(e.operand)
            if not isinstance(t, T.TupleType):
                if not self._is_bad(e.operand):
                    self.error(f"'.{e.index}' needs a tuple, not {t}", e.span)
                return T.I64
            if e.index >= len(t.elements):
                n = len(t.elements)
                self.error(f"tuple index {e.index} is out of range: the tuple has {n} "
                           f"element{'s' if n != 1 else ''}",
                           _tuple_index_span(e), hints=[f"valid indexes are 0 to {n - 1}"] if n else [])
                return T.I64
            return t.elements[e.index]
        if isinstance(e, ast.Index):
            return self.index(e)
        if isinstance(e, ast.Tuple):
            elems = []
            for x in e.elements:
                t = self.expr(x)
                if isinstance(t, (T.VoidType, T.AggregationType)):
                    self.error(f"{t} cannot be part of a tuple", x.span)
                elems.append(t)
            return T.TupleType(tuple(elems))
        if isinstance(e, ast.Sizeof):
            if isinstance(e.target, ast.TypeSpec):
                t = self.type_of_spec(e.target)
            else:
                t = self.type_or_expr(e.target)
            return T.U64
        if isinstance(e, ast.Offsetof):
            st = self.type_of_spec(e.target) if isinstance(e.target, ast.TypeSpec) else self.type_or_expr(e.target)
            cur: T.Type | None = st
            offset = 0
            for name in e.path:
                struct = self._as_struct(cur)
                if struct is None:
                    self.error(f"offsetof needs a struct, not {cur}", e.span)
                    return T.U64
                f = struct.field(name)
                if f is None:
                    self.error(f"{struct} has no field '{name}'", e.span, hints=suggest(name, struct.field_names()))
                    return T.U64
                cur = f.type
                offset += f.offset
            e.offset = offset
            return T.U64
        self.error(f"unsupported expression {type(e).__name__}", e.span)
        return T.I64

    def type_or_expr(self, e: ast.Expr) -> T.Type:
        """sizeof(x)/offsetof(x, ...) where x may name a type (a typedef or
        struct known from BTF) rather than a value."""
        if isinstance(e, ast.Ident) and self.registry.get(e.name) is None:
            t = self.env.named_type(e.name)
            if t is not None:
                return t
        return self.expr(e)

    def map_read(self, e: ast.Map, allow_bare_map: bool) -> T.Type:
        info = self.maps.get(e.name)
        kt = self._map_key_type(e)
        if info is None:
            if not self.silent:
                self.error(f"undefined map {e.name}", e.span, hints=suggest(e.name, list(self.maps)))
            return T.I64
        if not allow_bare_map or e.keys is not None:
            self._check_key(info, e, kt)
        if info.value is None:
            return T.I64
        if allow_bare_map and e.keys is None:
            return info.value
        return self._readable(info.value)

    @staticmethod
    def _readable(t: T.Type) -> T.Type:
        """The type of reading a map's value in an expression."""
        if isinstance(t, T.AggregationType):
            if t.kind in (T.AggKind.HIST, T.AggKind.LHIST, T.AggKind.STATS):
                return t
            return T.I64 if t.signed else T.U64
        return t

    def ident(self, e: ast.Ident) -> T.Type:
        name = e.name
        b = self.registry.get(name)
        if b is not None and (b.kind is Kind.VARIABLE or b.bare_ok):
            return self._builtin_use(b, e)
        sigil = self._sigil_hint(name)
        if b is not None:
            self.error(f"{name} is a function; call it as {name}(...)", e.span,
                       hints=sigil or [f"usage: {b.signature}"])
            return T.I64
        t = self.env.identifier(name)
        if t is not None:
            return t
        hints = sigil or suggest(name, self.registry.variables() + self.env.identifier_names())
        self.error(f"unknown identifier '{name}'", e.span, hints=hints)
        return T.I64

    def _sigil_hint(self, name: str) -> list[str]:
        """'did you mean $x?' for a bare name that is a variable or a map."""
        if f"${name}" in self.scope.variables:
            return [f"did you mean '${name}'?"]
        if f"@{name}" in self.maps:
            return [f"did you mean '@{name}'?"]
        return []

    def call(self, e: ast.Call, allow_agg: bool) -> T.Type:
        b = self.registry.get(e.name)
        if b is None:
            self.error(f"unknown function '{e.name}'", e.name_span or e.span,
                       hints=suggest(e.name, self.registry.functions()))
            for a in e.args:
                self.expr(a, allow_bare_map=True)
            return T.I64
        if b.kind is Kind.AGGREGATION and not allow_agg:
            self.error(f"{e.name}() must be assigned directly to a map", e.span,
                       hints=[f"write '{self._agg_usage(e.name)}'"])
        n = len(e.args)
        if b.kind is Kind.VARIABLE and not b.bare_ok and e.args:
            self.error(f"{e.name} takes no arguments, {n} given", e.span, hints=[f"write '{e.name}'"])
            for a in e.args:
                self.expr(a, allow_bare_map=True)
            return self._builtin_use(b, ast.Ident(b.name, span=e.span))
        if n < b.min_args or (b.max_args is not None and n > b.max_args):
            lo, hi = b.min_args, b.max_args
            if lo == hi:
                want = f"{lo} argument{'s' if lo != 1 else ''}" if lo else "no arguments"
            elif hi is None:
                want = f"at least {lo} argument{'s' if lo != 1 else ''}"
            elif lo == 0:
                want = f"at most {hi} argument{'s' if hi != 1 else ''}"
            elif hi == lo + 1:
                want = f"{lo} or {hi} arguments"
            else:
                want = f"{lo} to {hi} arguments"
            self.error(f"{e.name}() takes {want}, {n} given", e.span, hints=[f"usage: {b.signature}"])
            if not b.bare_ok:  # kstack(perf, ...): stack modes are not expressions
                for a in e.args:
                    self.expr(a, allow_bare_map=True)
            return T.I64
        return self._builtin_use(b, e)

    def _builtin_use(self, b, e: ast.Expr) -> T.Type:
        at = (e.name_span if isinstance(e, ast.Call) else None) or e.span
        if b.unsafe and not self.options.unsafe:
            reason = f": it {b.unsafe_reason}" if b.unsafe_reason else ""
            self.error(f"{b.name}() is an unsafe function{reason}", at,
                       hints=["run with --unsafe to allow it"], independent=True)
        if b.providers is not None:
            provs = self.scope.providers
            bad = sorted(p for p in provs if p not in b.providers)
            if bad:
                what = f"{b.name}()" if isinstance(e, ast.Call) else f"'{b.name}'"
                allowed = sorted(b.providers)
                excluded = [p for p in _PROVIDER_NAMES if p not in b.providers]
                if len(excluded) < len(allowed):
                    hint = f"it is available in every probe type except {_join_or(excluded)}"
                else:
                    hint = f"it is available in {_join_or(allowed)} probes"
                self.error(f"{what} is not available in {bad[0]} probes", at, hints=[hint], independent=True)
        t = b.check(e, self)
        return t if t is not None else T.VOID

    def binary(self, e: ast.Binary) -> T.Type:
        lt, rt = self.expr(e.left), self.expr(e.right)
        op = e.op
        if op in ("&&", "||"):
            for side, t in ((e.left, lt), (e.right, rt)):
                if not self._is_condition(t):
                    self.error(f"'{op}' needs integer or pointer operands, not {t}", side.span)
            return T.BOOL
        strings = (T.StringType,)
        if isinstance(lt, strings) or isinstance(rt, strings):
            if op in ("==", "!=") and isinstance(lt, strings) and isinstance(rt, strings):
                return T.BOOL
            if op in ("==", "!="):
                self.error(f"cannot compare {lt} with {rt}", e.span,
                           hints=["strings compare only with strings; use str() to read a char pointer"])
            else:
                self.error(f"'{op}' cannot be applied to {lt} and {rt}", e.span)
            return T.BOOL if op in ("==", "!=", "<", ">", "<=", ">=") else T.I64
        if isinstance(lt, T.TupleType) or isinstance(rt, T.TupleType):
            if op in ("==", "!=") and lt == rt:
                return T.BOOL
            self.error(f"'{op}' cannot be applied to {lt} and {rt}", e.span)
            return T.I64
        lp, rp = isinstance(lt, T.PointerType), isinstance(rt, T.PointerType)
        for side, t in ((e.left, lt), (e.right, rt)):
            if not (t.is_integer() or isinstance(t, (T.PointerType, T.SymbolType))):
                hints = []
                if isinstance(t, T.AggregationType):
                    hints = [f"a {t.kind.value}() map can only be printed; count(), sum(), avg(), min() and "
                             "max() maps can be read as numbers"]
                self.error(f"'{op}' cannot be applied to {t}", side.span, hints=hints)
                return T.I64
        if op in ("==", "!=", "<", ">", "<=", ">="):
            return T.BOOL
        if lp or rp:
            if op == "+" and lp != rp:
                return lt if lp else rt
            if op == "-" and lp and not rp:
                return lt
            if op == "-" and lp and rp:
                return T.I64
            if op in ("&", "|", "^", ">>", "<<", "%", "/", "*"):
                return T.U64
            self.error(f"'{op}' cannot be applied to two pointers", e.span)
            return T.U64
        if op in ("<<", ">>", "&", "|", "^") and not (getattr(lt, "signed", False) and getattr(rt, "signed", False)):
            return T.U64
        return T.promote(lt, rt)

    def unary(self, e: ast.Unary) -> T.Type:
        t = self.expr(e.operand)
        if e.op == "!":
            if not self._is_condition(t):
                self.error(f"'!' cannot be applied to {t}", e.span)
            return T.BOOL
        if e.op in ("-", "+", "~"):
            if not t.is_integer():
                self.error(f"'{e.op}' cannot be applied to {t}", e.span)
                return T.I64
            if e.op == "-":
                return T.I64
            return T.promote(t, t) if isinstance(t, T.BoolType) else t
        if e.op == "*":
            if isinstance(t, T.PointerType):
                pointee = t.pointee
                if isinstance(pointee, T.VoidType):
                    self.error("cannot dereference a void pointer", e.span, hints=["cast it first: *(uint64 *)p"])
                    return T.U64
                if isinstance(pointee, T.StructType):
                    return self._complete(pointee, e.span)
                return pointee
            if t.is_integer():
                # bpftrace reads 8 bytes at an integer address (loads.bt: *kaddr("avenrun")).
                return T.U64
            self.error(f"cannot dereference {t}", e.span)
            return T.U64
        if e.op == "&":
            if not isinstance(e.operand, (ast.Variable, ast.Map, ast.FieldAccess)):
                self.error("'&' needs a variable, a map or a field", e.span)
            return T.PointerType(t)
        return t

    def incdec(self, e: ast.IncDec) -> T.Type:
        target = e.target
        if isinstance(target, ast.Map):
            kt = self._map_key_type(target)
            info = self.maps.get(target.name)
            if info is None:
                self.maps[target.name] = MapInfo(target.name, kt, T.I64, target.span, target.span, assigned=True)
                target.ty = T.I64
                return T.I64
            self._check_key(info, target, kt)
            if isinstance(info.value, T.AggregationType):
                agg = info.value.kind.value
                self.error(f"'{e.op}' cannot be applied to {target.name}, which holds {info.value}", e.span,
                           hints=[f"a {agg}() map is only updated by '{self._agg_usage(agg, target.name)}'"])
            elif info.value is not None and not info.value.is_integer():
                self.error(f"'{e.op}' needs an integer map, but {target.name} holds {info.value}", e.span)
            if info.value is None:
                info.value = T.I64
            info.assigned = True
            target.ty = info.value
            return self._readable(info.value)
        if isinstance(target, ast.Variable):
            v = self.scope.variables.get(target.name)
            if v is None:
                self.error(f"undefined variable {target.name}", target.span)
                return T.I64
            if not v[0].is_integer() and not isinstance(v[0], T.PointerType):
                self.error(f"'{e.op}' needs an integer, but {target.name} is {v[0]}", e.span)
            target.ty = v[0]
            return v[0]
        self.error(f"'{e.op}' can only be applied to a variable or a map", e.span)
        self.expr(target)
        return T.I64

    def ternary(self, e: ast.Ternary) -> T.Type:
        ct = self.expr(e.cond)
        if not self._is_condition(ct) and not (e.then is None and isinstance(ct, T.StringType)):
            self.error(f"the condition of '?:' must be an integer or a pointer, not {ct}", e.cond.span)
        tt = ct if e.then is None else self.expr(e.then)
        ot = self.expr(e.orelse)
        if tt.is_integer() and ot.is_integer():
            return T.promote(tt, ot)
        if isinstance(tt, T.StringType) and isinstance(ot, T.StringType):
            return T.StringType(max(tt.length, ot.length))
        if type(tt) is type(ot) and (tt == ot or isinstance(tt, T.PointerType)):
            return tt
        self.error(f"the branches of '?:' have different types: {tt} and {ot}", e.span)
        return tt

    def cast(self, e: ast.Cast) -> T.Type:
        src = self.expr(e.operand)
        dst = self.type_of_spec(e.type_spec)
        if dst is None:
            return T.I64
        if isinstance(dst, T.StructType):
            self.error(f"cannot cast to {dst}; cast to a pointer instead: ({e.type_spec.base} *)", e.span)
            return T.PointerType(dst)
        if isinstance(dst, T.ArrayType):
            if not (src.is_integer() or isinstance(src, T.ArrayType)):
                self.error(f"cannot cast {src} to {dst}", e.span)
            return dst
        if not (src.is_integer() or isinstance(src, (T.PointerType, T.SymbolType, T.ArrayType))):
            self.error(f"cannot cast {src} to {dst}", e.span)
        if isinstance(dst, T.PointerType) and isinstance(src, T.PointerType) \
                and dst.addrspace is T.AddrSpace.NONE and src.addrspace is not T.AddrSpace.NONE:
            # A pointer cast keeps the address space (as bpftrace's does):
            # (struct pt_regs *)ctx in a uprobe is still kernel memory.
            return T.PointerType(dst.pointee, src.addrspace)
        return dst

    def field_access(self, e: ast.FieldAccess) -> T.Type:
        base = self.expr(e.operand)
        struct = self._as_struct(base)
        if struct is None:
            if self._is_bad(e.operand):
                return T.I64
            if isinstance(base, T.TupleType):
                self.error(f"tuples are indexed with numbers ('.0'), not '.{e.name}'", e.name_span or e.span)
            else:
                self.error(f"cannot access field '{e.name}' of {base}", e.name_span or e.span)
            return T.I64
        struct = self._complete(struct, e.span)
        if struct.fields is None:
            return T.I64
        f = struct.field(e.name)
        if f is None:
            if struct.tag == "_args_common":
                missing = [a.target for a in self.scope.attaches
                           if a.args is not None and a.args.field(e.name) is None]
                if not missing:
                    self.error(f"args.{e.name} has a different type in some probes of this block",
                               e.name_span or e.span,
                               hints=["split the block so that each probe reads it with its own type"])
                    return T.I64
                if len(missing) < len(self.scope.attaches):
                    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
                    self.error(f"args.{e.name} is not available in every probe of this block",
                               e.name_span or e.span,
                               hints=[f"{missing[0]}{more} {'have' if more else 'has'} no field '{e.name}'"])
                    return T.I64
            what = "args" if struct.tag.startswith("_") else str(struct)
            self.error(f"{what} has no field '{e.name}'", e.name_span or e.span,
                       hints=suggest(e.name, struct.field_names()))
            return T.I64
        return self._field_type(f.type)

    def _field_type(self, t: T.Type) -> T.Type:
        # char arrays inside structs read as strings, as in bpftrace.
        if isinstance(t, T.ArrayType) and isinstance(t.element, T.IntType) and t.element.bits == 8:
            return T.StringType(t.count)
        if isinstance(t, T.StructType) and t.fields is None:
            return self._complete(t, None)
        return t

    def _as_struct(self, t: T.Type | None) -> T.StructType | None:
        if isinstance(t, T.StructType):
            return t
        if isinstance(t, T.PointerType) and isinstance(t.pointee, T.StructType):
            return t.pointee
        return None

    def _complete(self, s: T.StructType, span: Span | None) -> T.StructType:
        """The struct with its fields, looked up by tag when only declared."""
        if s.fields is not None:
            return s
        full = self.env.struct(s.kind, s.tag)
        if full is None:
            if span is not None:
                self.error(f"unknown type '{s}'", span,
                           hints=["kernel types come from BTF; user types need a struct definition in the script"])
            return s
        return full

    def index(self, e: ast.Index) -> T.Type:
        t = self.expr(e.operand)
        it = self.expr(e.index)
        if not it.is_integer():
            self.error(f"an index must be an integer, not {it}", e.index.span)
        if isinstance(t, T.PointerType):
            if isinstance(t.pointee, T.VoidType):
                self.error("cannot index a void pointer", e.span, hints=["cast it first: ((uint8 *)p)[i]"])
                return T.U8
            return self._field_type(t.pointee)
        if isinstance(t, T.ArrayType):
            n = self.const_int(e.index)
            if n is not None and not 0 <= n < t.count:
                self.error(f"index {n} is out of bounds for {t}", e.index.span)
            return self._field_type(t.element)
        if self._is_bad(e.operand):
            return T.I64
        if isinstance(t, T.StringType):
            n = self.const_int(e.index)
            if n is not None and not 0 <= n < t.length:
                self.error(f"index {n} is out of bounds for {t}", e.index.span,
                           hints=[f"valid indexes are 0 to {t.length - 1}"])
            return T.U8
        self.error(f"cannot index {t}", e.span)
        return T.I64

    # ------------------------------------------------------------ helpers for builtins
    def const_int(self, e: ast.Expr) -> int | None:
        """The value of a constant integer expression, or None."""
        if isinstance(e, ast.Integer):
            return e.value
        if isinstance(e, ast.Positional):
            return self.env.positional_int(e.index)
        if isinstance(e, ast.Unary) and e.op == "-":
            v = self.const_int(e.operand)
            return None if v is None else -v
        if isinstance(e, ast.Ident) and self.registry.get(e.name) is None:
            return self.env.constant(e.name)
        if isinstance(e, ast.Binary):
            a, b = self.const_int(e.left), self.const_int(e.right)
            if a is None or b is None:
                return None
            try:
                return int({"+": a + b, "-": a - b, "*": a * b, "<<": a << b if 0 <= b < 64 else 0,
                            ">>": a >> b if 0 <= b < 64 else 0, "&": a & b, "|": a | b, "^": a ^ b,
                            "/": a // b if b else 0, "%": a % b if b else 0}.get(e.op, None))  # type: ignore[arg-type]
            except TypeError:
                return None
        return None

    def type_of_spec(self, spec: ast.TypeSpec) -> T.Type | None:
        base = spec.base
        t: T.Type | None
        if base in T.INT_TYPE_NAMES:
            t = T.INT_TYPE_NAMES[base]
        elif base == "bool":
            t = T.BOOL
        elif base == "string":
            t = T.StringType(spec.array or self.options.strlen)
            return t
        elif base.startswith(("struct ", "union ")):
            kind, tag = base.split(" ", 1)
            full = self.env.struct(kind, tag)
            t = full if full is not None else T.StructType(kind, tag, None)
            if full is None:
                self.error(f"unknown type '{base}'", spec.span, hints=[
                    "kernel types come from BTF; other types need a definition in the script"])
        elif base.startswith("enum "):
            t = self.env.named_type(base) or T.EnumType(base[5:])
        else:
            t = self.env.named_type(base)
            if t is None:
                self.error(f"unknown type '{base}'", spec.span, hints=suggest(base, list(T.INT_TYPE_NAMES)))
                return None
        for _ in range(spec.pointer):
            t = T.PointerType(t)
        if spec.array is not None:
            t = T.ArrayType(t, spec.array)
        return t

    def _is_condition(self, t: T.Type) -> bool:
        return t.is_integer() or isinstance(t, (T.PointerType, T.SymbolType))

    @staticmethod
    def _unify(a: T.Type, b: T.Type) -> T.Type:
        if isinstance(a, T.StringType) and isinstance(b, T.StringType):
            return T.StringType(max(a.length, b.length))
        if isinstance(a, T.BufferType) and isinstance(b, T.BufferType):
            return T.BufferType(max(a.length, b.length))
        if isinstance(a, T.TupleType) and isinstance(b, T.TupleType) and len(a.elements) == len(b.elements):
            return T.TupleType(tuple(Checker._unify(x, y) for x, y in zip(a.elements, b.elements)))
        if a.is_integer() and b.is_integer() and not isinstance(a, T.EnumType):
            if isinstance(a, T.IntType) and isinstance(b, T.IntType):
                return T.IntType(max(a.bits, b.bits), a.signed or b.signed)
        return a

    def _same_map_value(self, a: T.Type, b: T.Type) -> bool:
        if isinstance(a, T.AggregationType) or isinstance(b, T.AggregationType):
            # An aggregation map takes only the same aggregation (bpftrace
            # rejects '@x = count(); @x = 5;' and '@x++' on it).
            return (isinstance(a, T.AggregationType) and isinstance(b, T.AggregationType)
                    and a.kind is b.kind and a.params == b.params)
        return self._assignable(a, b)

    @staticmethod
    def _assignable(target: T.Type, value: T.Type) -> bool:
        if target.is_integer() and value.is_integer():
            return True
        if isinstance(target, T.StringType) and isinstance(value, T.StringType):
            return True
        if isinstance(target, T.BufferType) and isinstance(value, T.BufferType):
            return True
        if isinstance(target, T.PointerType) and isinstance(value, T.PointerType):
            return True
        if isinstance(target, T.PointerType) and value.is_integer():
            return True
        if isinstance(target, T.TupleType) and isinstance(value, T.TupleType):
            return len(target.elements) == len(value.elements) and all(
                Checker._assignable(a, b) for a, b in zip(target.elements, value.elements))
        if isinstance(target, T.StackType) and isinstance(value, T.StackType):
            return target.user == value.user
        return target == value

    def iter_maps(self) -> Iterator[MapInfo]:
        return iter(self.maps.values())
