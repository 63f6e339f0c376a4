"""C tokens and integer constant expressions, shared by the preprocessor
(``#if`` conditions, macro values) and the C declaration parser (array
sizes, enum values, bitfield widths).  Arithmetic follows C's integer types
(``~0U`` is 4294967295, ``1 << 31`` is -2147483648), as gcc computes them.
"""

from __future__ import annotations

import operator
import re
from typing import Iterable, NamedTuple

from .types import C_INT_TYPES, I8, I16, I32, I64, U8, U16, U32, U64, IntType

# ---------------------------------------------------------------------------
# Tokens


class Token(NamedTuple):
    """A C/preprocessor token; ``start``/``end`` are offsets in the lexed text.
    ``hide`` is the macro hide set (names that must not expand this token again)."""

    kind: str  # "id" | "num" | "chr" | "str" | "op" | "bad" | "eof"
    text: str
    start: int
    end: int
    hide: frozenset[str] = frozenset()


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<chr>(?:u8|[uUL])?'(?:\\.|[^'\\\n])*')
  | (?P<str>(?:u8|[uUL])?"(?:\\.|[^"\\\n])*")
  | (?P<num>\.?\d(?:[eEpP][+-]|[\w.])*)
  | (?P<id>[A-Za-z_$][\w$]*)
  | (?P<op>\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||\#\#|[-+*/%&|^~!=<>?:;,.()\[\]{}\#])
  | (?P<bad>.)
""", re.S | re.X)


def tokenize(text: str) -> list[Token]:
    """Lex C text into tokens, dropping whitespace and comments."""
    return [Token(m.lastgroup or "bad", m.group(), m.start(), m.end())
            for m in _TOKEN_RE.finditer(text) if m.lastgroup != "ws"]


# The same tokens without offsets, about twice as fast: #if lines and macro bodies
# (comments already removed) are lexed hundreds of times per header set.
_FAST_TOKEN_RE = re.compile(
    r"""(?:u8|[uUL])?'(?:\\.|[^'\\\n])*'|(?:u8|[uUL])?"(?:\\.|[^"\\\n])*"|\.?\d(?:[eEpP][+-]|[\w.])*"""
    r"""|[A-Za-z_$][\w$]*|\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||\#\#|\S""")
_KIND_OF = {**{c: "id" for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$"},
            **{c: "num" for c in "0123456789."},
            **{op: "op" for op in "... <<= >>= -> ++ -- << >> <= >= == != && || ## - + * / % & | ^ ~ "
                                  "! = < > ? : ; , . ( ) [ ] { } #".split()}}
_NO_HIDE: frozenset[str] = frozenset()


def _fast_tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    new = tuple.__new__
    for t in _FAST_TOKEN_RE.findall(text):
        kind = _KIND_OF.get(t) or ("num" if t[0] == "." else _KIND_OF.get(t[0], "bad"))
        if len(t) > 1 and t[-1] in "'\"":
            kind = "chr" if t[-1] == "'" else "str"
        out.append(new(Token, (kind, t, 0, 0, _NO_HIDE)))
    return out


# ---------------------------------------------------------------------------
# Integer constants and expressions


class CInt(NamedTuple):
    """An integer value with its C type (width in bits and signedness); ``value``
    is always within the range of that type."""

    value: int
    bits: int = 32
    unsigned: bool = False


def _cint(value: int, bits: int, unsigned: bool) -> CInt:
    # tuple.__new__ skips NamedTuple's Python-level __new__: #if evaluation of
    # system headers builds thousands of these.
    return tuple.__new__(CInt, (value, bits, unsigned))


def _wrap(value: int, bits: int, unsigned: bool) -> int:
    value &= (1 << bits) - 1
    if not unsigned and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


_INT_LITERAL = re.compile(r"(0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)([uU](?:ll|LL|[lL])?|(?:ll|LL|[lL])[uU]?)?")


def parse_int_literal(text: str, intmax: bool = False) -> CInt | None:
    """Value and C type of an integer literal (``0x10``, ``1UL``, ``010``); None if
    it is not one.  ``intmax`` gives every value the 64-bit type, as in #if."""
    if text.isascii() and text.isdigit() and (text[0] != "0" or len(text) == 1):  # fast path
        value = int(text)
        if value < 1 << 31:
            return _cint(value, 64 if intmax else 32, False)
    m = _INT_LITERAL.fullmatch(text)
    if m is None:
        return None
    digits, suffix = m.group(1), (m.group(2) or "").lower()
    decimal = False
    if digits[:2].lower() in ("0x", "0b"):
        value = int(digits[2:], 16 if digits[1] in "xX" else 2)
    elif len(digits) > 1 and digits[0] == "0":
        if "8" in digits or "9" in digits:
            return None
        value = int(digits, 8)
    else:
        value, decimal = int(digits), True
    if value >= 1 << 64:
        return None
    unsigned = "u" in suffix
    if intmax:
        return CInt(value, 64, unsigned or value >= 1 << 63)
    # C11 6.4.4.1: the first type of the list that can represent the value.
    for bits in ((64,) if "l" in suffix else (32, 64)):
        for uns in ((True,) if unsigned else (False,) if decimal else (False, True)):
            if value < 1 << (bits - (0 if uns else 1)):
                return CInt(value, bits, uns)
    return CInt(value, 64, True)  # too big for long: gcc makes it unsigned


_ESCAPES = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "e": 27,
            "\\": 92, "'": 39, '"': 34, "?": 63}


