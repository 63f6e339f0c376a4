"""Shared helpers of the side-by-side benchmarks (pytrace vs bpftrace 0.17).

Standard library only.  Every benchmark runs both tools as separate
processes, the same way a user would, and times them from the outside:

* ``Tracer`` starts a tool on a script, waits for the attach marker
  (``__BPFTRACE_NOTIFY_PROBES_ATTACHED``: pytrace prints it on stdout,
  bpftrace 0.17 prints the variable's *name* on stderr whatever its value,
  so the value is set to the name and both streams are watched), stops it
  with a signal and reaps it with ``os.wait4`` in a thread, which gives the
  exact exit time and the peak RSS (``ru_maxrss``) of the process.
* ``Workload`` is a Python child, pinned to one CPU, that makes syscalls on
  command (``os.getpid()`` is a real getpid(2) every call: glibc >= 2.25
  does not cache it).
* ``bpf_progs_of(pid)`` finds the BPF programs a process holds through
  ``/proc/PID/fdinfo`` (Debian's bpftool 7.1 is built without the skeleton
  that fills the ``pids`` field of ``bpftool prog show``).

pytrace runs from its console script with bytecode caching on (in a private
``PYTHONPYCACHEPREFIX``), as an installed package would; the environment
of these VMs sets ``PYTHONDONTWRITEBYTECODE=1``, which makes every pytrace
start compile all its sources (startup.py measures that case too).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
MARK = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"
PYC_DIR = Path(tempfile.gettempdir()) / "pytrace-bench-pyc"
TOOLS = ("pytrace", "bpftrace")


# ----------------------------------------------------------------------------- tools


def pytrace_argv() -> list[str]:
    """The console script next to this interpreter (not a pyenv shim, whose
    bash wrapper would add ~0.5 s), else ``python -m pytrace``."""
    exe = Path(sys.executable).parent / "pytrace"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "pytrace"]


def tool_argv(tool: str) -> list[str]:
    return pytrace_argv() if tool == "pytrace" else ["bpftrace"]


def tool_env(tool: str, extra: dict[str, str] | None = None, bytecode: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    env[MARK] = MARK
    for k in ("BPFTRACE_STRLEN", "BPFTRACE_MAP_KEYS_MAX", "BPFTRACE_MAX_MAP_KEYS"):
        env.pop(k, None)
    if tool == "pytrace":
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(PYC_DIR)
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX", None)
    env.update(extra or {})
    return env


def warm_pytrace(pythonpath: str | None = None) -> None:
    """One throw-away run so the bytecode cache exists before timing."""
    subprocess.run(pytrace_argv() + ["-e", "BEGIN { exit(); }"],
                   env=tool_env("pytrace", {"PYTHONPATH": pythonpath} if pythonpath else None),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def pytrace_tree(argv: Sequence[str]) -> str:
    """The pytrace source tree to measure: ``--pytrace-path DIR``, else this
    checkout (not whatever copy was last pip-installed, which the console
    script would import otherwise); warmed by one throw-away run."""
    path = os.path.abspath(argv[list(argv).index("--pytrace-path") + 1]) if "--pytrace-path" in argv \
        else str(ROOT)
    warm_pytrace(path)
    return path


def check_environment() -> None:
    if os.geteuid() != 0:
        raise SystemExit("these benchmarks load BPF programs: run them as root")
    if not shutil.which("bpftrace"):
        raise SystemExit("bpftrace is not installed (apt-get install bpftrace)")


class ToolFailed(Exception):
    """The tool exited early, timed out, or printed an error: recorded in the table."""


@dataclass
class Tracer:
    """One run of a tool on a script."""

    tool: str
    script: str
    args: Sequence[str] = ()
    params: Sequence[str] = ()
    env: dict[str, str] | None = None
    stdout_path: str | None = None  # None: captured through a pipe
    bytecode: bool = True

    proc: subprocess.Popen | None = None  # type: ignore[type-arg]
    t_start: float = 0.0
    t_attached: float | None = None
    t_exit: float | None = None
    status: int | None = None
    maxrss_kb: int = 0
    _out: bytearray = field(default_factory=bytearray)
    _err: bytearray = field(default_factory=bytearray)
    _threads: list[threading.Thread] = field(default_factory=list)
    _exited: threading.Event = field(default_factory=threading.Event)
    _marked: threading.Event = field(default_factory=threading.Event)
    _outfile: IO[bytes] | None = None
    resent: int = 0
    resend_states: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        return tool_argv(self.tool) + list(self.args) + ["-e", self.script] + list(self.params)

    def command_line(self) -> str:
        import shlex
        return " ".join(shlex.quote(a) for a in (["pytrace"] if self.tool == "pytrace" else ["bpftrace"])
                        + list(self.args) + ["-e", self.script] + list(self.params))

    def start(self) -> "Tracer":
        env = tool_env(self.tool, self.env, self.bytecode)
        if self.stdout_path:
            self._outfile = open(self.stdout_path, "wb")
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self._outfile if self._outfile else subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        waiter = threading.Thread(target=self._wait, daemon=True)
        waiter.start()
        self._threads.append(waiter)
        streams = [(self.proc.stderr, self._err)]
        if not self._outfile:
            streams.append((self.proc.stdout, self._out))
        for stream, buf in streams:
            t = threading.Thread(target=self._read, args=(stream, buf), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _wait(self) -> None:
        assert self.proc is not None
        _pid, status, ru = os.wait4(self.proc.pid, 0)
        self.t_exit = time.perf_counter()
        self.status = status
        self.maxrss_kb = ru.ru_maxrss
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self._exited.set()

    def _read(self, stream: IO[bytes], buf: bytearray) -> None:
        fd = stream.fileno()
        mark = MARK.encode()
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            buf += chunk
            if not self._marked.is_set() and mark in buf[-len(chunk) - len(mark):]:
                self.t_attached = time.perf_counter()
                self._marked.set()

    def wait_attached(self, timeout: float = 60.0) -> float:
        """Seconds from start to the attach marker; raises ToolFailed."""
        deadline = time.perf_counter() + timeout
        mark = MARK.encode()
        while time.perf_counter() < deadline:
            if self._marked.wait(0.002):
                assert self.t_attached is not None
                return self.t_attached - self.t_start
            if self.stdout_path and not self._marked.is_set():
                with open(self.stdout_path, "rb") as f:
                    if mark in f.read(1 << 16):
                        self.t_attached = time.perf_counter()
                        self._marked.set()
                        continue
            if self._exited.is_set():
                raise ToolFailed(f"exited with {self.returncode} before attaching: {self.error_text()}")
        self.kill()
        raise ToolFailed(f"not attached after {timeout:.0f} s")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120.0, escalate: bool = False,
             resend_after: float | None = None) -> float:
        """Send ``sig`` and wait for the exit; seconds from the (first) signal
        to the exit.  ``resend_after``: send it again after that many seconds
        without an exit (bpftrace 0.17 now and then sleeps on in epoll_wait
        after a SIGINT); ``self.resent`` counts those.  On a timeout, raise
        ToolFailed, after SIGTERM then SIGKILL if ``escalate``."""
        assert self.proc is not None
        t0 = time.perf_counter()
        if not self._exited.is_set():
            os.kill(self.proc.pid, sig)
        deadline = t0 + timeout
        next_send = t0 + resend_after if resend_after else deadline
        while not self._exited.wait(max(0.0, min(deadline, next_send) - time.perf_counter())):
            now = time.perf_counter()
            if now >= deadline:
                break
            if now >= next_send:
                self.resent += 1
                self.resend_states.append(self.proc_state())
                os.kill(self.proc.pid, sig)
                next_send = now + (resend_after or timeout)
        if not self._exited.is_set():
            state = self.proc_state()
            if escalate:
                os.kill(self.proc.pid, signal.SIGTERM)
                self._exited.wait(5)
            self.kill()
            raise ToolFailed(f"did not exit within {timeout:.0f} s of {signal.Signals(sig).name} ({state})")
        self._finish()
        assert self.t_exit is not None
        return max(0.0, self.t_exit - t0)

    def wait_exit(self, timeout: float = 120.0) -> float:
        """Wait for the tool to exit by itself; seconds from start to exit."""
        if not self._exited.wait(timeout):
            self.kill()
            raise ToolFailed(f"did not exit within {timeout:.0f} s")
        self._finish()
        assert self.t_exit is not None
        return self.t_exit - self.t_start

    def proc_state(self) -> str:
        """Where a stuck tool is: state and kernel wait channel of each thread."""
        assert self.proc is not None
        parts = []
        try:
            for tid in sorted(os.listdir(f"/proc/{self.proc.pid}/task"))[:8]:
                base = f"/proc/{self.proc.pid}/task/{tid}"
                st = Path(f"{base}/stat").read_text().rsplit(")", 1)[1].split()[0]
                wchan = Path(f"{base}/wchan").read_text().strip() or "-"
                parts.append(f"{tid}:{st}:{wchan}")
        except OSError:
            pass
        return "threads " + " ".join(parts) if parts else "no /proc entry"

    def kill(self) -> None:
        if self.proc is not None and not self._exited.is_set():
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._exited.wait(30)
        self._finish()

    def _finish(self) -> None:
        for t in self._threads:
            t.join(5)
        if self._outfile is not None:
            self._outfile.close()
            self._outfile = None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    @property
    def stdout(self) -> str:
        if self.stdout_path:
            return Path(self.stdout_path).read_text(errors="replace")
        return self._out.decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self._err.decode(errors="replace")

    def error_text(self) -> str:
        """stderr without bpftrace's harmless RLIMIT_MEMLOCK complaint and the marker."""
        lines = [ln for ln in self.stderr.splitlines()
                 if ln.strip() and MARK not in ln and "RLIMIT_MEMLOCK" not in ln]
        return " | ".join(lines[-6:]) or "(no message)"

    def check_ok(self) -> None:
        if self.returncode not in (0, None):
            raise ToolFailed(f"exit status {self.returncode}: {self.error_text()}")
        for ln in self.stderr.splitlines():
            if ("error" in ln.lower() or "traceback" in ln.lower()) and "RLIMIT_MEMLOCK" not in ln:
                raise ToolFailed(self.error_text())


