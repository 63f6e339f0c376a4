"""Syntax highlighting for the pytrace (bpftrace) language: a Pygments lexer.

``PytraceLexer`` colours the language as ``grammar/pytrace.lark`` reads it:
attach points (``provider:part:part``, quoted paths, wildcards, offsets),
predicates, action blocks in ``{ }`` and ``< >`` form, keywords, the
builtins of the registry (``pytrace.builtins.registry``: the names are read
from there, never listed twice), maps, variables, strings with their escapes
and printf conversions, integers (hex, ``1_000``, ``1e6``, durations), C
preprocessor lines and C type definitions.  The REPL uses it through
prompt-toolkit's ``PygmentsLexer``; the ``pygments.lexers`` entry point
(pyproject.toml) makes ``pygmentize -l bpftrace`` and Markdown renderers that
use Pygments highlight ```` ```bpftrace ```` blocks with it.

It never raises and never loses text: every character comes out in exactly
one token (``ensurenl``/``stripnl`` are off by default), what it cannot place is an
``Error`` token, and every state matches whitespace so that a newline never
resets a multi-line block to the top level (Pygments' fallback at a newline
no rule matches).
"""

from __future__ import annotations

from typing import Any

from pygments.lexer import RegexLexer, bygroups, default, include, words
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

# Statement keywords (grammar: if_stmt, while_stmt, ...), top-level item
# keywords and the words of expressions that are not names.
STATEMENT_KEYWORDS = ("if", "else", "while", "for", "unroll", "return", "break", "continue", "let")
TOP_KEYWORDS = ("config", "import", "macro", "let")
EXPRESSION_KEYWORDS = ("sizeof", "offsetof")
CONSTANTS = ("true", "false")
# The grammar's int_type; 'string' declares a let variable (let $s: string[16]);
# buffer[N] is how buf() values print.
INT_TYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "bool")
DECLARABLE_TYPES = INT_TYPES + ("string",)
TYPE_NAMES = DECLARABLE_TYPES + ("buffer",)
# C type words inside struct/union/enum/typedef definitions (kept verbatim
# for the C stage, so only coloured here).
_C_TYPES = ("void", "char", "short", "int", "long", "float", "double", "signed", "unsigned", "_Bool", "bool",
            "const", "volatile", "struct", "union", "enum", "typedef", "__attribute__", "__packed")

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# grammar INTEGER: hex with C suffixes; decimal with '_' separators, an
# exponent and a C or duration suffix; not followed by a name character.
_SUFFIX = r"(?:[uU][lL]{0,2}|[lL]{1,2}[uU]?)"
_HEX = r"0[xX][0-9a-fA-F]+" + _SUFFIX + r"?(?![A-Za-z0-9_])"
_OCT = r"0[0-7]+" + _SUFFIX + r"?(?![A-Za-z0-9_])"
_DEC = r"[0-9](?:[0-9_]*[0-9])?(?:[eE][0-9]+)?(?:ns|us|ms|s|m|h|d|" + _SUFFIX + r")?(?![A-Za-z0-9_])"
# printf conversions inside a string: flags, width, precision, length, type.
_CONVERSION = r"%[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|z|j|t)?[a-zA-Z%]"


def _builtin_names() -> tuple[list[str], str]:
    """Every name of the builtin registry, and a pattern for the families it
    makes on demand (``arg0``..``argN``)."""
    from ..builtins.registry import default_registry
    return default_registry().names(), r"arg[0-9]+\b"