def parse_char_literal(text: str) -> int | None:
    """The int value of a character constant (``'A'``, ``'\\n'``, ``'\\x41'``)."""
    body = text[text.index("'") + 1:-1]
    chars: list[int] = []
    i = 0
    while i < len(body):
        if body[i] != "\\":
            chars.append(ord(body[i]) & 0xFF)
            i += 1
            continue
        esc = body[i + 1:i + 2]
        if esc == "x":
            m = re.match(r"[0-9a-fA-F]+", body[i + 2:])
            if m is None:
                return None
            chars.append(int(m.group(), 16) & 0xFF)
            i += 2 + m.end()
        elif esc and esc in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            assert m is not None
            chars.append(int(m.group(), 8) & 0xFF)
            i += 1 + m.end()
        elif esc in _ESCAPES:
            chars.append(_ESCAPES[esc])
            i += 2
        else:
            return None
    if not chars:
        return None
    if len(chars) == 1:  # plain char is signed on x86_64
        return chars[0] - 256 if chars[0] >= 128 else chars[0]
    value = 0
    for c in chars:  # gcc's multi-character constant value
        value = (value << 8) | c
    return _wrap(value, 32, False)


_INT_KEYWORDS = frozenset({"signed", "unsigned", "short", "long", "int", "char", "_Bool",
                           "__signed__", "__signed"})


def c_int_type(words: Iterable[str]) -> IntType | None:
    """The integer type named by C type words in any order (``long unsigned int``)
    or by one known typedef name (``__u32``); None if not an integer type."""
    words = [w for w in words if w not in ("const", "volatile", "__const", "__volatile__")]
    if len(words) == 1 and words[0] not in _INT_KEYWORDS:
        return C_INT_TYPES.get(words[0])
    count = {w: 0 for w in ("signed", "unsigned", "short", "long", "int", "char", "_Bool")}
    for w in words:
        w = "signed" if w in ("__signed__", "__signed") else w
        if w not in count:
            return None
        count[w] += 1
    sign, uns = count["signed"], count["unsigned"]
    if not words or sign + uns > 1 or count["int"] > 1:
        return None
    if count["_Bool"]:
        return U8 if len(words) == 1 else None
    if count["char"]:
        ok = count["char"] == 1 and not (count["short"] or count["long"] or count["int"])
        return (U8 if uns else I8) if ok else None
    if count["short"]:
        return (U16 if uns else I16) if count["short"] == 1 and not count["long"] else None
    if count["long"]:
        return (U64 if uns else I64) if count["long"] <= 2 else None
    return U32 if uns else I32