# ----------------------------------------------------------------------------- workload

_WORKLOAD = r"""
import os, sys, time
cpu = int(sys.argv[1])
if cpu >= 0:
    os.sched_setaffinity(0, {cpu})
gp, gpp, pc, sleep = os.getpid, os.getppid, time.perf_counter, time.sleep
out = sys.stdout
out.write("ready\n"); out.flush()
for line in sys.stdin:
    cmd, *a = line.split()
    n = 0
    if cmd == "loop":                      # n getpid(2) as fast as possible
        n = int(a[0]); r = range(n)
        t0 = pc()
        for _ in r:
            gp()
        dt = pc() - t0
    elif cmd == "rate":                    # getpid(2) paced at `rate`/s (0: flat out), for `secs` s
        rate, secs = float(a[0]), float(a[1])
        # Batches of ~0.5 ms; sleep (not spin) while ahead, so that the CPU
        # stays free for the tool when the rate is low.
        batch = 1000 if rate == 0 else max(1, min(1000, int(rate / 2000)))
        r = range(batch)
        t0 = pc()
        end = t0 + secs
        while True:
            for _ in r:
                gp()
            n += batch
            now = pc()
            if now >= end:
                break
            if rate:
                target = t0 + n / rate
                if target - now > 0.0002:
                    sleep(target - now - 0.0001)
                    now = pc()
                while now < target:
                    now = pc()
        dt = pc() - t0
    elif cmd == "sep":                     # n getppid(2): a separator
        n = int(a[0])
        t0 = pc()
        for _ in range(n):
            gpp()
        dt = pc() - t0
    elif cmd == "quit":
        break
    else:
        dt = -1.0
    out.write(f"{n} {dt!r}\n"); out.flush()
"""


