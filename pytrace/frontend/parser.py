"""The Lark boundary: text in, ``ast.Program`` and diagnostics out.

Owns loading the grammar (shipped as ``pytrace.grammar``), the on-disk cache of
Lark's LALR tables (building them costs ~0.5 s; loading the cache a few ms),
turning Lark's exceptions into diagnostics, and recovering after a syntax
error so that one run reports an error in each broken probe.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from typing import Any, Iterable
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..diagnostics import Diagnostics, Note
from ..records import dataclass
from ..source import SourceFile, Span
from . import ast
from .build import AstBuilder
from .recache import regex_cache

# Scripts larger than this are refused before lexing: a pathological input
# (megabytes of '(') would otherwise take minutes to lex.
MAX_SCRIPT_BYTES = 1 << 20
MAX_SYNTAX_ERRORS = 10

# How terminals are named in messages.
_TOKEN_TEXT = {
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "SEMICOLON": "';'", "COMMA": "','", "COLON": "':'", "DOT": "'.'", "EQUAL": "'='",
    "QMARK": "'?'", "ENDPRED": "'/'", "ATTACH_POINT": "a probe", "NAME": "a name",
    "INTEGER": "an integer", "STRING": "a string", "VAR": "a variable", "MAP": "a map",
    "MAPKEY": "a map", "POSITIONAL": "a positional parameter", "$END": "end of input",
    "C_DIRECTIVE": "a preprocessor line", "C_DEFINITION": "a C definition",
}
_KEYWORD_TERMINALS = re.compile(r"^[A-Z_]+$")


def _describe(term: str, parser: Lark) -> str:
    if term in _TOKEN_TEXT:
        return _TOKEN_TEXT[term]
    for t in parser.terminals:
        if t.name == term and t.pattern.type == "str":
            return f"'{t.pattern.value}'"
    return term.lower()


def grammar_text() -> str:
    """The grammar, from the installed package (pip maps the top-level
    grammar/ folder to pytrace.grammar) or, when running from a source
    checkout that shadows the installation, from grammar/ itself."""
    try:
        return resources.files("pytrace.grammar").joinpath("pytrace.lark").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        return (Path(__file__).resolve().parents[2] / "grammar" / "pytrace.lark").read_text(encoding="utf-8")


def _cache_path(text: str) -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(base) / "pytrace"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK):
        return None
    return str(path / f"grammar-{digest}.lark")


@dataclass
class Parser:
    """A loaded LALR parser.  Build one with ``get_parser()``."""

    lark: Lark
    builder: AstBuilder

    def parse(self, source: SourceFile, diags: Diagnostics) -> ast.Program:
        """Parse ``source``; syntax errors go to ``diags`` and the returned
        program holds whatever parsed (it may be empty)."""
        text = source.text
        if len(text.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_BYTES:
            diags.error(f"script is too large ({len(text)} characters; the limit is {MAX_SCRIPT_BYTES} bytes)",
                        Span(source, 0, 0))
            return ast.Program(span=Span(source, 0, 0))
        bad = _first_control_char(text)
        if bad is not None:
            diags.error(f"invalid character {text[bad]!r} in script", Span(source, bad, bad + 1),
                        hints=["scripts are UTF-8 text; is this a binary file?"])
            return ast.Program(span=Span(source, 0, 0))
        # A '#!' interpreter line is not part of the language; blank it so
        # that offsets (and so line numbers) stay the same.
        if text.startswith("#!"):
            nl = text.find("\n")
            text = " " * (len(text) if nl == -1 else nl) + ("" if nl == -1 else text[nl:])
        errors = 0
        while True:
            # The builder runs inside the LALR reductions (no tree, no
            # recursion: deeply nested input cannot exhaust the stack).
            self.builder.reset(source, diags)
            try:
                program: ast.Program = self.lark.parse(text)
                return program
            except UnexpectedInput as exc:
                errors += 1
                pos = self._report(exc, source, text, diags)
                if pos is None or errors >= MAX_SYNTAX_ERRORS:
                    return ast.Program(span=Span(source, 0, 0))
                text = _blank_item(text, pos)
                if text is None:
                    return ast.Program(span=Span(source, 0, 0))

    def _expected(self, terms: Iterable[str]) -> list[str]:
        """How a set of expected terminals reads in a hint: the many tokens
        that can start an expression (or a statement) are named as one."""
        terms = set(terms)
        out: set[str] = set()
        if "IF" in terms and "INTEGER" in terms:
            out.add("a statement")
            terms -= _EXPR_START | _STMT_KEYWORDS
        elif "INTEGER" in terms and len(terms & _EXPR_START) >= 5:
            out.add("an expression")
            terms -= _EXPR_START
        out |= {_describe(t, self.lark) for t in terms}
        return sorted(out)

    def _report(self, exc: UnexpectedInput, source: SourceFile, text: str, diags: Diagnostics) -> int | None:
        """Report one syntax error; the offset to resume after, or None when
        nothing after it can be parsed meaningfully."""
        if isinstance(exc, UnexpectedCharacters):
            pos = exc.pos_in_stream
            ch = text[pos] if pos < len(text) else ""
            if ch == '"':
                diags.error("unterminated string", Span(source, pos, _line_end(text, pos)),
                            hints=["close the string with '\"' on the same line"])
            elif ch == "/" and text.startswith("/*", pos):
                _unterminated_comment(source, pos, diags)
                return None
            elif ch.isdigit():
                m = _NUMBER_LIKE.match(text, pos)
                end = m.end() if m else pos + 1
                diags.error(f"invalid integer literal '{text[pos:end]}'", Span(source, pos, end),
                            hints=["integers are decimal (123), hexadecimal (0x7b) or octal (0173), "
                                   "optionally with a unit (10ms)"])
            else:
                expected = self._expected(exc.allowed or ())
                msg = f"unexpected character {ch!r}" if ch.isprintable() else f"invalid character {ch!r}"
                hints = _expect_hint(expected)
                if ch == "'":
                    hints = ["strings are written in double quotes: \"text\""]
                elif ch == "$":
                    hints = ["variables are written $name, positional parameters $1, $2, ..."]
                elif exc.allowed and "ATTACH_POINT" in exc.allowed and len(exc.allowed) <= 8:
                    hints = ["a probe looks like 'tracepoint:syscalls:sys_enter_openat' or 'BEGIN'"]
                diags.error(msg, Span(source, pos, pos + 1), hints=hints)
            return pos
        if isinstance(exc, UnexpectedToken):
            tok: Token = exc.token
            stack = _value_stack(exc)
            if tok.type == "$END":
                self._report_eof(source, text, exc.expected, stack, diags)
                return len(text)
            pos = tok.start_pos
            if tok.type == "SLASH" and text.startswith("/*", pos):
                _unterminated_comment(source, pos, diags)
                return None
            expected = self._expected(exc.expected)
            hints = _expect_hint(expected)
            span = Span(source, pos, tok.end_pos)
            top = stack[-1] if stack else None
            if isinstance(top, ast.Ident) and top.name == "else" and top.span is not None:
                diags.error("'else' without a matching 'if'", top.span,
                            hints=["'else' must follow the '}' of an 'if' block"])
                return pos
            if tok.type == "C_DIRECTIVE":
                hints = ["'#' lines (#include, #define) are only allowed outside probes; "
                         "comments are written // ... or /* ... */"]
            elif "ENDPRED" in exc.expected and not _open_brackets(stack, None):
                hints = ["a predicate ends with '/' right before the probe's block: /pid == 1/ { ... }"]
            elif tok.type in _CLOSERS and not _open_brackets(stack, tok.type):
                hints = [f"this '{tok}' has no matching '{_CLOSERS[tok.type]}'"]
            elif str(tok) == ">" and "')'" not in expected and "';'" in expected:
                hints = ["statements in a '< ... >' block end with ';' before the closing '>'"]
            elif (isinstance(top, Token) and top.type == "NAME" and len(stack) == 1 + _items(stack)
                  and str(top) in ("struct", "union", "enum")):
                hints = [f"a C {top} definition ends with ';' after its closing '}}'"]
            elif tok.type in _EXPR_START and (m := _NOT_A_CAST.search(text, max(0, pos - 200), pos)) is not None:
                hints = [f"'{m.group(1)}' is not a type: casts take uint8 ... int64, bool, "
                         "or a struct, union or enum type"]
            elif tok.type in _EXPR_START | _STMT_KEYWORDS and "SEMICOLON" in exc.expected:
                hints = [f"expected ';' before '{tok}'"]
            elif not hints and (opened := _open_brackets(stack, None)) and opened[-1].type != "LBRACE":
                closer = _OPENERS[opened[-1].type]
                if _closer_terminal(closer) in exc.expected:
                    hints = [f"expected '{closer}' to close the '{'[' if closer == ']' else opened[-1]}' "
                             f"opened at {_line_col(text, opened[-1])}"]
            diags.error(f"syntax error: unexpected '{tok}'", span, hints=hints)
            return pos
        if isinstance(exc, UnexpectedEOF):
            self._report_eof(source, text, exc.expected, _value_stack(exc), diags)
            return len(text)
        diags.error(str(exc), Span(source, 0, 0))
        return len(text)

    def _report_eof(self, source: SourceFile, text: str, expected: Iterable[str], stack: list[Any],
                    diags: Diagnostics) -> None:
        end = _last_nonspace(text) + 1 if text.strip() else 0
        at = Span(source, end, end + 1)
        opened = _open_brackets(stack, None)
        if _in_angle_block(stack):
            diags.error("unexpected end of input: the '< ... >' block is not closed", at,
                        hints=["statements in a '< ... >' block end with ';' before the closing '>'"])
            return
        if _open_predicate(stack) and not opened:
            diags.error("unexpected end of input: the predicate is not closed", at,
                        hints=["a predicate ends with '/' right before the probe's block: /pid == 1/ { ... }"])
            return
        if _without_body(stack):
            diags.error("unexpected end of input: the probe has no block", at,
                        hints=["a probe's statements go in braces: BEGIN { printf(\"hello\\n\"); }"])
            return
        if opened:
            tok = opened[-1]
            closer = _OPENERS[tok.type]
            opener = "[" if tok.type == "MAPKEY" else str(tok)
            start = tok.end_pos - 1 if tok.type == "MAPKEY" else tok.start_pos
            diags.error(f"unexpected end of input: '{opener}' is not closed", at,
                        notes=[Note(f"the '{opener}' opened here", Span(source, start, start + 1))],
                        hints=[f"add the missing '{closer}'"])
            return
        diags.error("unexpected end of input", at, hints=_expect_hint(self._expected(expected)))


_EXPR_START = frozenset({"INTEGER", "STRING", "VAR", "MAP", "MAPKEY", "NAME", "LPAR", "MINUS", "BANG", "TILDE",
                         "STAR", "AMP", "PLUS", "INC", "DEC", "POSITIONAL", "PARAMCOUNT", "TRUE", "FALSE",
                         "SIZEOF", "OFFSETOF"})
_STMT_KEYWORDS = frozenset({"IF", "FOR", "WHILE", "UNROLL", "LET", "BREAK", "CONTINUE", "RETURN"})
_OPENERS = {"LBRACE": "}", "LPAR": ")", "LSQB": "]", "MAPKEY": "]"}
_CLOSERS = {"RBRACE": "{", "RPAR": "(", "RSQB": "["}
_MATCHES = {"RBRACE": ("LBRACE",), "RPAR": ("LPAR",), "RSQB": ("LSQB", "MAPKEY")}
# Text that looks like an integer literal but is not one ('0x', '1abc').
_NUMBER_LIKE = re.compile(r"[0-9][0-9A-Za-z_]*")
# '(name)' just before an operand: a cast to a name that is not a type.
_NOT_A_CAST = re.compile(r"(?:^|[^\w\s)\]])\s*\(\s*([A-Za-z_]\w*)\s*\**\s*\)\s*\Z")


def _value_stack(exc: UnexpectedInput) -> list[Any]:
    state = getattr(exc, "state", None)
    stack = getattr(state, "value_stack", None)
    return list(stack) if isinstance(stack, list) else []


def _open_brackets(stack: list[Any], closing: str | None) -> list[Token]:
    """The opening brackets on the parser's stack that nothing has closed
    yet (innermost last); with ``closing``, only those it would close."""
    opened: list[Token] = []
    for item in stack:
        if not isinstance(item, Token):
            continue
        if item.type in _OPENERS:
            opened.append(item)
        elif item.type in _MATCHES and opened and opened[-1].type in _MATCHES[item.type]:
            opened.pop()
    if closing is not None:
        return [t for t in opened if t.type in _MATCHES[closing]]
    return opened


def _items(stack: list[Any]) -> int:
    """How many finished top-level items start the parser's stack."""
    n = 0
    for item in stack:
        if not isinstance(item, (ast.Probe, ast.CItem, ast.Config, ast.Import, ast.MacroDef, ast.MapDecl)):
            break
        n += 1
    return n


