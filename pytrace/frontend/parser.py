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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..diagnostics import Diagnostics
from ..source import SourceFile, Span
from . import ast
from .build import AstBuilder

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
    return resources.files("pytrace.grammar").joinpath("pytrace.lark").read_text(encoding="utf-8")


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
                pos = self._report(exc, source, diags)
                if errors >= MAX_SYNTAX_ERRORS:
                    return ast.Program(span=Span(source, 0, 0))
                text = _blank_item(text, pos)
                if text is None:
                    return ast.Program(span=Span(source, 0, 0))

    def _report(self, exc: UnexpectedInput, source: SourceFile, diags: Diagnostics) -> int:
        text = source.text
        if isinstance(exc, UnexpectedCharacters):
            pos = exc.pos_in_stream
            ch = text[pos] if pos < len(text) else ""
            if ch == '"':
                diags.error("unterminated string", Span(source, pos, _line_end(text, pos)),
                            hints=["close the string with '\"' on the same line"])
            elif ch == "/" and text.startswith("/*", pos):
                diags.error("unterminated comment", Span(source, pos, pos + 2),
                            hints=["close the comment with '*/'"])
            else:
                expected = sorted({_describe(t, self.lark) for t in exc.allowed})
                msg = f"unexpected character {ch!r}" if ch.isprintable() else f"invalid character {ch!r}"
                hints = _expect_hint(expected)
                if exc.allowed and "ATTACH_POINT" in exc.allowed and len(exc.allowed) <= 8:
                    hints = ["a probe looks like 'tracepoint:syscalls:sys_enter_openat' or 'BEGIN'"]
                diags.error(msg, Span(source, pos, pos + 1), hints=hints)
            return pos
        if isinstance(exc, UnexpectedToken):
            tok: Token = exc.token
            expected = sorted({_describe(t, self.lark) for t in exc.expected})
            if tok.type == "$END":
                pos = len(text)
                end = _last_nonspace(text)
                diags.error("unexpected end of input", Span(source, end, end + 1), hints=_expect_hint(expected))
                return pos
            pos = tok.start_pos
            what = f"'{tok}'" if tok.type not in ("ATTACH_POINT",) else f"'{tok}'"
            hints = _expect_hint(expected)
            if str(tok) == ">" and "')'" not in expected and "';'" in expected:
                hints = ["statements in a '< ... >' block end with ';' before the closing '>'"]
            diags.error(f"syntax error: unexpected {what}", Span(source, pos, tok.end_pos), hints=hints)
            return pos
        if isinstance(exc, UnexpectedEOF):
            end = _last_nonspace(text)
            diags.error("unexpected end of input", Span(source, end, end + 1),
                        hints=_expect_hint(sorted({_describe(t, self.lark) for t in exc.expected})))
            return len(text)
        diags.error(str(exc), Span(source, 0, 0))
        return len(text)


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
    return get_parser().parse(source, diags)
