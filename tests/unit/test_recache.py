"""The parser's regex cache: patterns rebuilt from it match exactly as
freshly compiled ones, parses are the same with and without it, and a bad or
foreign cache file is ignored."""

from __future__ import annotations

import marshal
import os
import re
import subprocess
import sys
from pathlib import Path

from pytrace.frontend.recache import RegexCache

PATTERNS = [
    (r"(?P<num>0x[0-9a-fA-F]+|[0-9]+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>==|!=|<=|>=|[-+*/<>])", 0),
    (r"(?:\"(?:[^\"\\]|\\.)*\")|(?://[^\n]*)", re.M),
    (r"[a-z]+:[^\s{/]+", re.I),
    (r"\s+", 0),
]
SAMPLES = ["0x1f + foo_bar <= 42", '"a\\"b" // c', "Tracepoint:Syscalls:sys_enter_openat {", "  \t\n x", "", "€"]


def _fresh(pattern: str, flags: int) -> re.Pattern[str]:
    re.purge()
    return re.compile(pattern, flags)


def test_rebuilt_patterns_match_like_compiled_ones(tmp_path: Path) -> None:
    path = str(tmp_path / "regex.marshal")
    first = RegexCache(path)
    re.purge()
    before = first.warm()
    for pattern, flags in PATTERNS:
        re.compile(pattern, flags)
    first.learn(before)
    assert set(first.entries) >= {(p, int(f)) for p, f in PATTERNS}
    first.save()

    second = RegexCache(path)
    assert set(second.entries) == set(first.entries)
    re.purge()
    second.warm()
    for pattern, flags in PATTERNS:
        cached = re.compile(pattern, flags)                 # served from re's cache, built by warm()
        assert cached is re.compile(pattern, flags)
        fresh = _fresh(pattern, flags)
        assert cached is not fresh and cached.groupindex == fresh.groupindex and cached.flags == fresh.flags
        for text in SAMPLES:
            assert [m.span() for m in cached.finditer(text)] == [m.span() for m in fresh.finditer(text)]
            assert [m.groupdict() for m in cached.finditer(text)] == [m.groupdict() for m in fresh.finditer(text)]
            assert [m.lastgroup for m in cached.finditer(text)] == [m.lastgroup for m in fresh.finditer(text)]
        re.purge()
        second.warm()
    re.purge()


def test_bad_or_foreign_files_are_ignored(tmp_path: Path) -> None:
    bad = tmp_path / "bad.marshal"
    bad.write_bytes(b"\x00not marshal")
    assert RegexCache(str(bad)).entries == {}
    foreign = tmp_path / "foreign.marshal"
    foreign.write_bytes(marshal.dumps({"format": 1, "python": "2.7 sre 0",
                                       "entries": {("a", 0): (32, [1, 2, 3], 0, {}, (None,))}}))
    assert RegexCache(str(foreign)).entries == {}


PARSE = ("import sys\nfrom pytrace.frontend import ast\nfrom pytrace.frontend.parser import parse\n"
         "from pytrace.source import SourceFile\nfrom pytrace.diagnostics import Diagnostics\n"
         "d = Diagnostics()\n"
         "p = parse(SourceFile('s', sys.argv[1]), d)\n"
         "print(ast.dump(p)); print(d.render())\n")
SCRIPT = ('tracepoint:syscalls:sys_enter_openat /pid == 1 && comm != "x"/ { @[str(args->filename), 0x10] = '
          'count(); printf("%d %s\\n", -3 * 2, "a\\"b"); } // c\nEND { clear(@); $x = 1 <= 2 ? 3 : 4; }\n')
BAD = "BEGIN { @bad = ; }"


def test_parses_are_the_same_with_a_warm_cache(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("PYTRACE_NO_CACHE", None)
    for script in (SCRIPT, BAD):
        runs = [subprocess.run([sys.executable, "-c", PARSE, script], env=env, capture_output=True, text=True,
                               check=True).stdout for _ in range(2)]
        assert (tmp_path / "pytrace" / f"regex-{sys.implementation.cache_tag}.marshal").exists()
        plain = subprocess.run([sys.executable, "-c", PARSE, script], env={**env, "PYTRACE_NO_CACHE": "1"},
                               capture_output=True, text=True, check=True).stdout
        assert runs[0] == runs[1] == plain
        assert ("Call" in plain) if script is SCRIPT else ("error: syntax error: unexpected ';'" in plain)
