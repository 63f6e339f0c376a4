"""No input, however broken, makes the front end raise, hang or crash.

Property tests feed random token soup, mutated real scripts and raw bytes
through the whole front end (parse, probes, types) and through the CLI; each
must end in diagnostics or success, never in an exception.
"""

from __future__ import annotations

import glob
import io
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytrace import cli
from tests.conftest import compile_text

TOOLS = sorted(glob.glob("/usr/sbin/*.bt"))
ROOT = Path(__file__).resolve().parents[2]
CORPUS = [Path(p).read_text() for p in TOOLS] + [p.read_text() for p in sorted((ROOT / "examples").glob("*.pt"))]
CORPUS = CORPUS or ["BEGIN { printf(\"%d\\n\", 1); exit(); }"]

TOKENS = ["BEGIN", "END", "tracepoint:syscalls:sys_enter_openat", "kprobe:f", "uprobe:/bin/sh:main",
          "profile:hz:99", "{", "}", "<", ">", "(", ")", "[", "]", "/", "*", "+", "-", "=", "==", ";", ",",
          ":", "?", ".", "->", "@", "@x", "@m[", "$x", "$1", "$#", "1", "0x10", '"s"', '"%d\\n"', "count()",
          "hist(", "printf(", "str(", "args", "args.filename", "comm", "pid", "retval", "if", "else",
          "while", "for", "unroll", "let", "config", "import", "macro", "struct", "#include <x.h>", "\n", " ",
          "++", "--", "&&", "||", "!", "~", "sizeof", "offsetof", "(uint8)", "(struct task_struct *)",
          "exit()", "'", "\\", "/*", "*/", "//", "..", "true", "1e9", "5ms"]

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _no_crash(text: str) -> None:
    comp, diags = compile_text(text, _KERNEL[0])
    for d in diags:
        assert d.message and "Traceback" not in d.message
    diags.render()


_KERNEL: list = []


@pytest.fixture(autouse=True)
def _kernel(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _KERNEL[:] = [fake_kernel]


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_token_soup(tokens: list[str]) -> None:
    _no_crash(" ".join(tokens))


@SETTINGS
@given(st.sampled_from(range(len(CORPUS))), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 8),
                                                                 st.text(max_size=4)), max_size=6))
def test_mutated_scripts(index: int, edits: list[tuple[int, int, str]]) -> None:
    text = CORPUS[index]
    for pos, cut, insert in edits:
        pos %= max(1, len(text))
        text = text[:pos] + insert + text[pos + cut:]
    _no_crash(text)


@SETTINGS
@given(st.binary(max_size=300))
def test_binary_input(data: bytes) -> None:
    _no_crash(data.decode("latin-1"))


@SETTINGS
@given(st.text(max_size=200))
def test_unicode_text(text: str) -> None:
    _no_crash(text)


PATHOLOGICAL = [
    "(" * 200_000,
    "BEGIN { $x = " + "(" * 50_000 + "1" + ")" * 50_000 + "; }",
    "BEGIN { $x = " + " + ".join(["1"] * 20_000) + "; }",
    "BEGIN { $x = " + "-" * 5000 + "1; }",
    "BEGIN { @" + "[1" * 3000 + "] = 1; }",
    "BEGIN {" + "if (1) {" * 3000 + "}" * 3000 + "}",
    '"' + "a" * 100_000,
    "/*" + "x" * 100_000,
    "BEGIN { printf(\"" + "%d" * 5000 + "\"); }",
    "\x00\x01\x02BEGIN",
    "",
    "   \n\n  ",
]


@pytest.mark.parametrize("text", PATHOLOGICAL, ids=[f"case{i}" for i in range(len(PATHOLOGICAL))])
def test_pathological_inputs_end_quickly(text: str, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    comp, diags = compile_text(text, fake_kernel)
    assert diags.has_errors() or comp.probes
    assert time.monotonic() - start < 20


def test_ten_megabytes_of_parentheses_via_cli(tmp_path: Path) -> None:
    f = tmp_path / "big.pt"
    f.write_text("(" * (10 * 1024 * 1024))
    err = io.StringIO()
    start = time.monotonic()
    rc = cli.main(["--dry-run", "--fake-kernel", str(Path(__file__).parents[1] / "data" / "tracefs"), str(f)],
                  stdout=io.StringIO(), stderr=err)
    assert rc == 1
    assert "script is too large" in err.getvalue()
    assert time.monotonic() - start < 5


def test_binary_file_via_cli(tmp_path: Path) -> None:
    f = tmp_path / "bin.pt"
    f.write_bytes(bytes(range(256)) * 4)
    err = io.StringIO()
    rc = cli.main(["--dry-run", "--fake-kernel", str(Path(__file__).parents[1] / "data" / "tracefs"), str(f)],
                  stdout=io.StringIO(), stderr=err)
    assert rc == 1
    assert err.getvalue().startswith(f"{f}:2:118: error: the script is not UTF-8 text (byte 0x80)")
