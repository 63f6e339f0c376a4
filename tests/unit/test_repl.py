"""The REPL driven through prompt-toolkit's pipe input and a dummy output:
multi-line detection, commands, and errors shown without leaving the REPL.
Probe sets that load into the kernel are in tests/kernel/test_repl_run.py."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from pytrace.repl.app import Repl, toolbar_text
from pytrace.repl.commands import COMMANDS
from pytrace.repl.incomplete import is_complete
from pytrace.repl.jobs import Jobs
from pytrace.repl.state import ReplState


@pytest.mark.parametrize("text,complete", [
    ("BEGIN {", False),
    ("BEGIN { @x = 1 +", False),
    ("tracepoint:syscalls:sys_enter_openat", False),
    ("kprobe:f /pid == 1", False),
    ("BEGIN { $t = (1, 2", False),
    ("BEGIN { @m[1", False),
    ("interval:s:1 {\n  print(@x);\n", False),
    ("BEGIN { exit(); }", True),
    ('BEGIN { printf("{"); }', True),           # a brace in a string is no brace
    ("BEGIN { // {\n exit(); }", True),         # nor one in a comment
    ("BEGIN { @[comm] = count(); } }", True),   # an error: reported at once
    ("BEGIN { @x = 1 + ; }", True),
    (".help", True),
    (".load /some/file {", True),
    ("", True),
    ("   \n  ", True),
])
def test_multi_line_detection_asks_the_parser(text: str, complete: bool) -> None:
    assert is_complete(text) is complete


def run_repl(keys: str, tmp_path: Path, **kw: object) -> tuple[str, str, Repl]:
    """Type ``keys`` into a REPL (\\r is Enter) and return what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()  # the end of the input reads as Ctrl-D
        repl = Repl(input=pipe, output=DummyOutput(), history=str(tmp_path / "history"), out=out, err=err,
                    **kw)  # type: ignore[arg-type]
        assert repl.run() == 0
    return out.getvalue(), err.getvalue(), repl


def test_help_lists_every_command(tmp_path: Path) -> None:
    out, err, _ = run_repl(".help\r.help stop\r", tmp_path)
    for c in COMMANDS:
        assert c.usage in out
    assert ".stop [ID]\n    stop a probe set (all of them without ID) and print its maps\n" in out
    assert err == ""


def test_errors_are_shown_and_the_repl_goes_on(tmp_path: Path) -> None:
    """A syntax error, a typo'd function and an unknown command: each shown
    (caret diagnostics, as the command line shows them), then the next
    line is read."""
    out, err, _ = run_repl('BEGIN { @x = cuont(); }\r.hepl\rBEGIN { printf("a" }\r.help quit\r', tmp_path)
    assert "stdin:1:14: error: unknown function 'cuont'\nBEGIN { @x = cuont(); }\n" \
           "             ^~~~~\nhint: did you mean 'count'?" in err
    assert "unknown command '.hepl': did you mean 'help'?" in err
    assert "stdin:1:20: error:" in err
    assert ".quit\n    stop every probe set and leave (Ctrl-D too)" in out
    assert "Traceback" not in err


def test_multi_line_input_is_one_script(tmp_path: Path) -> None:
    """Enter inside an open block starts a new line; the block is checked
    as one script when it closes (an error on its second line is reported
    at line 2)."""
    _, err, _ = run_repl("BEGIN {\r@x = cuont();\r}\r", tmp_path)
    assert "stdin:2:6: error: unknown function 'cuont'" in err


def test_set_json_and_save(tmp_path: Path) -> None:
    target = tmp_path / "session.pt"
    out, err, repl = run_repl(f".set json on\r.save {target}\r.set json off\r.set json maybe\r", tmp_path)
    assert "json output on" in out and "json output off" in out
    assert "nothing to save: no line has been accepted yet" in err
    assert "usage: .set json on|off" in err
    assert repl.state.json is False
    repl.state.accepted[:] = ["BEGIN { @x = 1; }", "interval:s:1 {\n  print(@x);\n}"]
    assert repl.commands is not None
    repl.commands(f".save {target}")
    assert target.read_text() == "#!/usr/bin/env pytrace\nBEGIN { @x = 1; }\ninterval:s:1 {\n  print(@x);\n}\n"


def test_commands_without_probe_sets(tmp_path: Path) -> None:
    out, err, _ = run_repl(".jobs\r.maps\r.stop\r.stop x\r.print @x\r.print x\r.clear\r.load /no/such/file.pt\r"
                           ".info\r.quit\r.help\r", tmp_path)
    assert "no probe sets are running" in out
    assert "no maps: no probe set is running" in out
    assert "no probe set is running" in err
    assert "usage: .stop [ID]" in err
    assert "no running probe set has a map @x" in err
    assert "usage: .print @NAME" in err
    assert "cannot read /no/such/file.pt: No such file or directory" in err
    assert "usage: .info PROBE" in err
    # .quit ended the loop: the .help after it was never read.
    assert ".help [COMMAND]" not in out


def test_history_is_kept_in_a_file(tmp_path: Path) -> None:
    run_repl(".help quit\r.jobs\r", tmp_path)
    text = (tmp_path / "history").read_text()
    assert "+.help quit" in text and "+.jobs" in text


def test_ctrl_d_leaves(tmp_path: Path) -> None:
    out, err, _ = run_repl(".help quit\r\x04.help\r", tmp_path)
    assert out.count(".quit") == 1


def test_toolbar_without_probe_sets() -> None:
    jobs = Jobs(ReplState(), io.StringIO(), io.StringIO())
    assert toolbar_text(jobs) == " no probes running - type a probe, or .help"


@pytest.fixture
def no_home_history(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "no" / "such" / "dir" / "history"


def test_an_unwritable_history_file_is_no_problem(tmp_path: Path, no_home_history: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(".help quit\r")
        pipe.close()
        repl = Repl(input=pipe, output=DummyOutput(), history=str(no_home_history), out=out, err=err)
        assert repl.run() == 0
    assert ".quit" in out.getvalue()


def test_import_checks_the_snippet_exists(tmp_path: Path) -> None:
    snippet = tmp_path / "mine.pt"
    snippet.write_text("// nothing\n")
    out, err, repl = run_repl(f".import nosuchsnippet\r.import\r.import {snippet}\r", tmp_path)
    assert "no stdlib snippet named 'nosuchsnippet'" in err
    assert "usage: .import NAME" in err
    assert f'import "{snippet}"; is added before each next probe set' in out
    assert repl.state.imports == [str(snippet)]


def test_definitions_are_kept_for_the_next_probe_sets(tmp_path: Path) -> None:
    out, err, repl = run_repl('macro twice(x) { x * 2 }\rimport "errno";\r', tmp_path)
    assert "defined for the next probe sets: macro twice\n" in out
    assert 'defined for the next probe sets: import "errno"\n' in out
    assert repl.state.definitions == ["macro twice(x) { x * 2 }", 'import "errno";']
    assert repl.state.accepted == repl.state.definitions  # .save writes them too
