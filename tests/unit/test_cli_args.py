"""Command-line parsing and its error paths: every mistake is one clear
sentence on stderr and a non-zero exit, never a Python traceback.

These run without touching the kernel: the errors are found before anything
is compiled or loaded, or the kernel checks are replaced by fakes.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

import pytest

from pytrace import cli

FAKE = str(Path(__file__).parents[1] / "data" / "tracefs")


def run(*argv: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None

        class _Stdin:
            buffer = io.BytesIO(stdin.encode())
        monkeypatch.setattr("sys.stdin", _Stdin)
    rc = cli.main(list(argv), stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def one_sentence(err: str) -> str:
    """The single 'pytrace: ...' line of ``err`` (asserting there is exactly one)."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pytrace: ")
    return lines[0]


# ---------------------------------------------------------------- parsing

def test_arguments_are_parsed() -> None:
    opts = cli.build_arg_parser().parse_args(["-p", "12", "-q", "-v", "-f", "json", "-o", "x", "--unsafe",
                                              "-B", "none", "script.pt", "a", "b"])
    assert (opts.pid, opts.quiet, opts.verbose, opts.format, opts.output, opts.unsafe, opts.buffering) == \
        (12, True, True, "json", "x", True, "none")
    assert opts.args == ["script.pt", "a", "b"]


def test_combined_list_and_verbose_flags() -> None:
    opts = cli.build_arg_parser().parse_args(["-lv", "tracepoint:sched:*"])
    assert opts.list and opts.verbose and opts.args == ["tracepoint:sched:*"]


def test_e_with_positional_parameters_and_double_dash() -> None:
    opts = cli.build_arg_parser().parse_args(["-e", "BEGIN {}", "--", "-5", "x"])
    assert opts.program == "BEGIN {}" and opts.args == ["-5", "x"]


def test_c_and_info_flags() -> None:
    opts = cli.build_arg_parser().parse_args(["-c", "ls -l /", "--info", "--dry-run"])
    assert opts.command == "ls -l /" and opts.info and opts.dry_run


def test_version_and_help() -> None:
    rc, out, _ = run("-V")
    assert rc == 0 and out.startswith("pytrace v")
    rc, out, _ = run("--help")
    assert rc == 0 and "-l" in out and "--info" in out and "-c CMD" in out


def test_positional_parameters_reach_the_program() -> None:
    rc, out, err = run("--fake-kernel", FAKE, "--emit", "types", "-e", 'BEGIN { printf("%s %d\\n", str($1), $2); }',
                       "hello", "42")
    assert rc == 0, err


# ---------------------------------------------------------------- usage errors

@pytest.mark.parametrize("argv,message", [
    (["-p", "abc", "-e", "BEGIN {}"], "pytrace: invalid PID 'abc' for -p: a positive process id is needed"),
    (["-p", "0", "-e", "BEGIN {}"], "pytrace: invalid PID '0' for -p: a positive process id is needed"),
    (["-p", "-3", "-e", "BEGIN {}"], "pytrace: invalid PID '-3' for -p: a positive process id is needed"),
    (["-f", "xml", "-e", "BEGIN {}"], "pytrace: invalid output format 'xml' for -f: choose text or json"),
    (["-B", "some", "-e", "BEGIN {}"], "pytrace: invalid buffering mode 'some' for -B: choose line, full or none"),
    (["--bogus", "-e", "BEGIN {}"], "pytrace: unrecognized arguments: --bogus"),
    (["-e"], "pytrace: option -e needs a value"),
    (["-p"], "pytrace: option -p needs a value"),
])
def test_usage_errors(argv: list[str], message: str) -> None:
    rc, out, err = run(*argv)
    assert rc == 1 and out == ""
    assert one_sentence(err) == message + " (see pytrace --help)"


def test_no_program() -> None:
    rc, _, err = run()
    assert rc == 1
    assert err.splitlines()[0] == "pytrace: no program given: pass a FILE or -e 'program'"
    assert "Traceback" not in err


def test_unknown_emit_stage() -> None:
    rc, _, err = run("--emit", "bogus", "-e", "BEGIN {}")
    assert rc == 1 and one_sentence(err).startswith("pytrace: unknown stage 'bogus' for --emit")


def test_list_takes_one_pattern() -> None:
    rc, _, err = run("-l", "a:*", "b:*")
    assert rc == 1 and one_sentence(err) == "pytrace: -l takes at most one pattern (see pytrace --help)"


# ---------------------------------------------------------------- script files

def test_missing_file() -> None:
    rc, _, err = run("/no/such/script.pt")
    assert rc == 1
    assert err.splitlines() == ["pytrace: cannot read /no/such/script.pt: No such file or directory",
                                "hint: check the file name"]


