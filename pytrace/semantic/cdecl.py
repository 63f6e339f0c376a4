"""C type definitions in bpftrace scripts: struct, union, enum and typedef.

Owns: parsing the top-level C definitions that survive preprocessing (see
``cpp``) with a small recursive-descent parser, and laying structs and unions
out as gcc does for x86_64 (System V ABI: natural alignment, tail padding,
bitfield storage units, ``__attribute__((packed))`` and ``aligned(N)``).
Types the script does not define come from a resolver (wired to kernel BTF).

Pointers to structs that are neither defined in the script nor resolved are
left as incomplete ``StructType(kind, tag)`` placeholders (``fields`` None):
like C, a pointer does not need the layout of what it points to.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from ..diagnostics import Diagnostics, Note
from ..records import dataclass, field
from ..source import Span
from .cexpr import CInt, ExprError, IntExprParser, Token, c_int_type, tokenize
from .types import (C_INT_TYPES, I32, I64, VOID, ArrayType, BoolType, EnumType, Field, IntType,
                    PointerType, StructType, Type, VoidType)

Resolver = Callable[[str, str], "Type | None"]

_QUALIFIERS = frozenset({
    "const", "volatile", "restrict", "__restrict", "__restrict__", "__const", "__volatile__",
    "__volatile", "static", "extern", "inline", "__inline", "__inline__", "register", "auto",
    "__extension__", "_Atomic"})
_TYPE_WORDS = frozenset({"void", "char", "short", "int", "long", "signed", "unsigned", "_Bool",
                         "__signed__", "__signed", "float", "double"})
_ATTRIBUTE = ("__attribute__", "__attribute")
_SIZEOF = ("sizeof", "_Alignof", "alignof", "__alignof__", "__alignof")


@dataclass
class CDecls:
    """The types a script defines, keyed as C spells them."""

    structs: dict[str, StructType] = field(default_factory=dict)  # "struct X" / "union X"
    enums: dict[str, EnumType] = field(default_factory=dict)  # "enum X"
    enum_values: dict[str, tuple[int, EnumType]] = field(default_factory=dict)
    typedefs: dict[str, Type] = field(default_factory=dict)
    # Where each of the above was defined (the tag or name token), for notes.
    spans: dict[str, Span] = field(default_factory=dict)


def parse_definitions(defs: list[tuple[str, Span]], resolve: Resolver, diags: Diagnostics, *,
                      constants: Callable[[str], int | None] | None = None) -> CDecls:
    """Parse C definitions in order; later ones may use types of earlier ones.

    ``resolve(kind, name)`` (kind "struct", "union", "enum" or "typedef") finds a
    type the script does not define.  ``constants(name)`` gives the value of an
    identifier in a constant expression that is not an enumerator defined here
    (pass ``CppResult.macro_int`` so ``char name[TASK_COMM_LEN]`` works).
    ``text`` must be the exact source text of ``span``: token offsets become
    diagnostic positions."""
    out = CDecls()
    cache: dict[tuple[str, str], Type | None] = {}
    for text, span in defs:
        _Parser(text, span, out, resolve, cache, diags, constants).run()
    return out


@dataclass(frozen=True)
class _FunctionType(Type):
    """A function declarator's type: only pointers to it survive (as void *)."""

    @property
    def size(self) -> int:
        return 0


_FUNCTION = _FunctionType()


class _Abort(Exception):
    """Stop parsing this definition; the error was already reported."""


@dataclass
class _Attrs:
    packed: bool = False
    aligned: int | None = None


@dataclass
class _Member:
    name: str
    type: Type
    width: int | None  # bitfield width
    attrs: _Attrs
    tok: Token


class _Spec(NamedTuple):
    type: Type
    typedef: bool
    attrs: _Attrs
    named: tuple[Token, Token]  # first and last token naming the type
    anon_body: bool  # an untagged struct/union body was defined right here
    tagged: bool  # a struct/union/enum tag was declared or defined


