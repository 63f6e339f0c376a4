"""The REPL's highlighter (pytrace/repl/lexer.py): every documented example
lexes without an Error token, any text comes back whole, and the constructs
of the language get the token types a style colours them by."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Token

from pytrace.builtins.registry import default_registry
from pytrace.repl.lexer import PytraceLexer

from .test_docs_examples import extract_blocks

ROOT = Path(__file__).resolve().parents[2]
LEXER = PytraceLexer()


def tokens(text: str) -> list[tuple[object, str]]:
    """(type, text) of every non-blank token."""
    return [(t, v) for _, t, v in LEXER.get_tokens_unprocessed(text) if v.strip()]


def kind_of(text: str, value: str, nth: int = 0) -> object:
    """The token type of the nth token whose text is ``value``."""
    return [t for t, v in tokens(text) if v == value][nth]


def doc_examples() -> list[tuple[str, int, str]]:
    out = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        out += [(doc.name, line, code) for line, lang, code in extract_blocks(doc.read_text()) if lang == "bpftrace"]
    return out


def test_every_doc_example_lexes_without_errors() -> None:
    examples = doc_examples()
    assert len(examples) > 100
    for name, line, code in examples:
        toks = list(LEXER.get_tokens_unprocessed(code))
        assert "".join(v for _, _, v in toks) == code
        errors = [v for _, t, v in toks if t in Error]
        assert not errors, f"{name}:{line}: {errors}"


# Fragments of the language, so that random scripts reach every state
# (attach points, predicates, both block forms, strings, comments, C items).
FRAGMENTS = ["tracepoint:sched:sched_switch", "uprobe:\"/a b\":f+8", "BEGIN", "END", "i:100ms", "/", "//", "/*",
             "*/", "{", "}", "<", ">", ";", ",", "\"", "\\", "%d", "\n", " ", "if", "else", "while", "for", "(", ")",
             "@m", "@", "$x", "$1", "args", "->", ".", "..", "printf", "0x1f", "1_000", "1e6", "5ms", "#include <x>",
             "#define X 1", "struct s {", "typedef", "config", "=", "macro", "let", ":", "*", "?", "'", "`", "#!"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS)).map("".join),
                 st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3))).map("".join)))
def test_any_text_lexes_back_to_itself(text: str) -> None:
    # get_tokens_unprocessed is what prompt-toolkit's PygmentsLexer calls.
    assert "".join(v for _, _, v in LEXER.get_tokens_unprocessed(text)) == text
    if "\r" not in text:  # get_tokens turns \r into \n (Pygments' own preprocessing)
        assert "".join(v for _, v in LEXER.get_tokens(text)) == text


def test_attach_points() -> None:
    text = 'uprobe:"/opt/my app/bin":main+0x10, t:syscalls:sys_enter_* { }'
    assert tokens(text)[:12] == [
        (Name.Namespace, "uprobe"), (Punctuation, ":"), (String.Double, '"/opt/my app/bin"'), (Punctuation, ":"),
        (Name.Function, "main"), (Number, "+0x10"), (Punctuation, ","), (Name.Namespace, "t"),
        (Punctuation, ":"), (Name.Function, "syscalls"), (Punctuation, ":"), (Name.Function, "sys_enter_"),
    ]
    assert kind_of(text, "*") is Operator
    assert kind_of("interval:s:1 { }", "1") is Number
    assert kind_of("watchpoint:0x404020:8:w { }", "0x404020") is Number
    assert kind_of("uprobe:$1:main { }", "$1") is Name.Variable.Magic
    assert kind_of("BEGIN { }", "BEGIN") is Name.Namespace


def test_predicate_and_division() -> None:
    # Only the '/' right before '{' closes the predicate; the others divide.
    text = "t:syscalls:sys_exit_read /args->ret / 2 > 100/ { @x = 4 / 2; }"
    slashes = [t for t, v in tokens(text) if v == "/"]
    assert slashes == [Punctuation, Operator, Punctuation, Operator]
    assert kind_of(text, "args") is Name.Builtin and kind_of(text, "ret") is Name.Attribute


def test_every_registry_builtin_is_a_builtin_token() -> None:
    names = default_registry().names()
    body = "BEGIN { " + "; ".join(f"{n}()" for n in names) + "; arg0; arg11 }"
    found = {v for t, v in tokens(body) if t is Name.Builtin}
    assert found == set(names) | {"arg0", "arg11"}
    # A field, a variable or a map with a builtin's name is not the builtin.
    text = "BEGIN { $pid = args.comm; @count = 1; mypid(); }"
    assert kind_of(text, "$pid") is Name.Variable
    assert kind_of(text, "comm") is Name.Attribute
    assert kind_of(text, "@count") is Name.Variable.Global
    assert kind_of(text, "mypid") is Name.Function


@pytest.mark.parametrize("word", ["if", "else", "while", "for", "unroll", "return", "break", "continue", "let",
                                  "sizeof", "offsetof"])
def test_statement_keywords(word: str) -> None:
    assert kind_of(f"BEGIN {{ {word} }}", word) is Keyword


@pytest.mark.parametrize("word", ["config", "import", "macro", "let"])
def test_top_level_keywords(word: str) -> None:
    assert kind_of(f"{word} x", word) is Keyword


def test_maps_variables_numbers_strings() -> None:
    text = r'BEGIN { @ = 1; @m[$1, $#] = $x + 0x1F + 1_000 + 1e6 + 0777 + 10UL + 100ms; printf("%-16s\t\x41 %%\n"); }'
    assert kind_of(text, "@") is Name.Variable.Global
    assert kind_of(text, "@m") is Name.Variable.Global
    assert kind_of(text, "$x") is Name.Variable
    assert kind_of(text, "$1") is Name.Variable.Magic and kind_of(text, "$#") is Name.Variable.Magic
    assert [kind_of(text, n) for n in ("0x1F", "1_000", "1e6", "0777", "10UL", "100ms")] == \
        [Number.Hex, Number.Integer, Number.Integer, Number.Oct, Number.Integer, Number.Integer]
    strings = [(t, v) for t, v in tokens(text) if t in String]
    assert strings == [(String.Double, '"'), (String.Interpol, "%-16s"), (String.Escape, "\\t"),
                       (String.Escape, "\\x41"), (String.Interpol, "%%"),
                       (String.Escape, "\\n"), (String.Double, '"')]


def test_unterminated_string_and_comment() -> None:
    # A string ends at its line: the next line is code again.
    text = 'BEGIN { printf("abc\n@x = 1; }'
    assert kind_of(text, "@x") is Name.Variable.Global
    # An unterminated block comment runs to the end, as one comment token.
    assert tokens("BEGIN { } /* open\nmore")[-1] == (Comment.Multiline, "/* open\nmore")


def test_comments_preprocessor_and_c_definitions() -> None:
    text = ("#!/usr/bin/env pytrace\n#include <sys/socket.h>\n#define MAX 8\n// line\n/* block */\n"
            "struct point { int x; char name[8]; };\nenum color { RED, GREEN = 5 };\ntypedef unsigned long u64_t;\n"
            "BEGIN { exit(); }")
    toks = tokens(text)
    assert toks[:6] == [(Comment.Hashbang, "#!/usr/bin/env pytrace"), (Comment.Preproc, "#include"),
                        (Comment.PreprocFile, "<sys/socket.h>"), (Comment.Preproc, "#define MAX 8"),
                        (Comment.Single, "// line"), (Comment.Multiline, "/* block */")]
    assert kind_of(text, "point") is Name.Class and kind_of(text, "int") is Keyword.Type
    assert kind_of(text, "RED") is Name and kind_of(text, "unsigned") is Keyword.Type
    # After the C items the probe is a probe again.
    assert kind_of(text, "BEGIN") is Name.Namespace and kind_of(text, "exit") is Name.Builtin


def test_angle_block_closes() -> None:
    text = "BEGIN < $x = 1; if ($x > 0) { $y = 1; } else { $y = 2; } exit(); > tracepoint:sched:sched_switch { }"
    assert kind_of(text, ">", 0) is Operator          # the comparison
    assert kind_of(text, ">", 1) is Punctuation       # the block's end
    assert kind_of(text, "tracepoint") is Name.Namespace
    assert kind_of(text, "else") is Keyword


def test_multiline_block_keeps_its_state() -> None:
    text = "BEGIN {\n  if (1) {\n    printf(\"x\");\n  }\n  exit();\n}\ntracepoint:a:b { }"
    assert kind_of(text, "exit") is Name.Builtin and kind_of(text, "tracepoint") is Name.Namespace
    assert all(t not in Error for t, _ in tokens(text))


def test_names_and_entry_point() -> None:
    assert {"pytrace", "bpftrace"} <= set(PytraceLexer.aliases)
    assert {"*.pt", "*.bt"} <= set(PytraceLexer.filenames)
    # pyproject declares the Pygments plugin, and it names this class.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["pygments.lexers"]["pytrace"]
    module, _, attr = target.partition(":")
    assert getattr(importlib.import_module(module), attr) is PytraceLexer
    assert "pytrace.repl" in project["tool"]["setuptools"]["packages"]
    assert Token.Error not in {t for t, _ in tokens("BEGIN { }")}


def test_prompt_toolkit_highlights_each_line_of_a_block() -> None:
    # As the REPL uses it: prompt-toolkit lexes the whole buffer (sync from
    # the start), so the third line of a block is still inside the block.
    from prompt_toolkit.document import Document
    from prompt_toolkit.lexers import PygmentsLexer
    doc = Document('BEGIN {\n  $x = 1;\n  printf("%d\\n", $x);\n}\ntracepoint:sched:sched_switch { }')
    line = PygmentsLexer(PytraceLexer).lex_document(doc)
    assert ("class:pygments.name.builtin", "printf") in line(2)
    assert ("class:pygments.name.namespace", "tracepoint") in line(4)
    assert "".join(text for _, text in line(2)) == doc.lines[2]