class ExprError(Exception):
    """An invalid constant expression; ``token`` is where (None: at the end)."""

    def __init__(self, message: str, token: Token | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.token = token


_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
            "<=": operator.le, ">=": operator.ge}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "&": operator.and_,
          "|": operator.or_, "^": operator.xor}
_PREC = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7,
         "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}


class IntExprParser:
    """Evaluates a C integer constant expression over tokens by recursive descent.

    With ``intmax`` (for #if) all arithmetic is 64-bit and identifiers are 0, as
    the C standard says; otherwise values keep their C types (``~0U`` is
    0xffffffff).  Subclasses override ``identifier`` and ``cast_type``."""

    def __init__(self, toks: list[Token], *, intmax: bool = False) -> None:
        end = toks[-1].end if toks else 0
        self.toks = [*toks, Token("eof", "", end, end)]  # the sentinel is never consumed
        self.pos = 0
        self.intmax = intmax
        self._dead = 0  # >0 inside an operand that short-circuiting skips
        int_bits = 64 if intmax else 32
        self._truth = (_cint(0, int_bits, False), _cint(1, int_bits, False))

    def peek(self, ahead: int = 0) -> Token:
        i = self.pos + ahead
        return self.toks[i] if i < len(self.toks) else self.toks[-1]

    def expect(self, text: str) -> Token:
        tok = self.peek()
        if tok.text != text or tok.kind not in ("op", "id"):
            found = f", found '{tok.text}'" if tok.kind != "eof" else ""
            raise ExprError(f"expected '{text}'{found}", tok)
        self.pos += 1
        return tok

    def evaluate(self) -> CInt:
        """The whole token list as one expression."""
        value = self.conditional()
        if self.toks[self.pos].kind != "eof":
            raise ExprError(f"unexpected '{self.peek().text}' in expression", self.peek())
        return value

    def conditional(self) -> CInt:
        cond = self._binary(1)
        if self.toks[self.pos].text != "?":
            return cond
        self.pos += 1
        self._dead += not cond.value
        a = self.conditional()
        self._dead -= not cond.value
        self.expect(":")
        self._dead += bool(cond.value)
        b = self.conditional()
        self._dead -= bool(cond.value)
        bits, uns = self._common(a, b)
        picked = a if cond.value else b
        return CInt(_wrap(picked.value, bits, uns), bits, uns)

    def _binary(self, min_prec: int) -> CInt:
        left = self._unary()
        while True:
            tok = self.toks[self.pos]
            prec = _PREC.get(tok.text)  # only operator tokens have these texts
            if prec is None or prec < min_prec:
                return left
            self.pos += 1
            skip = (tok.text == "&&" and not left.value) or (tok.text == "||" and bool(left.value))
            self._dead += skip
            right = self._binary(prec + 1)
            self._dead -= skip
            left = self._apply(tok, left, right)

    def _common(self, a: CInt, b: CInt) -> tuple[int, bool]:
        # usual arithmetic conversions: a 64-bit signed type holds every 32-bit value
        if a.bits != b.bits:
            wide = a if a.bits > b.bits else b
            return wide.bits, wide.unsigned
        return a.bits, a.unsigned or b.unsigned

    def _bool(self, value: bool) -> CInt:
        return self._truth[bool(value)]

    def _apply(self, tok: Token, a: CInt, b: CInt) -> CInt:
        op = tok.text
        if op == "&&":
            return self._bool(bool(a.value) and bool(b.value))
        if op == "||":
            return self._bool(bool(a.value) or bool(b.value))
        if op in ("<<", ">>"):
            if not 0 <= b.value < a.bits:
                if self._dead:
                    return a
                raise ExprError(f"shift count {b.value} is out of range", tok)
            v = a.value << b.value if op == "<<" else a.value >> b.value
            return CInt(_wrap(v, a.bits, a.unsigned), a.bits, a.unsigned)
        if a.bits == b.bits and a.unsigned == b.unsigned:  # the common case: no conversion
            bits, uns, x, y = a.bits, a.unsigned, a.value, b.value
        else:
            bits, uns = self._common(a, b)
            x, y = _wrap(a.value, bits, uns), _wrap(b.value, bits, uns)
        if op in _COMPARE:
            return self._truth[_COMPARE[op](x, y)]
        if op in ("/", "%"):
            if y == 0:
                if self._dead:
                    return CInt(0, bits, uns)
                raise ExprError("division by zero", tok)
            q = abs(x) // abs(y) * (-1 if (x < 0) != (y < 0) else 1)  # C truncates toward 0
            v = q if op == "/" else x - q * y
        else:
            v = _ARITH[op](x, y)
        return _cint(_wrap(v, bits, uns), bits, uns)

    def _unary(self) -> CInt:
        tok = self.toks[self.pos]
        if tok.kind != "op":
            return self._primary()
        if tok.text in ("-", "+", "~", "!"):
            self.pos += 1
            v = self._unary()
            if tok.text == "!":
                return self._bool(not v.value)
            r = -v.value if tok.text == "-" else ~v.value if tok.text == "~" else v.value
            return CInt(_wrap(r, v.bits, v.unsigned), v.bits, v.unsigned)
        if tok.text == "(":
            self.pos += 1
            cast = self.cast_type()
            if cast is not None:
                v = self._unary()
                bits, signed = cast
                value = _wrap(v.value, bits, not signed)
                if bits < 32:  # the converted value is promoted to int
                    return CInt(value, 32, False)
                return CInt(value, bits, not signed)
            v = self.conditional()
            self.expect(")")
            return v
        return self._primary()

    def _primary(self) -> CInt:
        tok = self.toks[self.pos]
        if tok.kind == "num":
            self.pos += 1
            v = parse_int_literal(tok.text, self.intmax)
            if v is None:
                is_float = "." in tok.text or (tok.text[:2].lower() != "0x" and re.search(r"[eE]", tok.text))
                kind = "floating-point" if is_float else "invalid integer"
                raise ExprError(f"{kind} constant '{tok.text}' in integer expression", tok)
            return v
        if tok.kind == "chr":
            self.pos += 1
            c = parse_char_literal(tok.text)
            if c is None:
                raise ExprError(f"invalid character constant {tok.text}", tok)
            return CInt(c, 64 if self.intmax else 32, False)
        if tok.kind == "id":
            self.pos += 1
            return self.identifier(tok)
        if tok.kind == "eof":
            raise ExprError("expected an expression", tok)
        raise ExprError(f"unexpected '{tok.text}' in expression", tok)

    def identifier(self, tok: Token) -> CInt:
        """The value of an identifier left after macro expansion."""
        if self.intmax:
            if self.toks[self.pos].text == "(":
                raise ExprError(f"function-like macro '{tok.text}' is not defined", tok)
            return CInt(0, 64, False)  # C: remaining identifiers in #if are 0
        raise ExprError(f"'{tok.text}' is not an integer constant", tok)

    def cast_type(self) -> tuple[int, bool] | None:
        """After '(': if a type name and ')' follow, consume them and return the
        target (bits, signed); otherwise consume nothing and return None."""
        if self.intmax:
            return None
        j, words = self.pos, []
        while self.toks[j].kind == "id":
            words.append(self.toks[j].text)
            j += 1
        if words and self.toks[j].text == ")":
            t = c_int_type(words)
            if t is not None:
                self.pos = j + 1
                return t.bits, t.signed
        return None