class _Parser(IntExprParser):
    """Parses one definition's text; constant expressions (array sizes, bitfield
    widths, enum values) reuse the C expression evaluator through its hooks."""

    def __init__(self, text: str, span: Span, out: CDecls, resolve: Resolver,
                 cache: dict[tuple[str, str], Type | None], diags: Diagnostics,
                 constants: Callable[[str], int | None] | None) -> None:
        super().__init__(tokenize(text))
        self.span = span
        self.out = out
        self.resolve = resolve
        self.cache = cache
        self.diags = diags
        self.constants = constants
        self.pending: dict[str, int] = {}  # enumerators of the enum being defined
        self.defining: set[str] = set()  # structs whose body is being parsed

    # -- helpers --

    def span_of(self, first: Token, last: Token | None = None) -> Span:
        end = (last or first).end
        return self.span.file.span(self.span.start + first.start, self.span.start + max(end, first.start))

    def error(self, message: str, first: Token, last: Token | None = None,
              notes: tuple[Note, ...] = ()) -> None:
        self.diags.error(message, self.span_of(first, last), notes=notes)

    def accept(self, text: str) -> bool:
        tok = self.toks[self.pos]
        if tok.text == text and tok.kind in ("op", "id"):
            self.pos += 1
            return True
        return False

    def lookup(self, kind: str, name: str) -> Type | None:
        key = (kind, name)
        if key not in self.cache:
            self.cache[key] = self.resolve(kind, name)
        return self.cache[key]

    def typedef_type(self, name: str) -> Type | None:
        if name in self.out.typedefs:
            return self.out.typedefs[name]
        if name not in _TYPE_WORDS and name in C_INT_TYPES:  # u32, size_t, ...
            return C_INT_TYPES[name]
        return self.lookup("typedef", name)

    def starts_type(self, tok: Token) -> bool:
        return tok.kind == "id" and (
            tok.text in _TYPE_WORDS or tok.text in _QUALIFIERS or tok.text in ("struct", "union", "enum")
            or self.typedef_type(tok.text) is not None)

    def skip_balanced(self) -> None:
        close = {"(": ")", "[": "]", "{": "}"}
        stack = [close[self.toks[self.pos].text]]
        self.pos += 1
        while stack:
            tok = self.toks[self.pos]
            if tok.kind == "eof":
                raise ExprError(f"expected '{stack[-1]}'", tok)
            if tok.kind == "op" and tok.text in close:
                stack.append(close[tok.text])
            elif tok.kind == "op" and tok.text == stack[-1]:
                stack.pop()
            self.pos += 1

    def recover(self) -> None:
        """Skip the rest of a broken member declaration (to ';' or the closing '}')."""
        while True:
            tok = self.toks[self.pos]
            if tok.kind == "eof":
                raise _Abort
            if tok.text == ";":
                self.pos += 1
                return
            if tok.text == "}":
                return
            if tok.text in ("(", "[", "{"):
                self.skip_balanced()
            else:
                self.pos += 1

    # -- constant expressions (hooks of IntExprParser) --

    def const_int(self) -> int:
        return self.conditional().value

    def identifier(self, tok: Token) -> CInt:
        name = tok.text
        if name in _SIZEOF:
            self.expect("(")
            if not self.starts_type(self.peek()):
                raise ExprError(f"'{name}' is only supported on a type name", tok)
            t = self.type_name()
            self.expect(")")
            return CInt(t.size if name == "sizeof" else t.align, 64, True)
        if name in self.pending:
            return _int_const(self.pending[name])
        if name in self.out.enum_values:
            return _int_const(self.out.enum_values[name][0])
        value = self.constants(name) if self.constants is not None else None
        if value is None:
            raise ExprError(f"use of undeclared identifier '{name}'", tok)
        return _int_const(value)

    def cast_type(self) -> tuple[int, bool] | None:
        tok = self.peek()
        if not self.starts_type(tok):
            return None
        t = self.type_name()
        self.expect(")")
        if isinstance(t, (IntType, EnumType)):
            return t.bits, t.signed
        if isinstance(t, BoolType):
            return 8, False
        raise ExprError(f"cast to '{t}' in an integer constant expression", tok)

    def type_name(self) -> Type:
        spec = self.specifiers()
        _, t, _ = self.declarator(spec.type, abstract=True)
        done = self.complete(t, spec.named)
        if done is None:
            raise _Abort
        return done

    # -- declarations --

    def run(self) -> None:
        try:
            while self.toks[self.pos].kind != "eof":
                self.declaration()
        except ExprError as e:
            self.error(e.message, e.token or self.toks[-1])
        except _Abort:
            pass

    def declaration(self) -> None:
        spec = self.specifiers()
        if self.peek().kind == "eof":
            raise ExprError("expected ';' after the definition", self.peek())
        if self.accept(";"):
            if not spec.tagged:
                self.diags.warning("declaration does not declare anything", self.span_of(*spec.named))
            return
        while True:
            name, typ, tok = self.declarator(spec.type)
            extra = _Attrs()
            self.attributes(extra)
            if not spec.typedef:
                self.diags.warning(f"declaration of '{name}' is ignored: only types can be defined "
                                   "outside probes", self.span_of(tok))
            else:
                if extra.aligned or spec.attrs.aligned:
                    self.diags.warning(f"alignment attribute on typedef '{name}' is ignored",
                                       self.span_of(tok))
                # A function typedef is only usable through pointers, which are void *.
                typ = VOID if isinstance(typ, _FunctionType) else typ
                old = self.out.typedefs.get(name)
                if old is not None and old != typ:
                    self.error(f"typedef redefinition with different types ('{typ}' vs '{old}')", tok,
                               notes=(Note("previous definition is here", self.out.spans.get(name)),))
                elif old is None:
                    self.out.typedefs[name] = typ
                    self.out.spans[name] = self.span_of(tok)
            if not self.accept(","):
                break
        self.expect(";")

    def specifiers(self) -> _Spec:
        typedef, anon, tagged = False, False, False
        words: list[Token] = []
        base: Type | None = None
        named: tuple[Token, Token] | None = None
        attrs = _Attrs()
        first = self.peek()
        while True:
            tok = self.peek()
            word = tok.text
            if tok.kind != "id":
                break
            if word in _QUALIFIERS:
                self.pos += 1
            elif word == "typedef":
                typedef = True
                self.pos += 1
            elif word in _ATTRIBUTE:
                self.attributes(attrs)
            elif word in ("_Alignas", "alignas"):
                self.pos += 1
                self.expect("(")
                self.set_aligned(attrs, self.const_int(), tok)
                self.expect(")")
            elif word in _TYPE_WORDS:
                words.append(tok)
                self.pos += 1
            elif base is not None or words:
                break
            elif word in ("struct", "union"):
                base, tag_tok = self.struct_specifier()
                tagged, anon = tag_tok is not None, tag_tok is None
                named = (tok, tag_tok or tok)
            elif word == "enum":
                base, tag_tok, body = self.enum_specifier()
                # An untagged enum body still declares its enumerators.
                tagged, named = tag_tok is not None or body, (tok, tag_tok or tok)
            else:
                base = self.typedef_type(word)
                if base is None:
                    break
                named = (tok, tok)
                self.pos += 1
        if words:
            if base is not None:
                raise ExprError("cannot combine with previous type specifier", words[0])
            base, named = self.word_type(words), (words[0], words[-1])
        if base is None or named is None:
            tok = self.peek()
            if tok.kind == "id":
                raise ExprError(f"unknown type name '{tok.text}'", tok)
            raise ExprError("expected a type" + _found(tok), tok if tok.kind != "eof" else first)
        return _Spec(base, typedef, attrs, named, anon, tagged)

    def word_type(self, words: list[Token]) -> Type:
        texts = [w.text for w in words]
        if "void" in texts:
            if len(texts) == 1:
                return VOID
        elif "float" in texts or "double" in texts:
            if sorted(texts) in (["float"], ["double"]):
                # bpftrace has no floating point; keep the layout right at least.
                self.diags.warning(f"floating-point type '{texts[0]}' is treated as an opaque "
                                   "integer of the same size", self.span_of(words[0]))
                return I32 if texts == ["float"] else I64
            if sorted(texts) == ["double", "long"]:
                raise ExprError("type 'long double' is not supported", words[0])
        else:
            t = c_int_type(texts)
            if t is not None:
                return t
        raise ExprError(f"invalid type '{' '.join(texts)}'", words[0])

    def attributes(self, attrs: _Attrs) -> None:
        while self.peek().text in _ATTRIBUTE:
            self.pos += 1
            self.expect("(")
            self.expect("(")
            while self.peek().text != ")":
                tok = self.peek()
                if tok.kind != "id":
                    raise ExprError("expected an attribute name", tok)
                self.pos += 1
                name = tok.text.strip("_")
                if name == "aligned":
                    value = 16  # the largest alignment on x86_64
                    if self.accept("("):
                        value = self.const_int()
                        self.expect(")")
                    self.set_aligned(attrs, value, tok)
                elif name == "packed":
                    attrs.packed = True
                elif self.peek().text == "(":
                    self.skip_balanced()  # other attributes do not change the layout
                if not self.accept(","):
                    break
            self.expect(")")
            self.expect(")")

    def set_aligned(self, attrs: _Attrs, value: int, tok: Token) -> None:
        if value <= 0 or value & (value - 1):
            self.error(f"requested alignment {value} is not a positive power of 2", tok)
        else:
            attrs.aligned = max(attrs.aligned or 1, value)

    def declarator(self, base: Type, abstract: bool = False) -> tuple[str, Type, Token]:
        """``* ... name [N] (params)`` around ``base``; C reads it inside out."""
        while self.accept("*"):
            base = PointerType(VOID if isinstance(base, _FunctionType) else base)
            while self.peek().text in _QUALIFIERS or self.peek().text in _ATTRIBUTE:
                if self.peek().text in _ATTRIBUTE:
                    self.attributes(_Attrs())
                else:
                    self.pos += 1
        tok = self.peek()
        if tok.text == "(" and self.nested_declarator():
            open_ = self.pos
            self.skip_balanced()
            outer = self.suffixes(base)
            end = self.pos
            self.pos = open_ + 1
            name, typ, name_tok = self.declarator(outer, abstract)
            self.expect(")")
            self.pos = end
            return name, typ, name_tok
        if tok.kind == "id" and tok.text not in _ATTRIBUTE:
            self.pos += 1
            return tok.text, self.suffixes(base), tok
        if not abstract:
            raise ExprError("expected a name" + _found(tok), tok)
        return "", self.suffixes(base), tok

    def nested_declarator(self) -> bool:
        nxt = self.peek(1)
        return nxt.text in ("*", "(", "^") or (
            nxt.kind == "id" and nxt.text not in _ATTRIBUTE and not self.starts_type(nxt))

    def suffixes(self, base: Type) -> Type:
        dims: list[int | None] = []  # None: a function's parameter list
        while True:
            tok = self.peek()
            if tok.text == "[":
                self.pos += 1
                count = 0 if self.peek().text == "]" else self.const_int()  # [] is a flexible array
                if count < 0:
                    raise ExprError(f"array size is negative ({count})", tok)
                self.expect("]")
                dims.append(count)
            elif tok.text == "(":
                self.skip_balanced()
                dims.append(None)
            else:
                break
        for dim in reversed(dims):
            if dim is None:
                base = _FUNCTION
            elif isinstance(base, _FunctionType):
                raise ExprError("declaration of an array of functions", self.peek())
            else:
                base = ArrayType(base, dim)
        return base

    def complete(self, t: Type, named: tuple[Token, Token]) -> Type | None:
        """``t`` with incomplete struct placeholders replaced by their definitions
        (this script's, else the resolver's); None after reporting an error."""
        if isinstance(t, ArrayType):
            element = self.complete(t.element, named)
            return None if element is None else ArrayType(element, t.count)
        if not isinstance(t, StructType) or t.fields is not None:
            return t
        key = f"{t.kind} {t.tag}"
        found = self.out.structs.get(key)
        if found is None and key not in self.defining:
            resolved = self.lookup(t.kind, t.tag)
            if resolved is None:
                self.error(f"unknown type '{key}'", *named)
                return None
            found = resolved if isinstance(resolved, StructType) else None
        if found is None or found.fields is None:
            self.error(f"incomplete type '{key}'", *named)
            return None
        return found

    def keyword_and_tag(self) -> tuple[Token, "_Attrs", Token | None, str]:
        """'struct'/'union'/'enum', its attributes and its optional tag (the
        same prefix for struct and enum specifiers)."""
        kw = self.toks[self.pos]
        self.pos += 1
        attrs = _Attrs()
        self.attributes(attrs)
        tag_tok = self.peek() if self.peek().kind == "id" and self.peek().text not in _ATTRIBUTE else None
        if tag_tok is not None:
            self.pos += 1
        self.attributes(attrs)
        return kw, attrs, tag_tok, tag_tok.text if tag_tok else ""

    def struct_specifier(self) -> tuple[Type, Token | None]:
        """The struct or union type and its tag token (None: anonymous, defined here)."""
        kw, attrs, tag_tok, tag = self.keyword_and_tag()
        key = f"{kw.text} {tag}"
        if self.peek().text != "{":
            if tag_tok is None:
                raise ExprError(f"expected '{{' or a name after '{kw.text}'", self.peek())
            return self.out.structs.get(key) or StructType(kw.text, tag), tag_tok
        self.defining.add(key)
        try:
            members = self.struct_body()
        finally:
            self.defining.discard(key)
        self.attributes(attrs)
        t = _layout(kw.text, tag, members, attrs)
        if tag_tok is not None:
            if key in self.out.structs:
                self.error(f"redefinition of '{key}'", tag_tok,
                           notes=(Note("previous definition is here", self.out.spans.get(key)),))
            else:
                self.out.structs[key] = t
                self.out.spans[key] = self.span_of(tag_tok)
        return t, tag_tok

    def struct_body(self) -> list[_Member]:
        self.expect("{")
        members: list[_Member] = []
        while not self.accept("}"):
            if self.peek().kind == "eof":
                raise ExprError("expected '}'", self.peek())
            try:
                self.member_declaration(members)
            except ExprError as e:
                self.error(e.message, e.token or self.toks[-1])
                self.recover()
        seen: set[str] = set()
        for m in members:
            names = [m.name] if m.name else m.type.field_names() if isinstance(m.type, StructType) else []
            for name in names:
                if name in seen:
                    self.error(f"duplicate member '{name}'", m.tok)
                seen.add(name)
        return members

    def member_declaration(self, members: list[_Member]) -> None:
        if self.accept(";"):
            return  # a stray ';' (gcc accepts it)
        spec = self.specifiers()
        if spec.typedef:
            raise ExprError("a typedef cannot be a struct member", spec.named[0])
        if self.accept(";"):
            if spec.anon_body:  # an anonymous struct/union member
                members.append(_Member("", spec.type, None, spec.attrs, spec.named[0]))
            elif not spec.tagged:
                self.diags.warning("declaration does not declare anything", self.span_of(*spec.named))
            return
        while True:
            if self.peek().text == ":":
                name, typ, tok = "", spec.type, self.peek()  # unnamed bitfield: padding
            else:
                name, typ, tok = self.declarator(spec.type)
            width = self.bitfield_width(name, typ, tok) if self.accept(":") else None
            attrs = _Attrs(spec.attrs.packed, spec.attrs.aligned)
            self.attributes(attrs)
            what = f"field '{name}'" if name else "unnamed field"
            if isinstance(typ, _FunctionType):
                self.error(f"{what} declared as a function", tok)
            elif isinstance(typ, VoidType):
                self.error(f"{what} has incomplete type 'void'", tok)
            else:
                done = self.complete(typ, spec.named)
                if done is not None and width is not None and width >= 0:
                    members.append(_Member(name, done, width, attrs, tok))
                elif done is not None and width is None:
                    members.append(_Member(name, done, None, attrs, tok))
            if not self.accept(","):
                break
        self.expect(";")

    def bitfield_width(self, name: str, typ: Type, tok: Token) -> int:
        """The width after ':'; -1 after reporting an invalid one."""
        at = self.peek()
        width = self.const_int()
        label = f"bit-field '{name}'" if name else "unnamed bit-field"
        if not isinstance(typ, (IntType, EnumType, BoolType)):
            self.error(f"{label} has non-integral type '{typ}'", tok)
        elif width < 0:
            self.error(f"{label} has negative width ({width})", at)
        elif width == 0 and name:
            self.error(f"named bit-field '{name}' has zero width", at)
        elif width > typ.size * 8:
            self.error(f"width of {label} ({width} bits) exceeds the width of its type "
                       f"({typ.size * 8} bits)", at)
        else:
            return width
        return -1

    def enum_specifier(self) -> tuple[Type, Token | None, bool]:
        """The enum type, its tag token and whether a body was given."""
        kw, attrs, tag_tok, tag = self.keyword_and_tag()
        key = f"enum {tag}"
        if not self.accept("{"):
            if tag_tok is None:
                raise ExprError("expected '{' or a name after 'enum'", self.peek())
            found = self.out.enums.get(key) or self.lookup("enum", tag)
            if isinstance(found, EnumType):
                return found, tag_tok, False
            self.error(f"unknown type '{key}'", kw, tag_tok)
            return EnumType(tag), tag_tok, False
        names: list[Token] = []
        self.pending = {}
        following = 0
        while not self.accept("}"):
            tok = self.peek()
            if tok.kind != "id":
                raise ExprError("expected an enumerator name" + _found(tok), tok)
            self.pos += 1
            self.attributes(_Attrs())
            value = self.const_int() if self.accept("=") else following
            if tok.text in self.pending or tok.text in self.out.enum_values:
                self.error(f"redefinition of enumerator '{tok.text}'", tok)
            else:
                self.pending[tok.text] = value
                names.append(tok)
            following = value + 1
            if not self.accept(","):
                self.expect("}")
                break
        self.attributes(attrs)
        values = [self.pending[t.text] for t in names]
        et = EnumType(tag, *_enum_repr(values, attrs.packed),
                      names=tuple((self.pending[t.text], t.text) for t in names))
        if min(values, default=0) < -(1 << 63) or max(values, default=0) >= 1 << 64:
            self.error("enumerator value out of range", kw, tag_tok)
        for t in names:
            self.out.enum_values[t.text] = (self.pending[t.text], et)
            self.out.spans[t.text] = self.span_of(t)
        self.pending = {}
        if tag_tok is not None:
            if key in self.out.enums:
                self.error(f"redefinition of '{key}'", tag_tok,
                           notes=(Note("previous definition is here", self.out.spans.get(key)),))
            else:
                self.out.enums[key] = et
                self.out.spans[key] = self.span_of(tag_tok)
        return et, tag_tok, True