def test_directory_as_file(tmp_path: Path) -> None:
    rc, _, err = run(str(tmp_path))
    assert rc == 1 and one_sentence(err) == f"pytrace: cannot read {tmp_path}: it is a directory, not a script"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "secret.pt"
    f.write_text("BEGIN {}")
    real_open = builtins.open

    def deny(path, *a, **kw):  # type: ignore[no-untyped-def]
        if str(path) == str(f):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", deny)
    rc, _, err = run(str(f))
    assert rc == 1
    assert err.splitlines()[0] == f"pytrace: cannot read {f}: Permission denied"
    assert "Traceback" not in err


def test_binary_file(tmp_path: Path) -> None:
    f = tmp_path / "bin.pt"
    f.write_bytes(b"BEGIN {}\n\xff\xfe")
    rc, _, err = run("--dry-run", "--fake-kernel", FAKE, str(f))
    assert rc == 1 and "not UTF-8" in err and "Traceback" not in err


def test_program_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = run("--dry-run", "--fake-kernel", FAKE, "-", stdin="BEGIN { exit(); }", monkeypatch=monkeypatch)
    assert rc == 0, err
    assert out == "stdin: OK (1 attach point, 0 maps)\n"


@pytest.mark.parametrize("suffix", [".pt", ".bt"])
def test_script_suffixes(tmp_path: Path, suffix: str) -> None:
    f = tmp_path / f"s{suffix}"
    f.write_text("#!/usr/bin/env pytrace\nBEGIN { exit(); }\n")
    rc, out, err = run("--dry-run", "--fake-kernel", FAKE, str(f))
    assert rc == 0, err
    assert out == f"{f}: OK (1 attach point, 0 maps)\n"


# ---------------------------------------------------------------- run options

