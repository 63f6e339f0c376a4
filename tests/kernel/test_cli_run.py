"""The command line, for real: program sources (FILE, -e, -, shebang, .pt and
.bt), positional parameters, -p, -c/cpid, -o, -q, -v, -f json, --unsafe,
--dry-run, the start-up checks and exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kernel.test_teardown import REPO, assert_all_gone, run_pytrace

pytestmark = pytest.mark.kernel


def pytrace(*args: str, input: str | None = None, timeout: float = 60, cwd: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytrace", *args], capture_output=True, text=True, input=input,
                          timeout=timeout, cwd=cwd or str(REPO), env=dict(os.environ, **(env or {})))


HELLO = 'BEGIN { printf("hello %s %d\\n", str($1), $2); exit(); }'


def test_begin_exit_starts_and_ends_quickly() -> None:
    best = min(_timed(pytrace, "-e", "BEGIN { exit(); }") for _ in range(3))
    # Measured ~0.45 s here (Python start-up and imports dominate); bpftrace 0.17 takes ~0.6 s.
    assert best < 2.0


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    r = fn(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Attaching 1 probe...\n\n\n"
    return time.monotonic() - start


@pytest.mark.parametrize("suffix", [".pt", ".bt"])
def test_script_file_with_positional_parameters(tmp_path: Path, suffix: str) -> None:
    f = tmp_path / f"script{suffix}"
    f.write_text(HELLO)
    r = pytrace(str(f), "world", "42")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Attaching 1 probe...\nhello world 42\n\n\n"


def test_program_from_stdin() -> None:
    r = pytrace("-", "stdin", "7", input=HELLO)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Attaching 1 probe...\nhello stdin 7\n\n\n"


def test_program_from_e_with_parameters() -> None:
    r = pytrace("-e", HELLO, "e", "1")
    assert r.stdout == "Attaching 1 probe...\nhello e 1\n\n\n"


def test_shebang_script_runs_as_an_executable(tmp_path: Path) -> None:
    f = tmp_path / "hello"
    f.write_text("#!/usr/bin/env pytrace\n" + HELLO + "\n")
    f.chmod(0o755)
    bindir = os.path.dirname(sys.executable)
    r = subprocess.run([str(f), "shebang", "3"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}"))
    if r.returncode == 127 and "pytrace" in r.stderr:
        pytest.skip("the pytrace command is not installed on PATH")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Attaching 1 probe...\nhello shebang 3\n\n\n"


def test_quiet_drops_the_attaching_line() -> None:
    r = pytrace("-q", "-e", 'BEGIN { printf("x\\n"); exit(); }')
    assert r.stdout == "x\n\n\n"


def test_exit_codes() -> None:
    assert pytrace("-e", "BEGIN { exit(); }").returncode == 0
    assert pytrace("-e", "BEGIN { exit(3); }").returncode == 3
    assert pytrace("-e", "BEGIN { @x = ; }").returncode == 1  # a syntax error
    assert pytrace("-e", "kprobe:vfs_read { exit(); }").returncode == 1  # nothing to attach it to here


def test_ctrl_c_exits_zero_and_prints_the_maps() -> None:
    r = run_pytrace(["-e", "tracepoint:syscalls:sys_enter_openat { @opens = count(); }"],
                    workload=lambda: open("/etc/hostname").close())
    assert r.rc == 0, r.stderr
    assert re.search(r"^@opens: [1-9]\d*$", r.stdout, re.MULTILINE)


def test_begin_output_comes_before_events() -> None:
    """BEGIN runs before the other probes attach (as in bpftrace), so a
    header it prints is never preceded by an event."""
    r = run_pytrace(["-e", 'BEGIN { printf("HEADER\\n"); } tracepoint:raw_syscalls:sys_enter { printf("ev\\n"); }'],
                    after_ready=0.1)
    lines = r.stdout.split("\n")
    assert lines[:2] == ["Attaching 2 probes...", "HEADER"], lines[:5]
    assert lines[2] == "ev"


def test_c_runs_the_command_traces_it_and_stops_when_it_exits() -> None:
    r = pytrace("-c", "sleep 0.3", "-e",
                'BEGIN { printf("child %d\\n", cpid); } '
                "tracepoint:syscalls:sys_enter_clock_nanosleep /pid == cpid/ { @sleeps = count(); }")
    assert r.returncode == 0, r.stderr
    m = re.match(r"Attaching 2 probes...\nchild (\d+)\n", r.stdout)
    assert m, r.stdout
    assert "@sleeps: 1\n" in r.stdout


def test_c_child_is_stopped_when_tracing_ends_first() -> None:
    r = pytrace("-c", "sleep 30", "-e", 'BEGIN { printf("child %d\\n", cpid); } interval:ms:300 { exit(); }')
    assert r.returncode == 0, r.stderr
    child = int(re.search(r"child (\d+)", r.stdout).group(1))  # type: ignore[union-attr]
    assert not os.path.exists(f"/proc/{child}") or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_c_command_with_quoted_arguments(tmp_path: Path) -> None:
    target = tmp_path / "a file"
    r = pytrace("-c", f"touch '{target}'", "-e", "tracepoint:syscalls:sys_enter_openat /pid == cpid/ { }")
    assert r.returncode == 0, r.stderr
    assert target.exists()


def test_p_stops_when_the_process_exits() -> None:
    sleeper = subprocess.Popen(["sleep", "0.8"])
    try:
        start = time.monotonic()
        r = pytrace("-p", str(sleeper.pid), "-e",
                    "tracepoint:syscalls:sys_enter_clock_nanosleep { @ = count(); } interval:s:30 { exit(); }")
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - start < 10
    finally:
        sleeper.kill()
        sleeper.wait()


def test_p_attaches_uprobes_to_that_process_only() -> None:
    script = "uprobe:/bin/bash:find_variable { @[pid] = count(); }"
    bash = subprocess.Popen(["/bin/bash", "--norc", "-c", "read; for i in 1 2 3; do x=$i; done"],
                            stdin=subprocess.PIPE)
    other = None
    try:
        def workload() -> None:
            nonlocal other
            other = subprocess.run(["/bin/bash", "--norc", "-c", "for i in 1 2 3; do y=$i; done"])
            assert bash.stdin is not None
            bash.stdin.write(b"\n")
            bash.stdin.close()
            bash.wait()

        r = run_pytrace(["-p", str(bash.pid), "-e", script], workload=workload, stop=None, timeout=30)
    finally:
        bash.kill()
        bash.wait()
    assert r.rc == 0, r.stderr
    counts = dict(re.findall(r"^@\[(\d+)\]: (\d+)$", r.stdout, re.MULTILINE))
    assert list(counts) == [str(bash.pid)], r.stdout


def test_o_writes_the_output_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    r = pytrace("-o", str(out), "-e", 'BEGIN { printf("to file\\n"); @m = 5; exit(); }')
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert out.read_text() == "Attaching 1 probe...\nto file\n\n\n@m: 5\n"


def test_o_with_the_ready_marker_on_stdout(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    r = run_pytrace(["-o", str(out), "-e", "tracepoint:syscalls:sys_enter_openat { @ = count(); }"])
    assert r.ready_after is not None and r.rc == 0
    assert out.read_text().startswith("Attaching 1 probe...\n")


def test_f_json() -> None:
    r = pytrace("-f", "json", "-e", 'BEGIN { printf("j\\n"); @m[1] = 2; exit(); }')
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert records[0] == {"type": "attached_probes", "data": {"probes": 1}}
    assert {"type": "printf", "data": "j\n"} in records
    assert records[-1] == {"type": "map", "data": {"@m": {"1": 2}}}


def test_unsafe_is_needed_for_system() -> None:
    script = 'BEGIN { system("echo from-system"); exit(); }'
    r = pytrace("-e", script)
    assert r.returncode == 1 and "--unsafe" in r.stderr
    r = pytrace("--unsafe", "-e", script)
    assert r.returncode == 0, r.stderr
    assert "from-system\n" in r.stdout


def test_dry_run_loads_nothing() -> None:
    r = run_pytrace(["--dry-run", "-e", "tracepoint:syscalls:sys_enter_openat { @ = count(); }"], stop=None)
    assert r.rc == 0, r.stderr
    assert r.stdout == "stdin: OK (1 attach point, 1 map)\n"
    assert not r.seen.progs and not r.seen.maps


def test_v_prints_the_verifier_log_on_a_rejection() -> None:
    script = ('config = { license = "Proprietary" } '
              'tracepoint:syscalls:sys_enter_openat { printf("%s\\n", str(args->filename)); }')
    r = pytrace("-e", script)
    assert r.returncode == 1
    # At the statement whose helper call the verifier refused (test_verifier_location.py has more).
    assert r.stderr.splitlines()[0] == ("stdin:1:77: error: the kernel's verifier rejected this statement: "
                                        "cannot call GPL-restricted function from non-GPL compatible program")
    r = pytrace("-v", "-e", script)
    assert r.returncode == 1
    assert "processed" in r.stderr or "0: (" in r.stderr  # the log itself


def test_license_config_is_used() -> None:
    r = pytrace("-e", 'config = { license = "Dual MIT/GPL" } BEGIN { printf("ok\\n"); exit(); }')
    assert r.returncode == 0 and "ok\n" in r.stdout, r.stderr


def test_broken_pipe_is_quiet() -> None:
    p = subprocess.Popen(f"{sys.executable} -m pytrace -e 'tracepoint:raw_syscalls:sys_enter {{ printf(\"line\\n\"); }}'"
                         " | head -n 3", shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    out, err = p.communicate(timeout=60)
    assert out.decode().splitlines()[0] == "Attaching 1 probe..."
    assert b"Traceback" not in err and b"Error" not in err


def test_sigint_during_start_up_is_quiet() -> None:
    p = subprocess.Popen([sys.executable, "-m", "pytrace", "-e", "tracepoint:syscalls:sys_enter_* { @ = count(); }"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    time.sleep(0.25)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert b"Traceback" not in err, err
    assert p.returncode in (0, 130, -signal.SIGINT)


def test_no_tracefs_mount_needed_beforehand() -> None:
    """tracefs is found (and would be mounted) by pytrace itself."""
    from pytrace.kernel.tracefs import tracefs_root
    assert os.path.isdir(os.path.join(tracefs_root(), "events"))


def test_preflight_passes_here() -> None:
    from pytrace.kernel.features import preflight
    assert preflight(tracefs=True) == "/sys/kernel/tracing"


def test_everything_closed_after_a_script_error_during_load() -> None:
    r = run_pytrace(["-e", 'config = { license = "Proprietary" } '
                           'tracepoint:syscalls:sys_enter_openat { printf("%s\\n", str(args->filename)); }'],
                    stop=None)
    assert r.rc == 1
    assert_all_gone(r.seen, r.pid)
