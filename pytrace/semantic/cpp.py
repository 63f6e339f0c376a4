"""The C preprocessor subset that bpftrace scripts use at the top level.

Owns: evaluating a script's preprocessor lines (#if/#ifdef/#ifndef/#elif/#else/
#endif, #define/#undef, #include, #error ...) to decide which C definitions are
active, and harvesting object-like macros from the script and from included
userspace headers (so ``AF_INET`` means 2 after ``#include <sys/socket.h>``).
Also owns the C token lexer, macro expansion and the integer constant
expression evaluator, which ``cdecl`` reuses for array sizes and enum values.

Headers are read only for their directives: C declarations in them are skipped
(kernel types come from BTF).  Problems inside headers are never reported —
only the script's own directives produce diagnostics.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from typing import Any, Callable, Iterable, NamedTuple

from ..diagnostics import Diagnostics
from ..records import dataclass, field
from ..source import Span
from .cexpr import (Token, tokenize, _fast_tokenize, ExprError, IntExprParser)

# gcc's search order; callers may pass their own list.
DEFAULT_INCLUDE_DIRS: tuple[str, ...] = (
    "/usr/local/include", "/usr/include/x86_64-linux-gnu", "/usr/include")

_KERNEL_HEADER_HINT = ("kernel headers are not installed; kernel types come from BTF, so remove "
                       "the #include or put it under #ifndef BPFTRACE_HAVE_BTF")
_MAX_INCLUDE_DEPTH = 200
_MAX_EXPANSIONS = 20000  # bounds pathological (exponential) macro expansion


def default_predefined(have_btf: bool) -> dict[str, str]:
    """The macros clang predefines for x86_64 Linux that glibc headers test,
    plus BPFTRACE_HAVE_BTF when kernel BTF is available (as bpftrace does)."""
    macros = {
        "__linux__": "1", "__linux": "1", "__unix__": "1", "__unix": "1",
        "__x86_64__": "1", "__x86_64": "1", "__amd64__": "1", "__LP64__": "1", "_LP64": "1",
        "__CHAR_BIT__": "8", "__SIZEOF_SHORT__": "2", "__SIZEOF_INT__": "4",
        "__SIZEOF_LONG__": "8", "__SIZEOF_LONG_LONG__": "8", "__SIZEOF_POINTER__": "8",
        "__SIZEOF_SIZE_T__": "8", "__SCHAR_MAX__": "127", "__SHRT_MAX__": "32767",
        "__INT_MAX__": "2147483647", "__LONG_MAX__": "9223372036854775807L",
        "__LONG_LONG_MAX__": "9223372036854775807LL",
        "__ORDER_LITTLE_ENDIAN__": "1234", "__ORDER_BIG_ENDIAN__": "4321",
        "__ORDER_PDP_ENDIAN__": "3412", "__BYTE_ORDER__": "__ORDER_LITTLE_ENDIAN__",
        "__STDC__": "1", "__STDC_VERSION__": "201710L", "__STDC_HOSTED__": "1",
        "__GNUC__": "4", "__GNUC_MINOR__": "2", "__GNUC_PATCHLEVEL__": "1", "__clang__": "1",
    }
    if have_btf:
        macros["BPFTRACE_HAVE_BTF"] = "1"
    return macros


# ---------------------------------------------------------------------------
# Macro expansion


@dataclass(frozen=True)
class FunctionMacro:
    params: tuple[str, ...]
    body: str
    variadic: bool = False  # the last parameter collects the rest (__VA_ARGS__)


def _hidden(tok: Token, hide: frozenset[str]) -> Token:
    # Only identifiers can expand, so only they need a hide set.
    return Token(tok.kind, tok.text, tok.start, tok.end, tok.hide | hide) if tok.kind == "id" else tok


class _Expander:
    """Expands macros in a token list (hide sets as in Prosser's algorithm)."""

    def __init__(self, objs: dict[str, str], funcs: dict[str, FunctionMacro],
                 has_include: Callable[[str, bool, bool], bool] | None = None) -> None:
        self.objs = objs
        self.funcs = funcs
        self.has_include = has_include
        self._bodies: dict[str, list[Token]] = {}
        self._plans: dict[FunctionMacro, tuple[list[tuple[str, Any]], bool]] = {}
        self._budget = 0

    def expand(self, toks: list[Token], in_if: bool) -> list[Token]:
        self._budget = _MAX_EXPANSIONS
        return self._expand(list(toks), in_if)

    def _body(self, text: str) -> list[Token]:
        toks = self._bodies.get(text)
        if toks is None:
            toks = self._bodies[text] = _fast_tokenize(text)
        return toks

    def _spend(self, tok: Token) -> None:
        self._budget -= 1
        if self._budget < 0:
            raise ExprError("macro expansion is too deep", tok)

    def _expand(self, toks: list[Token], in_if: bool) -> list[Token]:
        i = 0
        while i < len(toks):
            tok = toks[i]
            name = tok.text
            if tok.kind != "id" or name in tok.hide:
                i += 1
                continue
            if in_if and name == "defined":
                toks[i:] = self._defined(toks, i)
                i += 1
            elif in_if and name in ("__has_include", "__has_include_next"):
                toks[i:] = self._has_include(toks, i, name.endswith("next"))
                i += 1
            elif name in self.objs:
                self._spend(tok)
                hide = tok.hide | {name}
                toks[i:i + 1] = [_hidden(t, hide) for t in self._body(self.objs[name])]
            elif name in self.funcs and i + 1 < len(toks) and toks[i + 1].text == "(":
                self._spend(tok)
                args, close = self._arguments(toks, i + 1)
                hide = (tok.hide & toks[close].hide) | {name}
                body = self._substitute(self.funcs[name], name, args, tok, in_if)
                toks[i:close + 1] = [_hidden(t, hide) for t in body]
            else:
                i += 1
        return toks

    def _defined(self, toks: list[Token], i: int) -> list[Token]:
        j = i + 1
        paren = j < len(toks) and toks[j].text == "("
        j += paren
        if j >= len(toks) or toks[j].kind != "id":
            raise ExprError("macro name missing after 'defined'", toks[i])
        value = toks[j].text in self.objs or toks[j].text in self.funcs
        if paren:
            j += 1
            if j >= len(toks) or toks[j].text != ")":
                raise ExprError("missing ')' after 'defined'", toks[i])
        return [Token("num", "1" if value else "0", toks[i].start, toks[j].end)] + toks[j + 1:]

    def _has_include(self, toks: list[Token], i: int, next_: bool) -> list[Token]:
        if i + 1 >= len(toks) or toks[i + 1].text != "(":
            raise ExprError(f"missing '(' after '{toks[i].text}'", toks[i])
        j = i + 2
        while j < len(toks) and toks[j].text != ")":
            j += 1
        inner = toks[i + 2:j]
        if j >= len(toks) or not inner:
            raise ExprError(f"invalid '{toks[i].text}' operand", toks[i])
        if inner[0].kind == "str":
            name, angled = inner[0].text[1:-1], False
        else:
            name, angled = "".join(t.text for t in inner).strip("<>"), True
        found = self.has_include(name, angled, next_) if self.has_include else False
        return [Token("num", "1" if found else "0", toks[i].start, toks[j].end)] + toks[j + 1:]

    def _arguments(self, toks: list[Token], open_: int) -> tuple[list[list[Token]], int]:
        args: list[list[Token]] = [[]]
        depth = 0
        for j in range(open_ + 1, len(toks)):
            t = toks[j]
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                if depth == 0:
                    return args, j
                depth -= 1
            elif t.text == "," and depth == 0:
                args.append([])
                continue
            args[-1].append(t)
        raise ExprError("unterminated argument list of macro", toks[open_ - 1])

    def _substitute(self, macro: FunctionMacro, name: str, args: list[list[Token]],
                    at: Token, in_if: bool) -> list[Token]:
        params = macro.params
        if len(params) == 0 and args == [[]]:
            args = []
        if macro.variadic and len(args) >= len(params) - 1:
            head, rest = args[:len(params) - 1], args[len(params) - 1:]
            tail: list[Token] = []
            for k, a in enumerate(rest):
                tail += ([Token("op", ",", at.start, at.end)] if k else []) + a
            args = head + [tail]
        if len(args) != len(params):
            raise ExprError(f"macro '{name}' takes {len(params)} arguments, {len(args)} given", at)
        plan, has_paste = self._plan(macro)
        expanded: dict[int, list[Token]] = {}
        out: list[Token] = []
        for op, item in plan:
            if op == "tok":
                out.append(item)
            elif op == "arg":
                if item not in expanded:
                    expanded[item] = self._expand(list(args[item]), in_if)
                out.extend(expanded[item])
            elif op == "raw":  # operands of ## are not macro-expanded first
                out.extend(args[item] or [Token("pm", "", at.start, at.end)])
            elif op == "str":
                raw = " ".join(t.text for t in args[item])
                text = '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'
                out.append(Token("str", text, at.start, at.end))
            else:
                out.append(Token("paste", "##", at.start, at.end))
        return self._paste(out) if has_paste else out

    def _plan(self, macro: FunctionMacro) -> tuple[list[tuple[str, Any]], bool]:
        """The body of a function-like macro pre-sorted into what substitution does
        with each token, computed once per macro."""
        plan = self._plans.get(macro)
        if plan is not None:
            return plan
        index = {p: k for k, p in enumerate(macro.params)}
        body = self._body(macro.body)
        steps: list[tuple[str, Any]] = []
        k = 0
        while k < len(body):
            bt = body[k]
            nxt = body[k + 1] if k + 1 < len(body) else None
            if bt.text == "#" and nxt is not None and nxt.text in index:
                steps.append(("str", index[nxt.text]))
                k += 2
                continue
            if bt.text == "##":
                steps.append(("paste", None))
            elif bt.kind == "id" and bt.text in index:
                pasted = (steps and steps[-1][0] == "paste") or (nxt is not None and nxt.text == "##")
                steps.append(("raw" if pasted else "arg", index[bt.text]))
            else:
                steps.append(("tok", bt))
            k += 1
        plan = self._plans[macro] = (steps, any(op == "paste" for op, _ in steps))
        return plan

    def _paste(self, toks: list[Token]) -> list[Token]:
        out: list[Token] = []
        k = 0
        while k < len(toks):
            t = toks[k]
            if t.kind == "paste" and out and k + 1 < len(toks):
                left, right = out.pop(), toks[k + 1]
                if left.text == "," and right.kind == "pm":  # GNU: , ## __VA_ARGS__
                    k += 2
                    continue
                joined = tokenize(left.text + right.text)
                if len(joined) == 1:
                    out.append(joined[0]._replace(start=left.start, end=right.end))
                else:
                    out += [x for x in (left, right) if x.kind != "pm"]
                k += 2
                continue
            out.append(t)
            k += 1
        return [t for t in out if t.kind not in ("pm", "paste")]


# ---------------------------------------------------------------------------
# Directives


@dataclass
class CppResult:
    """What a script's preprocessor lines amount to."""

    active_definitions: list[tuple[str, Span]]
    macros: dict[str, str]  # object-like: name -> replacement text
    includes: list[str]  # the script's active #include names, as written
    function_macros: dict[str, FunctionMacro] = field(default_factory=dict)
    _values: dict[str, int | None] = field(default_factory=dict, init=False, repr=False)
    _expander: _Expander | None = field(default=None, init=False, repr=False)

    def macro_int(self, name: str) -> int | None:
        """The integer an object-like macro expands to, or None if it is not an
        integer constant expression (C semantics: ``~0U`` is 0xffffffff)."""
        if name not in self._values:
            self._values[name] = None
            if name in self.macros:
                if self._expander is None:
                    self._expander = _Expander(self.macros, self.function_macros)
                try:
                    toks = self._expander.expand([Token("id", name, 0, len(name))], in_if=False)
                    if toks:
                        self._values[name] = IntExprParser(toks).evaluate().value
                except ExprError:
                    pass
        return self._values[name]


class _Cond:
    """One open #if group."""

    __slots__ = ("parent", "active", "taken", "seen_else", "span", "keyword")

    def __init__(self, parent: bool, active: bool, span: Span | None, keyword: str) -> None:
        self.parent = parent      # the enclosing group is active
        self.active = active      # the current branch is active
        self.taken = active or not parent  # some branch was taken (or none can be)
        self.seen_else = False
        self.span = span
        self.keyword = keyword


class _Where(NamedTuple):
    directory: str | None  # searched first for "x" includes
    index: int             # include_dirs index the file was found at (-1: elsewhere)


# Comments (the unrolled /* */ form is several times faster than /\*.*?\*/) and
# the string/char literals they must not start inside.
_HEADER_STRIP = re.compile(r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/|//[^\n]*"
                           r"|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'")
_HEADER_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*([A-Za-z_]\w*)[ \t]*(.*)$", re.M)
_DEFINE = re.compile(r"([A-Za-z_]\w*)(\()?")
_CONDITIONALS = ("if", "ifdef", "ifndef", "elif", "elifdef", "elifndef", "else", "endif")


def _strip_comments(text: str) -> str:
    text = text.replace("\\\r\n", "").replace("\\\n", "")
    if "/" not in text:
        return text
    return _HEADER_STRIP.sub(lambda m: " " if m.group()[0] == "/" else m.group(), text)


class _Preprocessor:
    """The macro table and include machinery for one evaluate() call (all caches
    live here, so nothing outlives the call)."""

    def __init__(self, predefined: dict[str, str], include_dirs: list[str], diags: Diagnostics) -> None:
        self.objs: dict[str, str] = dict(predefined)
        self.funcs: dict[str, FunctionMacro] = {}
        self.include_dirs = list(include_dirs)
        self.diags = diags
        self.includes: list[str] = []
        self.expander = _Expander(self.objs, self.funcs, self._has_include)
        self._headers: dict[str, _Header] = {}
        self._found: dict[tuple[str, str | None, int], tuple[str, int] | None] = {}
        self._once: set[str] = set()
        self._if_tokens: dict[str, list[Token]] = {}
        self._where = _Where(None, -1)  # the file whose directives are being run
        self._current_file = ""

    # -- conditionals and directives (shared by the script and headers) --

    def directive(self, name: str, rest: str, stack: list[_Cond], span: Span | None, depth: int) -> None:
        """Run one directive; ``span`` is None inside headers (no diagnostics there)."""
        if name in _CONDITIONALS:
            self._conditional(name, rest, stack, span)
            return
        if stack and not stack[-1].active:
            return  # C ignores everything else, even invalid directives, in skipped groups
        if name == "define":
            self._define(rest, span)
        elif name == "undef":
            m = _DEFINE.match(rest)
            if m is None:
                self._error("macro name missing in #undef", span)
            else:
                self.objs.pop(m.group(1), None)
                self.funcs.pop(m.group(1), None)
        elif name in ("include", "include_next", "import"):
            self._include_directive(rest, span, depth, name == "include_next")
        elif name == "error":
            self._error(rest or "#error", span)
        elif name == "warning":
            if span is not None:
                self.diags.warning(rest or "#warning", span)
        elif name == "pragma":
            if rest.split()[:1] == ["once"] and span is None and self._where.directory is not None:
                self._once.add(self._current_file)
        elif name not in ("line", "ident", "sccs", "assert", "unassert"):
            self._error(f"invalid preprocessing directive '#{name}'", span)

    def _error(self, message: str, span: Span | None, hints: Iterable[str] = ()) -> None:
        if span is not None:
            self.diags.error(message, span, hints=hints)

    def _conditional(self, name: str, rest: str, stack: list[_Cond], span: Span | None) -> None:
        if name in ("if", "ifdef", "ifndef"):
            parent = not stack or stack[-1].active
            value = parent and self._test(name, rest, span)
            stack.append(_Cond(parent, value, span, name))
            return
        if not stack:
            self._error(f"#{name} without #if", span)
            return
        top = stack[-1]
        if name == "endif":
            stack.pop()
        elif top.seen_else:
            self._error(f"#{name} after #else", span)
            top.active = False
        elif name == "else":
            top.seen_else = True
            top.active = not top.taken
            top.taken = True
        else:  # elif, elifdef, elifndef
            test = {"elif": "if", "elifdef": "ifdef", "elifndef": "ifndef"}[name]
            top.active = not top.taken and self._test(test, rest, span)
            top.taken = top.taken or top.active

    def _test(self, name: str, rest: str, span: Span | None) -> bool:
        if name != "if":
            m = _DEFINE.match(rest)
            if m is None:
                self._error(f"macro name missing in #{name}", span)
                return False
            found = m.group(1) in self.objs or m.group(1) in self.funcs
            return found if name == "ifdef" else not found
        toks = self._if_tokens.get(rest)
        if toks is None:
            toks = self._if_tokens[rest] = _fast_tokenize(rest)
        if not toks:
            self._error("#if with no expression", span)
            return False
        try:
            expanded = self.expander.expand(toks, in_if=True)
            return bool(IntExprParser(expanded, intmax=True).evaluate().value)
        except ExprError as e:
            self._error(f"invalid #if expression: {e.message}", span)
            return False

    def _define(self, rest: str, span: Span | None) -> None:
        m = _DEFINE.match(rest)
        if m is None:
            self._error("macro name missing in #define" if not rest else
                        "macro name must be an identifier", span)
            return
        name = m.group(1)
        if name == "defined":
            self._error("'defined' cannot be used as a macro name", span)
            return
        if m.group(2) is None:
            body = rest[m.end():].strip()
            if span is not None and self.objs.get(name, body) != body:
                self.diags.warning(f"macro '{name}' redefined (was '{self.objs[name]}')", span)
            self.objs[name] = body
            self.funcs.pop(name, None)
            return
        close = rest.find(")", m.end())
        if close < 0:
            self._error(f"missing ')' in parameter list of macro '{name}'", span)
            return
        params = [p.strip() for p in rest[m.end():close].split(",")]
        params = [] if params == [""] else params
        variadic = bool(params) and params[-1].endswith("...")
        if variadic:
            params[-1] = params[-1][:-3].strip() or "__VA_ARGS__"
        self.funcs[name] = FunctionMacro(tuple(params), rest[close + 1:].strip(), variadic)
        self.objs.pop(name, None)

    # -- includes --

    def _include_directive(self, rest: str, span: Span | None, depth: int, next_: bool) -> None:
        target = self._include_target(rest)
        if target is None:
            self._error('#include expects "FILENAME" or <FILENAME>', span)
            return
        name, angled = target
        if span is not None:
            self.includes.append(name)
        start = self._where.index + 1 if next_ and self._where.index >= 0 else 0
        found = self._find(name, angled, start)
        if found is None:
            if angled:
                self._error(f"include file not found: '{name}'", span, [_KERNEL_HEADER_HINT])
            else:
                dirs = ([self._where.directory] if self._where.directory else []) + self.include_dirs
                self._error(f"include file not found: '{name}'", span,
                            [f"searched {', '.join(dirs)}"])
            return
        self._include(found[0], found[1], depth + 1)

    def _include_target(self, rest: str) -> tuple[str, bool] | None:
        m = re.match(r'\s*(?:<([^>\n]+)>|"([^"\n]+)")', rest)
        if m is None and rest.strip():  # computed include: #include MACRO
            try:
                toks = self.expander.expand(tokenize(rest), in_if=False)
            except ExprError:
                return None
            m = re.match(r'\s*(?:<([^>\n]+)>|"([^"\n]+)")', "".join(t.text for t in toks))
        if m is None:
            return None
        return (m.group(1).strip(), True) if m.group(1) else (m.group(2), False)

    def _find(self, name: str, angled: bool, start: int) -> tuple[str, int] | None:
        cur = None if angled else self._where.directory
        key = (name, cur, start)
        if key not in self._found:
            hit: tuple[str, int] | None = None
            if os.path.isabs(name):
                hit = (name, -1) if os.path.isfile(name) else None
            elif cur is not None and os.path.isfile(os.path.join(cur, name)):
                hit = (os.path.join(cur, name), -1)
            else:
                for i in range(start, len(self.include_dirs)):
                    path = os.path.join(self.include_dirs[i], name)
                    if os.path.isfile(path):
                        hit = (path, i)
                        break
            self._found[key] = hit
        return self._found[key]

    def _has_include(self, name: str, angled: bool, next_: bool) -> bool:
        start = self._where.index + 1 if next_ and self._where.index >= 0 else 0
        return self._find(name, angled, start) is not None

    def _load(self, path: str) -> _Header:
        if path not in self._headers:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = _strip_comments(f.read())
            except OSError:
                text = ""
            dirs = _HEADER_DIRECTIVE.findall(text)
            self._headers[path] = _Header(dirs, _jumps(dirs), _guard_of(dirs))
        return self._headers[path]

    def _include(self, path: str, index: int, depth: int) -> None:
        if depth > _MAX_INCLUDE_DEPTH or path in self._once:
            return
        header = self._load(path)
        if header.guard is not None and header.guard in self.objs:
            return  # already included: skip re-reading the guarded body
        saved, saved_file = self._where, self._current_file
        self._where, self._current_file = _Where(os.path.dirname(path), index), path
        stack: list[_Cond] = []
        directives, jumps = header.directives, header.jumps
        k, n = 0, len(directives)
        while k < n:
            name, rest = directives[k]
            if name in _CONDITIONALS:
                self._conditional(name, rest, stack, None)
                # Hop over a skipped group straight to its next #elif/#else/#endif.
                k = jumps[k] if name != "endif" and stack and not stack[-1].active else k + 1
            else:
                if not stack or stack[-1].active:
                    self.directive(name, rest, stack, None, depth)
                k += 1
        self._where, self._current_file = saved, saved_file


class _Header(NamedTuple):
    directives: list[tuple[str, str]]  # (name, operand) of each directive line
    jumps: list[int]  # for a conditional: index of its next #elif/#else/#endif
    guard: str | None  # the include-guard macro, if the whole file is guarded


def _jumps(dirs: list[tuple[str, str]]) -> list[int]:
    jumps = [len(dirs)] * len(dirs)
    open_: list[int] = []
    for k, (name, _) in enumerate(dirs):
        if name in ("if", "ifdef", "ifndef"):
            open_.append(k)
        elif name in _CONDITIONALS:
            if open_:
                jumps[open_.pop()] = k
            if name != "endif":
                open_.append(k)
    return jumps


def _guard_of(dirs: list[tuple[str, str]]) -> str | None:
    """G if the directives are ``#ifndef G / #define G ... #endif`` around everything."""
    if len(dirs) < 3 or dirs[-1][0] != "endif":
        return None
    name, rest = dirs[0]
    if name == "ifndef":
        guard = rest.split()[0] if rest.split() else None
    elif name == "if":
        m = re.fullmatch(r"!\s*defined\s*\(?\s*(\w+)\s*\)?", rest)
        guard = m.group(1) if m else None
    else:
        return None
    if guard is None or dirs[1][0] != "define" or dirs[1][1].split()[:1] != [guard]:
        return None
    depth = 0
    for k, (d, _) in enumerate(dirs):
        depth += d in ("if", "ifdef", "ifndef")
        depth -= d == "endif"
        if depth == 0 and k != len(dirs) - 1:
            return None  # the first group closes before the end of the file
    return guard


_SCRIPT_DIRECTIVE = re.compile(r"\s*#\s*([A-Za-z_]\w*)?(.*)", re.S)


def _cache_file(cache_dir: str, items: list[tuple[str, str, Span]], predefined: dict[str, str],
                include_dirs: list[str], script_dir: str | None) -> str:
    key = repr(([(k, t) for k, t, _ in items], sorted(predefined.items()), include_dirs, script_dir))
    return os.path.join(cache_dir, "cpp-" + hashlib.sha256(key.encode()).hexdigest()[:24] + ".pickle")


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _cached(path: str, items: list[tuple[str, str, Span]]) -> CppResult | None:
    """A stored result whose headers are all unchanged since it was stored."""
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        if any(_stat(p) != st for p, st in data["files"].items()):
            return None
        active = [(items[i][1], items[i][2]) for i in data["active"]]
        return CppResult(active, data["objs"], data["includes"], data["funcs"])
    except Exception:  # a corrupt or foreign cache file is simply rebuilt
        return None


def _store(path: str, items: list[tuple[str, str, Span]], result: CppResult, files: list[str]) -> None:
    spans = {id(span): i for i, (_, _, span) in enumerate(items)}
    data = {"files": {p: _stat(p) for p in files}, "active": [spans[id(sp)] for _, sp in result.active_definitions],
            "objs": result.macros, "includes": result.includes, "funcs": result.function_macros}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache directory only costs speed


def evaluate(items: list[tuple[str, str, Span]], *, predefined: dict[str, str],
             include_dirs: list[str], diags: Diagnostics, cache_dir: str | None = None) -> CppResult:
    """Like ``_evaluate``, but reuses the result stored in ``cache_dir`` when
    the script's directives and every header they read are unchanged:
    evaluating <sys/socket.h> and friends costs tens of milliseconds, more
    than the rest of the front end."""
    script_dir = None
    if items and os.path.isfile(items[0][2].file.name):
        script_dir = os.path.dirname(os.path.abspath(items[0][2].file.name))
    if cache_dir is None or not any(k == "directive" and "include" in t for k, t, _ in items):
        return _evaluate(items, predefined=predefined, include_dirs=include_dirs, diags=diags)[0]
    path = _cache_file(cache_dir, items, predefined, include_dirs, script_dir)
    hit = _cached(path, items)
    if hit is not None:
        return hit
    before = len(diags)
    result, files = _evaluate(items, predefined=predefined, include_dirs=include_dirs, diags=diags)
    if len(diags) == before:
        _store(path, items, result, files)
    return result


def _evaluate(items: list[tuple[str, str, Span]], *, predefined: dict[str, str],
              include_dirs: list[str], diags: Diagnostics) -> tuple[CppResult, list[str]]:
    """Run a script's top-level preprocessor lines in order.

    ``items`` are (kind, text, span) with kind "directive" (a ``#...`` line, with
    its backslash continuations) or "definition" (a C definition).  Returns the
    definitions outside excluded conditional groups and the macros in effect at
    the end.  Errors in the script's directives go to ``diags``."""
    pp = _Preprocessor(predefined, include_dirs, diags)
    script_dir = None
    if items and os.path.isfile(items[0][2].file.name):
        script_dir = os.path.dirname(os.path.abspath(items[0][2].file.name))
    pp._where = _Where(script_dir, -1)
    stack: list[_Cond] = []
    active: list[tuple[str, Span]] = []
    for kind, text, span in items:
        if kind != "directive":
            if not stack or stack[-1].active:
                active.append((text, span))
            continue
        if text.lstrip().startswith("#!"):
            continue  # a shebang line
        m = _SCRIPT_DIRECTIVE.match(_strip_comments(text))
        if m is None or m.group(1) is None:
            if m is not None and m.group(2).strip() and (not stack or stack[-1].active):
                diags.error(f"invalid preprocessing directive '{text.strip()}'", span)
            continue  # the null directive '#'
        pp.directive(m.group(1), m.group(2).strip(), stack, span, 0)
    for cond in stack:
        diags.error(f"unterminated '#{cond.keyword}' (missing #endif)", cond.span)
    return CppResult(active, pp.objs, pp.includes, pp.funcs), list(pp._headers)