def _without_body(stack: list[Any]) -> bool:
    """Whether the input ended in a probe's attach points or predicate,
    before its block started."""
    rest = stack[_items(stack):]
    if not rest:
        return False
    first = rest[0]
    if isinstance(first, Tree) and first.data == "_attach":
        first = first.children[0] if first.children else None
    if not (isinstance(first, Token) and first.type in ("ATTACH_POINT", "NAME")) and not (
            isinstance(first, list) and first and isinstance(first[0], ast.AttachPoint)):
        return False
    return not any(isinstance(t, Token) and t.type in ("LBRACE", "LT") for t in rest)


def _open_predicate(stack: list[Any]) -> bool:
    """Whether the input ended inside a probe's predicate ('BEGIN /pid')."""
    rest = stack[_items(stack):]
    return (len(rest) >= 2 and isinstance(rest[0], list) and isinstance(rest[1], Token)
            and rest[1].type == "SLASH" and not (isinstance(rest[-1], Token) and rest[-1].type == "SLASH"))


def _in_angle_block(stack: list[Any]) -> bool:
    """Whether the probe being parsed has a '< ... >' body that is not closed."""
    for i in range(len(stack) - 1, -1, -1):
        if isinstance(stack[i], list) and stack[i] and isinstance(stack[i][0], ast.AttachPoint):
            rest = stack[i + 1:]
            if rest and isinstance(rest[0], ast.Expr):  # the predicate
                rest = rest[1:]
            return bool(rest) and isinstance(rest[0], Token) and rest[0].type == "LT"
    return False