@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up checks pass without touching the kernel; compiling stops
    the run (these tests are about what happens before)."""
    from pytrace.kernel import features
    monkeypatch.setattr(features, "preflight", lambda **kw: None)


def _free_pid() -> int:
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    return pid


def test_p_of_a_missing_process(no_kernel: None) -> None:
    pid = _free_pid()
    rc, _, err = run("-p", str(pid), "-e", "BEGIN {}")
    assert rc == 1 and one_sentence(err) == f"pytrace: no process with PID {pid} to trace (-p)"


@pytest.mark.parametrize("command,message", [
    ("no-such-command-xyz --x", "pytrace: cannot run 'no-such-command-xyz' (-c): command not found in PATH"),
    ("/no/such/program", "pytrace: cannot run '/no/such/program' (-c): no such executable file"),
    ("", "pytrace: the command of -c is empty"),
    ("echo 'unterminated", "pytrace: cannot parse the command of -c: No closing quotation"),
])
def test_c_problems(no_kernel: None, command: str, message: str) -> None:
    rc, _, err = run("-c", command, "-e", "BEGIN {}")
    assert rc == 1 and one_sentence(err) == message


def test_p_and_c_together(no_kernel: None) -> None:
    rc, _, err = run("-p", str(os.getpid()), "-c", "true", "-e", "BEGIN {}")
    assert rc == 1 and "cannot be used together" in one_sentence(err)


def test_o_into_a_missing_directory(no_kernel: None) -> None:
    rc, _, err = run("-o", "/no/such/dir/out.txt", "-e", "BEGIN {}")
    assert rc == 1
    assert one_sentence(err) == "pytrace: cannot write the output to /no/such/dir/out.txt (-o): no directory /no/such/dir"


def test_o_is_a_directory(no_kernel: None, tmp_path: Path) -> None:
    rc, _, err = run("-o", str(tmp_path), "-e", "BEGIN {}")
    assert rc == 1 and one_sentence(err) == f"pytrace: cannot write the output to {tmp_path} (-o): it is a directory"


def test_fake_kernel_cannot_trace(no_kernel: None) -> None:
    rc, _, err = run("--fake-kernel", FAKE, "-e", "BEGIN {}")
    assert rc == 1 and one_sentence(err) == "pytrace: --fake-kernel cannot trace; add --dry-run or --emit"


# ---------------------------------------------------------------- start-up checks

def test_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    rc, out, err = run("-e", "BEGIN { exit(); }")
    assert rc == 1 and out == ""
    assert one_sentence(err) == "pytrace: tracing needs root privileges to load BPF programs: run pytrace with sudo"


@pytest.mark.parametrize("err_no,text", [
    (errno.ENOSYS, "this kernel has no bpf() system call (it was built without CONFIG_BPF_SYSCALL)"),
    (errno.EPERM, "the kernel refuses bpf() to this process even as root"),
])
def test_no_bpf(monkeypatch: pytest.MonkeyPatch, err_no: int, text: str) -> None:
    from pytrace.kernel import features
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(features, "_try_bpf", lambda: err_no)
    rc, _, err = run("-e", "BEGIN { exit(); }")
    assert rc == 1 and one_sentence(err).startswith(f"pytrace: {text}")


def test_no_ring_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytrace.kernel import features
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(features, "_try_bpf", lambda: 0)
    monkeypatch.setattr(features, "try_map", lambda *a, **kw: (False, "EINVAL"))
    rc, _, err = run("-e", "BEGIN { exit(); }")
    assert rc == 1 and one_sentence(err) == ("pytrace: this kernel has no BPF ring buffer (EINVAL), which pytrace's "
                                             "output needs (Linux 5.8 or newer)")


def test_tracefs_not_mountable(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytrace.kernel import features, tracefs

    def unavailable(*a, **kw):  # type: ignore[no-untyped-def]
        raise tracefs.TracefsUnavailable("cannot mount tracefs on /sys/kernel/tracing: No such device",
                                         "the kernel needs CONFIG_TRACING")

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(features, "_try_bpf", lambda: 0)
    monkeypatch.setattr(features, "try_map", lambda *a, **kw: (True, ""))
    monkeypatch.setattr(tracefs, "tracefs_root", unavailable)
    rc, _, err = run("-e", "tracepoint:sched:sched_switch { exit(); }")
    assert rc == 1
    assert one_sentence(err) == ("pytrace: cannot mount tracefs on /sys/kernel/tracing: No such device, so "
                                 "tracepoints cannot be used (the kernel needs CONFIG_TRACING)")
    with pytest.raises(Exception) as info:
        features.preflight(tracefs=True)
    assert str(info.value) == ("cannot mount tracefs on /sys/kernel/tracing: No such device, so tracepoints "
                               "cannot be used (the kernel needs CONFIG_TRACING)")


# ---------------------------------------------------------------- unexpected failures

def test_internal_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytrace.semantic import pipeline

    def boom(*a, **kw):  # type: ignore[no-untyped-def]
        raise ValueError("simulated bug")

    monkeypatch.setattr(pipeline, "run", boom)
    monkeypatch.delenv("PYTRACE_DEBUG", raising=False)
    rc, _, err = run("--dry-run", "--fake-kernel", FAKE, "-e", "BEGIN {}")
    assert rc == 1
    assert one_sentence(err) == ("pytrace: internal error: ValueError: simulated bug (set PYTRACE_DEBUG=1 for the "
                                 "traceback and please report it)")


def test_internal_error_traceback_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytrace.semantic import pipeline

    def boom(*a, **kw):  # type: ignore[no-untyped-def]
        raise ValueError("simulated bug")

    monkeypatch.setattr(pipeline, "run", boom)
    monkeypatch.setenv("PYTRACE_DEBUG", "1")
    rc, _, err = run("--dry-run", "--fake-kernel", FAKE, "-e", "BEGIN {}")
    assert rc == 1 and "Traceback" in err and err.rstrip().endswith("please report it)")


def test_ctrl_c_while_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytrace.semantic import pipeline

    def interrupted(*a, **kw):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run", interrupted)
    rc, out, err = run("--dry-run", "--fake-kernel", FAKE, "-e", "BEGIN {}")
    assert rc == 130 and out == "" and err == ""


def test_os_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytrace.bpf.syscalls import BpfError
    from pytrace.semantic import pipeline

    def fails(*a, **kw):  # type: ignore[no-untyped-def]
        raise BpfError(errno.E2BIG, "BPF_MAP_CREATE", "cannot create hash map 'x'")

    monkeypatch.setattr(pipeline, "run", fails)
    rc, _, err = run("--dry-run", "--fake-kernel", FAKE, "-e", "BEGIN {}")
    assert rc == 1
    assert one_sentence(err) == ("pytrace: cannot create hash map 'x' (BPF_MAP_CREATE: E2BIG, Argument list too "
                                 "long)")


def test_kprobe_alternative_suggestions(tmp_path: Path) -> None:
    from pytrace.providers.kprobe import kprobe_alternative
    root = tmp_path
    for cat, ev in (("tcp", "tcp_retransmit_skb"), ("syscalls", "sys_enter_openat"), ("syscalls", "sys_exit_read")):
        (root / "events" / cat / ev).mkdir(parents=True)
    assert kprobe_alternative("tcp_retransmit_skb", lambda: str(root)) == "tracepoint:tcp:tcp_retransmit_skb instead"
    assert kprobe_alternative("do_sys_openat2", lambda: str(root)) == "tracepoint:syscalls:sys_enter_openat instead"
    assert kprobe_alternative("ksys_read", lambda: str(root), exit=True) == "tracepoint:syscalls:sys_exit_read instead"
    assert kprobe_alternative("vfs_read", lambda: str(root)) == \
        "a tracepoint instead (list them with: pytrace -l 'tracepoint:*')"