def _found(tok: Token) -> str:
    return f", found '{tok.text}'" if tok.kind != "eof" else ""


def _int_const(value: int) -> CInt:
    if -(1 << 31) <= value < 1 << 31:
        return CInt(value, 32, False)
    return CInt(value, 64, value >= 1 << 63)


def _enum_repr(values: list[int], packed: bool) -> tuple[int, bool]:
    """(bits, signed) of an enum's underlying type, as gcc picks it."""
    lo, hi = min(values, default=0), max(values, default=0)
    signed = lo < 0
    for bits in ((8, 16, 32, 64) if packed else (32, 64)):
        if (signed and -(1 << (bits - 1)) <= lo and hi < 1 << (bits - 1)) or (not signed and hi < 1 << bits):
            return bits, signed
    return 64, signed


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _layout(kind: str, tag: str, members: list[_Member], attrs: _Attrs) -> StructType:
    """gcc's x86_64 layout.  Bitfields: a field goes at the next free bit unless
    it would cross a boundary of its type's alignment (not in packed structs);
    ``:0`` skips to the next such boundary; unnamed bitfields don't raise the
    struct's alignment.  Field.offset of a bitfield is its aligned storage unit."""
    fields: list[Field] = []
    align, bit, size = 1, 0, 0
    for m in members:
        t, packed = m.type, attrs.packed or m.attrs.packed
        natural = 1 if packed else t.align
        member_align = max(natural, m.attrs.aligned or 1)
        if m.width is not None and kind == "union":
            if m.width:
                size = max(size, (m.width + 7) // 8)
                if m.name:
                    align = max(align, member_align)
                    fields.append(Field(m.name, t, 0, (0, m.width)))
        elif m.width is not None:
            unit = t.align * 8
            if m.width == 0:
                bit = _align_up(bit, unit)
                continue
            if not packed and bit // unit != (bit + m.width - 1) // unit:
                bit = _align_up(bit, unit)
            if m.name:
                align = max(align, member_align)
                start = bit // (t.size * 8) * t.size
                if bit + m.width > (start + t.size) * 8:  # straddles (packed): from its first byte
                    start = bit // 8
                fields.append(Field(m.name, t, start, (bit - start * 8, m.width)))
            bit += m.width
        elif kind == "union":
            size = max(size, t.size)
            align = max(align, member_align)
            fields.append(Field(m.name, t, 0))
        else:
            offset = _align_up((bit + 7) // 8, member_align)
            fields.append(Field(m.name, t, offset))
            bit = (offset + t.size) * 8
            align = max(align, member_align)
    if kind != "union":
        size = (bit + 7) // 8
    align = max(align, attrs.aligned or 1)
    return StructType(kind, tag, tuple(fields), _align_up(size, align), align)