def _token_table() -> dict[str, list[Any]]:
    builtins, dynamic = _builtin_names()
    operators = (r"->|\.\.|<<=|>>=|\+=|-=|\*=|/=|%=|&=|\|=|\^=|\+\+|--|==|!=|<=|>=|<<|>>|&&|\|\|"
                 r"|[-+*/%&|^!~<>=?:]")
    return {
        # ------------------------------------------------------------ shared
        "ws": [
            (r"\s+", Whitespace),
            (r"//[^\n]*", Comment.Single),
            # An unterminated comment runs to the end of the input.
            (r"/\*(?:[^*]|\*+[^*/])*(?:\*+/|\*+\Z|\Z)", Comment.Multiline),
        ],
        "string": [
            (r'"', String.Double, "#pop"),
            (r"\\(?:x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", String.Escape),
            (_CONVERSION, String.Interpol),
            (r'[^"\\%\n]+', String.Double),
            (r"%", String.Double),
            # A string must end on its line (grammar STRING): leave it at the
            # newline so that what follows is read as code again.
            (r"\\?(?=\n)", String.Double, "#pop"),
        ],
        "literals": [
            (r'"', String.Double, "string"),
            (_HEX, Number.Hex),
            (_OCT, Number.Oct),
            (_DEC, Number.Integer),
            (r"[0-9]+", Number.Integer),
        ],
        "names": [
            (r"@" + _IDENT, Name.Variable.Global),
            (r"@", Name.Variable.Global),
            (r"\$" + _IDENT, Name.Variable),
            (r"\$[0-9]+|\$#", Name.Variable.Magic),
        ],
        # ------------------------------------------------------------ expressions
        "expr": [
            include("ws"),
            # Field access after '.' or '->' (args.filename, curtask->comm);
            # before the builtins so that a field named 'comm' is a field.
            (r"(->|\.)(\s*)(" + _IDENT + ")", bygroups(Operator, Whitespace, Name.Attribute)),
            (r"(\.)([0-9]+)", bygroups(Operator, Number.Integer)),
            include("literals"),
            include("names"),
            (r"(struct|union|enum)(\s+)(" + _IDENT + ")", bygroups(Keyword, Whitespace, Name.Class)),
            (words(STATEMENT_KEYWORDS + EXPRESSION_KEYWORDS, suffix=r"\b"), Keyword),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(TYPE_NAMES, suffix=r"\b"), Keyword.Type),
            (words(builtins, prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (dynamic, Name.Builtin),
            (_IDENT + r"(?=\s*\()", Name.Function),
            (_IDENT, Name),
            (operators, Operator),
            (r"[()\[\],;.]", Punctuation),
        ],
        "block": [
            (r"\{", Punctuation, "#push"),
            (r"\}", Punctuation, "#pop"),
            include("expr"),
            (r"\S", Error),
        ],
        # A predicate: a '/' followed by '{' or '<' ends it (grammar ENDPRED),
        # any other '/' divides.
        "predicate": [
            (r"/(?=\s*[{<])", Punctuation, "#pop"),
            include("expr"),
            (r"[{}]", Error),
            (r"\S", Error),
        ],
        # '< ... >': every simple statement ends with ';', so a '>' where a
        # statement would start closes the block.
        "angle": [
            include("ws"),
            (r">", Punctuation, "#pop"),
            (r";", Punctuation),
            (r"\{", Punctuation, "block"),
            (words(("if", "while", "for", "unroll"), suffix=r"\b"), Keyword, "angle_compound"),
            default("angle_stmt"),
        ],
        "angle_stmt": [
            (r";", Punctuation, "#pop"),
            (r"\{", Punctuation, "block"),
            include("expr"),
            (r"\S", Error),
        ],
        # if/while/for/unroll inside '< >': over after its last block when
        # no 'else' follows.
        "angle_compound": [
            (r"(?<=\})(\s*+)(?!else\b)(?=\S)", bygroups(Whitespace), "#pop"),
            (r";", Punctuation, "#pop"),
            (r"\{", Punctuation, "block"),
            include("expr"),
            (r"\S", Error),
        ],
        # ------------------------------------------------------------ attach points
        # grammar ATTACH_POINT: parts are any characters but blanks and
        # ',{}"<;', or quoted strings.
        "attach": [
            (r'"(?:[^"\\\n]|\\.)*"?', String.Double),
            (r":", Punctuation),
            (r"[*?]|\[[^\]\s,{}\"<;:]*\]?", Operator),
            (r"\$[0-9]+", Name.Variable.Magic),
            (r"\+(?:0[xX][0-9a-fA-F]+|[0-9]+)(?=[\s,{}\"<;:]|\Z)", Number),
            (r"(?:0[xX][0-9a-fA-F]+|[0-9][0-9_]*[A-Za-z]*)(?=[\s,{}\"<;:]|\Z)", Number),
            (r'[^\s,{}"<;:*?\[$+]+', Name.Function),
            (r"[$+]", Name.Function),
            default("#pop"),
        ],
        # ------------------------------------------------------------ C items
        "cdef": [
            include("ws"),
            (r"\{", Punctuation, "#push"),
            (r"\}", Punctuation, "#pop"),
            (words(_C_TYPES, suffix=r"\b"), Keyword.Type),
            include("literals"),
            (_IDENT, Name),
            (r"[-+*/%&|^!~<>=?:]", Operator),
            (r"[()\[\],;.]", Punctuation),
            (r"\S", Error),
        ],
        # typedef ...; (its body may hold a struct definition).
        "typedef": [
            (r";", Punctuation, "#pop"),
            (r"\{", Punctuation, "cdef"),
            include("cdef"),
        ],
        # ------------------------------------------------------------ top level
        "root": [
            include("ws"),
            (r"#![^\n]*", Comment.Hashbang),
            (r"(#[ \t]*include)([ \t]*)(<[^>\n]*>?|\"[^\"\n]*\"?)([^\n]*)",
             bygroups(Comment.Preproc, Whitespace, Comment.PreprocFile, Comment.Preproc)),
            (r"#[^\n]*", Comment.Preproc),
            (r"(struct|union|enum)(\s+)(" + _IDENT + r")(\s*)(\{)",
             bygroups(Keyword, Whitespace, Name.Class, Whitespace, Punctuation), "cdef"),
            (r"typedef\b", Keyword, "typedef"),
            (r"(macro)(\s+)(" + _IDENT + ")", bygroups(Keyword, Whitespace, Name.Function)),
            (words(TOP_KEYWORDS, suffix=r"\b"), Keyword),
            (r"(" + _IDENT + r")(:)", bygroups(Name.Namespace, Punctuation), "attach"),
            (words(("BEGIN", "END", "begin", "end"), suffix=r"\b"), Name.Namespace),
            (r"/", Punctuation, "predicate"),
            (r"\{", Punctuation, "block"),
            (r"<", Punctuation, "angle"),
            include("literals"),
            include("names"),
            (_IDENT + r"(?=\s*\()", Name.Function),
            (_IDENT, Name),
            (r"[(),;\[\]*]", Punctuation),
            (r"=", Operator),
            (r"\S", Error),
        ],
    }


class PytraceLexer(RegexLexer):
    """The pytrace (bpftrace) language."""

    name = "pytrace"
    aliases = ["pytrace", "bpftrace"]
    filenames = ["*.pt", "*.bt"]
    mimetypes = ["text/x-bpftrace"]
    url = "https://github.com/bpftrace/bpftrace"
    tokens = _token_table()

    def __init__(self, **options: Any) -> None:
        # Keep the text as given (Pygments adds a final newline and strips
        # leading and trailing ones by default): tokens map back onto the
        # REPL's buffer.  Options still override.
        options.setdefault("stripnl", False)
        options.setdefault("ensurenl", False)
        super().__init__(**options)