class Workload:
    """A Python child pinned to ``cpu`` that makes syscalls on command."""

    def __init__(self, cpu: int = 0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", _WORKLOAD, str(cpu)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("workload did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def result(self) -> tuple[int, float]:
        """(syscalls made, seconds) of the last command."""
        assert self.proc.stdout is not None
        n, dt = self.proc.stdout.readline().split()
        return int(n), float(dt)

    def run(self, command: str) -> float:
        """Run a command; its duration in seconds."""
        self.send(command)
        return self.result()[1]

    def run_counted(self, command: str) -> tuple[int, float]:
        self.send(command)
        return self.result()

    def close(self) -> None:
        try:
            self.send("quit")
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "Workload":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- BPF introspection


def bpf_progs_of(pid: int) -> list[int]:
    """Ids of the BPF programs process ``pid`` holds (prog and link fds)."""
    ids: set[int] = set()
    base = f"/proc/{pid}/fdinfo"
    try:
        names = os.listdir(base)
    except OSError:
        return []
    for name in names:
        try:
            with open(f"{base}/{name}") as f:
                text = f.read()
        except OSError:
            continue
        m = re.search(r"^prog_id:\s*(\d+)", text, re.M)
        if m:
            ids.add(int(m.group(1)))
    return sorted(ids)


def bpftool_json(*args: str) -> Any:
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"bpftool {' '.join(args)}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def prog_info(prog_id: int) -> dict[str, Any]:
    return bpftool_json("prog", "show", "id", str(prog_id))


def xlated_insns(prog_id: int) -> int:
    """Instructions as ``bpftool prog dump xlated`` lists them (ld_imm64 = 1)."""
    return len(bpftool_json("prog", "dump", "xlated", "id", str(prog_id)))


class BpfStats:
    """``kernel.bpf_stats_enabled`` on for the duration, then restored."""

    PATH = "/proc/sys/kernel/bpf_stats_enabled"

    def __enter__(self) -> "BpfStats":
        self.previous = Path(self.PATH).read_text().strip()
        Path(self.PATH).write_text("1\n")
        return self

    def __exit__(self, *exc: object) -> None:
        Path(self.PATH).write_text(self.previous + "\n")


# ----------------------------------------------------------------------------- figures and tables


def median(xs: Iterable[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(pt: float | None, bt: float | None) -> str:
    if pt is None or bt is None or bt == 0:
        return "-"
    r = pt / bt
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> str:
    """A plain-text table; the first ``left`` columns are left-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) if i < left else c.rjust(widths[i])
                               for i, c in enumerate(r)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class Summary:
    """Headline figures handed to run_all.py (``--summary FILE``)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, pytrace: float | None, bpftrace: float | None, unit: str, target: str,
            met: bool | None) -> None:
        self.rows.append({"metric": metric, "pytrace": pytrace, "bpftrace": bpftrace, "unit": unit,
                          "ratio": None if pytrace is None or not bpftrace else pytrace / bpftrace,
                          "target": target, "met": met})

    def fail(self, text: str) -> None:
        self.failures.append(text)
        print(f"FAILURE: {text}", file=sys.stderr)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"NOTE: {text}", file=sys.stderr)

    def note_resent(self, t: "Tracer") -> None:
        """Record that a tool needed its stop signal sent more than once."""
        if t.resent:
            self.note(f"{t.tool} needed {t.resent + 1} signals to stop: {t.command_line()} "
                      f"(asleep in: {'; '.join(t.resend_states)})")

    def write(self, argv: Sequence[str]) -> None:
        if "--summary" in argv:
            path = argv[list(argv).index("--summary") + 1]
            Path(path).write_text(json.dumps({"rows": self.rows, "failures": self.failures,
                                               "notes": self.notes}, indent=1))


def machine() -> dict[str, str]:
    bt = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip()
    bpftool = subprocess.run(["bpftool", "version"], capture_output=True, text=True).stdout.splitlines()
    cpu = ""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "kernel": platform.release(), "bpftrace": bt,
            "bpftool": bpftool[0] if bpftool else "", "python": platform.python_version(), "cpu": cpu,
            "load": " ".join(Path("/proc/loadavg").read_text().split()[:3])}


def foreign_programs(mine: Iterable[int] = ()) -> list[str]:
    """BPF programs loaded by other sessions (they slow every syscall they trace)."""
    try:
        progs = bpftool_json("prog", "show")
    except Exception:
        return []
    skip = set(mine)
    return [f"{p.get('type')}:{p.get('name', '?')}" for p in progs if p["id"] not in skip]


def wait_quiet(timeout: float = 10.0) -> int:
    """Wait up to ``timeout`` s until no other session has a BPF program loaded;
    returns how many were still loaded (0: a quiet machine)."""
    deadline = time.monotonic() + timeout
    while True:
        n = len(foreign_programs())
        if n == 0 or time.monotonic() >= deadline:
            return n
        time.sleep(0.25)
