"""The REPL end to end: the real ``pytrace repl`` in tmux (send-keys,
capture-pane) as root against the live kernel.  A test types a one-liner,
runs a workload it controls, presses Ctrl-C and reads the printed map from
the screen; several probe sets run at once and are listed and stopped by
id; a map is printed while its set runs; nothing stays loaded afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .difflib_pt import open_n

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]


class Tmux:
    """One REPL in a detached tmux session of its own (its own socket)."""

    def __init__(self, tmp: Path) -> None:
        if not shutil.which("tmux"):
            pytest.fail("tmux is needed (scripts/test installs it)")
        self.socket = str(tmp / "tmux.sock")
        self.name = "pt"
        env = f"env HOME={tmp} PYTHONPATH={ROOT}"
        self._tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "50",
                   f"{env} {sys.executable} -m pytrace repl; sleep 30")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, capture_output=True, text=True,
                              timeout=20).stdout

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def type_line(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        self.send("Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-t", self.name, "-p", "-S", "-1000")

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 20.0) -> str:
        test = (lambda s: what in s) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if test(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"not on the screen after {timeout} s: {what!r}\n--- screen ---\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=20)


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
    try:
        t.wait_for("pytrace>")
        yield t
    finally:
        try:
            t.send("C-c")
            t.send("C-d")
            time.sleep(0.5)
        finally:
            t.kill()


def _our_programs() -> list[str]:
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True, timeout=20).stdout
    return [line for line in out.splitlines() if " name pt" in line]


def test_one_liner_ctrl_c_prints_the_map(repl: Tmux, tmp_path: Path) -> None:
    target = f"/tmp/ptrepl{os.getpid()}a"  # under max_strlen (64) for str()
    repl.type_line(f'tracepoint:syscalls:sys_enter_openat /str(args.filename) == "{target}"/ '
                   '{ @opens = count(); }')
    repl.wait_for("Attaching 1 probe...")
    repl.wait_for("1 probe set running")
    open_n(target, 7)
    time.sleep(0.3)
    repl.send("C-c")
    screen = repl.wait_for("@opens: 7")
    assert "Traceback" not in screen
    repl.wait_for("no probes running")
    assert not _our_programs()


def test_multi_line_probe_and_jobs(repl: Tmux, tmp_path: Path) -> None:
    """A probe typed over three lines; two sets at once, listed and stopped
    one by one; a map printed while its set runs."""
    target = f"/tmp/ptrepl{os.getpid()}b"
    repl.type_line(f'tracepoint:syscalls:sys_enter_openat /str(args.filename) == "{target}"/ {{')
    repl.wait_for("...>")
    repl.type_line("@a = count();")
    repl.type_line("}")
    repl.wait_for("1 probe set running [1]")
    repl.type_line("interval:ms:50 { @ticks = count(); }")
    repl.wait_for("2 probe sets running [1, 2]")
    open_n(target, 3)
    time.sleep(0.3)
    repl.type_line(".print @a")
    repl.wait_for("@a: 3")
    repl.type_line(".jobs")
    screen = repl.wait_for("[2] 1 probe")
    assert "[1] 1 probe, 3 hits: tracepoint:syscalls:sys_enter_openat" in screen
    repl.type_line(".stop 2")
    screen = repl.wait_for("@ticks: ")
    repl.wait_for("1 probe set running [1]")
    open_n(target, 2)
    time.sleep(0.3)
    repl.type_line(".stop")
    repl.wait_for(lambda s: "@a: 5" in s and "no probes running" in s)
    assert not _our_programs()


def test_errors_stay_in_the_repl(repl: Tmux) -> None:
    repl.type_line("tracepoint:syscalls:sys_enter_opennat { @ = count(); }")
    screen = repl.wait_for("did you mean 'sys_enter_openat'?")
    assert "error: tracepoint not found: syscalls:sys_enter_opennat" in screen
    if not os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
        repl.type_line("kprobe:vfs_read { @ = count(); }")
        repl.wait_for("this kernel has no kprobes")
    repl.type_line(".help jobs")
    repl.wait_for("the running probe sets: id, probes, probe hits, lost events")
    assert "Traceback" not in repl.screen()


def test_ctrl_d_leaves_and_unloads(tmp_path: Path) -> None:
    t = Tmux(tmp_path)
    try:
        t.wait_for("pytrace>")
        t.type_line("interval:ms:100 { @n = count(); }")
        t.wait_for("1 probe set running")
        assert _our_programs()
        t.send("C-d")
        t.wait_for("@n: ")
        deadline = time.monotonic() + 10
        while _our_programs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _our_programs()
    finally:
        t.kill()


def test_tab_completes_probes_of_the_live_kernel(repl: Tmux) -> None:
    """Tab after a partial tracepoint name completes it from tracefs (the
    probe lists load in the background while the prompt is already up);
    the line is then highlighted (tmux capture with escapes shows colour)."""
    time.sleep(0.5)
    repl._tmux("send-keys", "-t", repl.name, "-l", "tracepoint:sched:sched_proc")
    repl.send("Tab")
    screen = repl.wait_for(lambda s: "sched_process_exec" in s or "tracepoint:sched:sched_process_" in s)
    assert "Traceback" not in screen
    repl.send("C-u")
    repl._tmux("send-keys", "-t", repl.name, "-l", "BEGIN { @x = count(); }")
    time.sleep(0.3)
    colours = repl._tmux("capture-pane", "-t", repl.name, "-p", "-e")
    line = next(ln for ln in colours.splitlines() if "count" in ln)
    # Several colours on the input line: the lexer told keywords, maps and
    # functions apart.
    assert line.count("\x1b[") >= 3, repr(line)


def test_macros_typed_before_a_probe_set(repl: Tmux) -> None:
    """A line that only defines a macro is kept; the next probe sets use it
    (and the stdlib's names after an import line)."""
    repl.type_line("macro twice(x) { x * 2 }")
    repl.wait_for("defined for the next probe sets: macro twice")
    repl.type_line('import "errno"; ')  # (a trailing ';' would end tmux's command)
    repl.wait_for('defined for the next probe sets: import "errno"')
    repl.type_line('BEGIN { printf("twice=%d %s\\n", twice(21), errno_name(2)); exit(); }')
    repl.wait_for("twice=42 ENOENT")
    repl.wait_for("no probes running")
