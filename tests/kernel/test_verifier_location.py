"""A program the kernel's verifier rejects is reported at the script line of
the statement (or predicate) the rejected instruction came from: one
diagnostic with the verifier's reason, the whole log under -v, and nothing
left loaded.

Every script here passes pytrace's own checks and is refused by the
verifier of this kernel: a helper only GPL-compatible programs may call
(bpf_probe_read_user_str, bpf_trace_printk) under another license, loops
that never end (the verifier sees a state repeat: is_state_visited), and a
loop bounded only by data (the verifier gives up after 8192 jump states:
"The sequence of 8193 jumps is too complex", push_stack).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .test_teardown import Run, assert_all_gone, run_pytrace

pytestmark = pytest.mark.kernel

GPL = "cannot call GPL-restricted function from non-GPL compatible program"
GPL_HINT = 'hint: this calls a kernel helper only GPL-compatible programs may use: config = { license = "GPL" }\n'
LOOP_HINT = "hint: the loop never ends: nothing in its body changes what its condition tests\n"
LOG_HINT = "hint: run with -v to see the verifier's log\n"


def _run(tmp_path: Path, script: str, *flags: str) -> tuple[Path, Run]:
    path = tmp_path / "script.bt"
    path.write_text(script)
    r = run_pytrace([*flags, str(path)], stop=None)
    assert r.rc == 1, r.stderr
    assert "Traceback" not in r.stderr and "Attaching" not in r.stdout
    # It got as far as creating maps and loading; all of it is gone again.
    assert r.seen.maps, "the watcher saw no BPF objects: it cannot check anything"
    assert_all_gone(r.seen, r.pid)
    return path, r


# BEGIN loads (and is unloaded again); the tracepoint's program is refused.
GPL_STATEMENT = """\
config = { license = "Proprietary" }

BEGIN { @start = nsecs; }

tracepoint:syscalls:sys_enter_openat
{
  @opens[comm] = count();
  printf("%s\\n", str(args->filename));
}
"""


def test_gpl_only_helper_is_reported_at_its_statement(tmp_path: Path) -> None:
    path, r = _run(tmp_path, GPL_STATEMENT)
    assert r.seen.progs, "BEGIN's program was never seen loaded"
    assert r.stderr == (f"{path}:8:3: error: the kernel's verifier rejected this statement: {GPL}\n"
                        '  printf("%s\\n", str(args->filename));\n'
                        "  ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
                        + GPL_HINT + LOG_HINT)


def test_v_prints_the_log_and_where_it_stopped(tmp_path: Path) -> None:
    path, r = _run(tmp_path, GPL_STATEMENT, "-v")
    log, _, diagnostic = r.stderr.partition("pytrace: the verifier stopped at instruction ")
    # The log: the instructions the verifier walked, the complaint, the statistics.
    assert re.search(r"^\d+: \(85\) call bpf_probe_read_user_str#114$", log, re.MULTILINE), log
    assert f"\n{GPL}\nprocessed " in log
    where = re.match(r"(\d+) of program (\S+)\n(.*)", diagnostic, re.DOTALL)
    assert where, r.stderr
    insn, program, rest = where.groups()
    assert program == "pt1_0_tracepoint_syscalls_sys_enter_openat"
    # The instruction named is the call the log ends with.
    assert re.search(rf"^{insn}: \(85\) call bpf_probe_read_user_str#114$", log, re.MULTILINE)
    # The same diagnostic, without the hint to use -v.
    assert rest == (f"{path}:8:3: error: the kernel's verifier rejected this statement: {GPL}\n"
                    '  printf("%s\\n", str(args->filename));\n'
                    "  ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n" + GPL_HINT)


def test_gpl_only_helper_in_the_predicate(tmp_path: Path) -> None:
    """A tab before the predicate: the caret keeps it."""
    path, r = _run(tmp_path, 'config = { license = "Proprietary" }\n'
                             "tracepoint:syscalls:sys_enter_openat\n"
                             '\t/str(args->filename) == "/etc/passwd"/\n'
                             "{ @opens[comm] = count(); }\n")
    assert r.stderr == (f"{path}:3:3: error: the kernel's verifier rejected this predicate: {GPL}\n"
                        '\t/str(args->filename) == "/etc/passwd"/\n'
                        "\t ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
                        + GPL_HINT + LOG_HINT)


def test_second_statement_of_a_line(tmp_path: Path) -> None:
    """The statement, not its line: two on one line, the second is at fault
    (debugf() is bpf_trace_printk, GPL-only)."""
    path, r = _run(tmp_path, 'config = { license = "Proprietary" }\n'
                             'BEGIN { @a = 1; debugf("a is %d", @a); exit(); }\n')
    assert r.stderr == (f"{path}:2:17: error: the kernel's verifier rejected this statement: {GPL}\n"
                        'BEGIN { @a = 1; debugf("a is %d", @a); exit(); }\n'
                        "                ^~~~~~~~~~~~~~~~~~~~~\n"
                        + GPL_HINT + LOG_HINT)


def test_loop_that_never_ends(tmp_path: Path) -> None:
    """The condition does not change, so LLVM reduces the loop to its body:
    the verifier finds the state at the body's first instruction repeating."""
    path, r = _run(tmp_path, "BEGIN\n{\n  $i = 0;\n  while ($i < 10) {\n    @x = 1;\n  }\n  exit();\n}\n")
    assert r.stderr == (f"{path}:5:5: error: the kernel's verifier rejected this statement: infinite loop detected\n"
                        "    @x = 1;\n"
                        "    ^~~~~~\n" + LOOP_HINT + LOG_HINT)


def test_empty_endless_loop_is_its_while(tmp_path: Path) -> None:
    """Nothing of the body is left (it only counted): the jump to itself is the while's."""
    path, r = _run(tmp_path, "BEGIN {\n  $n = 0;\n  while (1) { $n++; }\n}\n")
    assert r.stderr == (f"{path}:3:3: error: the kernel's verifier rejected this statement: infinite loop detected\n"
                        "  while (1) { $n++; }\n"
                        "  ^~~~~~~~~~~~~~~~~~~\n" + LOOP_HINT + LOG_HINT)


DATA_BOUND = """\
tracepoint:syscalls:sys_enter_write
{
  $i = 0;
  while ($i < args->count) {
    $i++;
    @x[$i] = 1;
  }
}
"""


def test_loop_bounded_by_data(tmp_path: Path) -> None:
    """Where the verifier gives up is wherever its walk was: some statement
    of the loop (the loop, its increment or its body), never the probe."""
    path, r = _run(tmp_path, DATA_BOUND)
    lines = r.stderr.splitlines()
    head = re.fullmatch(rf"{re.escape(str(path))}:(\d+):(\d+): error: the kernel's verifier rejected this "
                        r"statement: The sequence of \d+ jumps is too complex\.", lines[0])
    assert head, r.stderr
    line, col = int(head.group(1)), int(head.group(2))
    assert 4 <= line <= 6
    source = DATA_BOUND.splitlines()[line - 1]
    assert lines[1] == source and lines[2].startswith(" " * (col - 1) + "^")
    assert col == len(source) - len(source.lstrip()) + 1  # a statement starts the line
    assert lines[3:] == ["hint: the verifier checks every iteration of a loop: give loops a small constant bound",
                         LOG_HINT.strip()]