def _closer_terminal(closer: str) -> str:
    return {"}": "RBRACE", ")": "RPAR", "]": "RSQB"}[closer]


def _line_col(text: str, tok: Token) -> str:
    start = tok.end_pos - 1 if tok.type == "MAPKEY" else tok.start_pos
    return f"{text.count(chr(10), 0, start) + 1}:{start - (text.rfind(chr(10), 0, start) + 1) + 1}"


def _unterminated_comment(source: SourceFile, pos: int, diags: Diagnostics) -> None:
    diags.error("unterminated comment", Span(source, pos, pos + 2), hints=["close the comment with '*/'"])


def _expect_hint(expected: list[str]) -> list[str]:
    if not expected:
        return []
    if len(expected) == 1:
        return [f"expected {expected[0]}"]
    if len(expected) <= 6:
        return ["expected " + ", ".join(expected[:-1]) + " or " + expected[-1]]
    return []


def _line_end(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return len(text) if nl == -1 else nl


def _last_nonspace(text: str) -> int:
    stripped = text.rstrip()
    return max(0, len(stripped) - 1)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _first_control_char(text: str) -> int | None:
    m = _CONTROL.search(text)
    return m.start() if m else None


# A line that starts a new top-level item: a probe, a C line, config, macro...
_ITEM_START = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*(?::|\s*,|\s*\{|\s*/|\s*$)|#|config\b|macro\b|import\b)", re.M)


def _blank_item(text: str, pos: int) -> str | None:
    """Replace the top-level item containing ``pos`` with spaces (newlines
    kept) so that parsing can resume at the next item; None when nothing is
    left to parse."""
    starts = [m.start() for m in _ITEM_START.finditer(text)]
    begin = 0
    for s in starts:
        if s <= pos:
            begin = s
        else:
            break
    nxt = next((s for s in starts if s > pos), None)
    if nxt is None:
        return None
    # If the error is on the very line that starts the next item, skip that line too.
    blanked = "".join(ch if ch == "\n" else " " for ch in text[begin:nxt])
    out = text[:begin] + blanked + text[nxt:]
    if out == text:
        return None
    return out


@functools.lru_cache(maxsize=1)
def get_parser() -> Parser:
    """The process-wide parser (the grammar never changes at run time)."""
    text = grammar_text()
    builder = AstBuilder(SourceFile("<none>", ""), Diagnostics())
    lark = Lark(text, parser="lalr", lexer="contextual", keep_all_tokens=True,
                propagate_positions=False, maybe_placeholders=False, transformer=builder,
                cache=_cache_path(text) or False)
    return Parser(lark, builder)


def parse(source: SourceFile, diags: Diagnostics) -> ast.Program:
    # The lexer's scanners are compiled on first use: seed re's cache with
    # the ones earlier runs compiled, and keep any new ones (recache.py).
    cache = regex_cache()
    before = cache.warm()
    program = get_parser().parse(source, diags)
    cache.learn(before)
    return program
