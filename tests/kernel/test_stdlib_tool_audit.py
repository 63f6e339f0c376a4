"""pytrace tool audit: the test performs each audited action itself (exec, setuid, capset, ptrace,
a BPF program load, a module load attempt, an open of a configured path, connect/accept on
127.0.0.1, mount/umount of a tmpfs, a kill of another uid's process) and asserts the one JSON
event each produces, field by field; a load test checks events + reported losses == actions."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from .harness import READY

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
# x86_64 syscall numbers (the machine the suite runs on).
SYS_CAPSET, SYS_BPF, SYS_FINIT_MODULE = 126, 321, 313
NOBODY = 65534


def run_audit(args: list[str], workload: Callable[[], None], timeout: float = 90,
              env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the tool as a user would, wait until its probes are attached, run the workload, SIGINT."""
    env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED=READY, **(env or {}))
    proc = subprocess.Popen([sys.executable, "-m", "pytrace", "tool", "audit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout
    while READY.encode() not in out and time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            out += os.read(proc.stdout.fileno(), 65536)
    assert READY.encode() in out, proc.communicate()[1].decode()
    workload()
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=timeout)
    return proc.returncode, (out + rest).decode(), err.decode()


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def one(evs: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    """The single event with these field values."""
    found = [e for e in evs if all(e.get(k) == v for k, v in want.items())]
    assert len(found) == 1, (want, found)
    return found[0]


def _fork(child: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    return pid


def _wait_uid(pid: int, uid: int) -> None:
    for _ in range(200):
        status = Path(f"/proc/{pid}/status").read_text()
        if f"Uid:\t{uid}\t" in status:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never changed to uid {uid}")


class Actions:
    """Each audited action, performed by this process or its children, and what it produced."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tag = uuid.uuid4().hex[:10]
        self.me = os.getpid()
        self.facts: dict[str, Any] = {}
        self.alive: list[subprocess.Popen[bytes]] = []

    def run(self) -> None:
        for step in (self.exec, self.failed_exec, self.setuid, self.capset, self.ptrace, self.bpf, self.module,
                     self.open, self.connect, self.mount, self.kill):
            step()

    def exec(self) -> None:
        # A unique binary (a copy of sleep) with unique arguments, run in its own directory: it
        # lives a moment, so the tool can still read its whole cwd.
        workdir = self.tmp / f"cwd{self.tag}"
        workdir.mkdir()
        binary = self.tmp / f"audit_exec_{self.tag}"
        shutil.copy("/bin/sleep", binary)
        argv = [str(binary), "0.3", f"0.000{int(self.tag[:6], 16)}"]
        proc = subprocess.Popen(argv, cwd=workdir)
        proc.wait()
        self.facts["exec"] = (proc.pid, argv, workdir)
        # An empty environment: the argument strings end at the top of the stack mapping.
        short = [str(binary), "0"]
        proc = subprocess.Popen(short, env={})
        proc.wait()
        self.facts["exec_noenv"] = (proc.pid, short)

    def failed_exec(self) -> None:
        missing = str(self.tmp / f"missing_{self.tag}")
        pid = _fork(lambda: os.execv(missing, [missing, "x", f"y{self.tag}"]))
        os.waitpid(pid, 0)
        self.facts["failed_exec"] = (pid, missing)

    def setuid(self) -> None:
        def child() -> None:
            os.setresuid(-1, -1, -1)  # changes nothing: each -1 is "unchanged"
            os.setuid(NOBODY)
            try:
                os.setuid(0)  # refused now: EPERM
            except PermissionError:
                pass
        pid = _fork(child)
        os.waitpid(pid, 0)
        self.facts["setuid"] = pid

    def capset(self) -> None:
        # _LINUX_CAPABILITY_VERSION_3 header, two data words: keep CAP_KILL (bit 5) and CAP_BPF (bit 39).
        def child() -> None:
            header = (ctypes.c_uint32 * 2)(0x20080522, 0)
            data = (ctypes.c_uint32 * 6)(1 << 5, 1 << 5, 0, 1 << 7, 1 << 7, 0)
            os._exit(0 if libc.syscall(SYS_CAPSET, header, data) == 0 else 1)
        pid = _fork(child)
        assert os.waitpid(pid, 0)[1] == 0
        self.facts["capset"] = pid

    def ptrace(self) -> None:
        target = subprocess.Popen(["sleep", "10"])
        try:
            assert libc.ptrace(16, target.pid, None, None) == 0  # PTRACE_ATTACH
            os.waitpid(target.pid, 0)
            assert libc.ptrace(17, target.pid, None, None) == 0  # PTRACE_DETACH
        finally:
            target.kill()
            target.wait()
        self.facts["ptrace"] = target.pid

    def bpf(self) -> None:
        # BPF_PROG_LOAD of a socket filter "r0 = 0; exit", named after this test.
        insns = (ctypes.c_uint64 * 2)(0x00000000000000B7, 0x0000000000000095)
        license = ctypes.create_string_buffer(b"GPL")
        attr = (ctypes.c_uint8 * 128)()
        name = f"aud{self.tag[:8]}".encode()
        ctypes.c_uint32.from_buffer(attr, 0).value = 1
        ctypes.c_uint32.from_buffer(attr, 4).value = 2
        ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(insns)
        ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(license)
        ctypes.memmove(ctypes.addressof(attr) + 48, name, len(name))
        fd = libc.syscall(SYS_BPF, 5, attr, 128)
        assert fd >= 0, os.strerror(ctypes.get_errno())
        os.close(fd)
        self.facts["bpf"] = (fd, name.decode())

    def module(self) -> None:
        # No module can load here: an invalid file, and (on this kernel) no module support at all.
        path = self.tmp / f"bad_{self.tag}.ko"
        path.write_bytes(b"not an ELF module")
        fd = os.open(path, os.O_RDONLY)
        try:
            ret = libc.syscall(SYS_FINIT_MODULE, fd, f"audparam={self.tag}".encode(), 0)
            err = ctypes.get_errno()
        finally:
            os.close(fd)
        assert ret == -1
        self.facts["module"] = (fd, path.name, err)

    def open(self) -> None:
        secret = self.tmp / f"secret_{self.tag}"
        secret.write_text("x")
        fd = os.open(secret, os.O_RDONLY | os.O_CLOEXEC)
        os.close(fd)
        os.open(self.tmp / f"other_{self.tag}", os.O_RDWR | os.O_CREAT, 0o600)  # not audited
        self.facts["open"] = (str(secret), fd)

    def connect(self) -> None:
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family) as server:
                server.bind((host, 0))
                server.listen()
                with socket.create_connection(server.getsockname()[:2]) as client:
                    conn, _ = server.accept()
                    self.facts[f"connect_{host}"] = (server.getsockname()[1], client.getsockname()[1], conn.fileno())
                    conn.close()

    def mount(self) -> None:
        target = self.tmp / f"mnt{self.tag}"
        target.mkdir()
        source = f"audsrc{self.tag}".encode()
        assert libc.mount(source, str(target).encode(), b"tmpfs", 0, b"size=1m") == 0, \
            os.strerror(ctypes.get_errno())
        assert libc.umount2(str(target).encode(), 0) == 0
        self.facts["mount"] = (source.decode(), str(target))

    def kill(self) -> None:
        def as_nobody() -> None:
            os.setuid(NOBODY)
            time.sleep(10)
        victim = _fork(as_nobody)
        _wait_uid(victim, NOBODY)
        os.kill(victim, signal.SIGTERM)
        os.waitpid(victim, 0)
        # The other way round: nobody's signal to root's process is refused (EPERM), and audited.
        rooted = subprocess.Popen(["sleep", "10"])

        def nobody_kills() -> None:
            os.setuid(NOBODY)
            try:
                os.kill(rooted.pid, signal.SIGUSR1)
            except PermissionError:
                os._exit(0)
            os._exit(1)
        attacker = _fork(nobody_kills)
        assert os.waitpid(attacker, 0)[1] == 0
        # Alive until the tool has read its uid from /proc (see close()).
        self.alive.append(rooted)
        self.facts["kill_denied"] = (attacker, rooted.pid)
        # Same uid: not audited.
        mine = subprocess.Popen(["sleep", "10"])
        mine.send_signal(signal.SIGTERM)
        mine.wait()
        self.facts["kill"] = (victim, mine.pid)

    def close(self) -> None:
        for proc in self.alive:
            proc.kill()
            proc.wait()


def test_each_action_gives_one_event(tmp_path: Path) -> None:
    acts = Actions(tmp_path)
    try:
        rc, out, err = run_audit(["--paths", f"/etc/shadow,{tmp_path}/secret_"], acts.run)
    finally:
        acts.close()
    assert rc == 0, err
    assert "Traceback" not in err
    evs = events(out)
    mine = [e for e in evs if e["type"] != "lost"]
    for e in mine:  # the stable schema: common fields first, a time in ISO 8601 UTC
        assert list(e)[:6] == ["type", "time", "pid", "tid", "uid", "comm"]
        assert e["time"].endswith("Z") and e["time"][10] == "T"

    pid, argv, workdir = acts.facts["exec"]
    e = one(evs, type="exec", pid=pid)
    assert e["argv"] == argv and e["filename"] == argv[0] and e["ret"] == 0 and e["error"] is None
    assert e["comm"] == Path(argv[0]).name[:15] and e["ppid"] == acts.me and e["uid"] == 0
    assert e["cwd"] == str(workdir) and e["cwd_name"] == workdir.name and e["argv_truncated"] is False

    pid, argv = acts.facts["exec_noenv"]
    assert one(evs, type="exec", pid=pid)["argv"] == argv

    pid, missing = acts.facts["failed_exec"]
    e = one(evs, type="exec", pid=pid)
    assert (e["filename"], e["argv"], e["ret"], e["error"]) == (missing, [missing, "x", f"y{acts.tag}"], -2, "ENOENT")
    assert e["argv_truncated"] is False and e["ppid"] == acts.me and e["cwd_name"] == Path.cwd().name

    pid = acts.facts["setuid"]
    ok = one(evs, type="setid", pid=pid, syscall="setuid", ret=0)
    assert (ok["syscall"], ok["args"], ok["old_uid"], ok["new_uid"], ok["new_euid"]) == ("setuid", [NOBODY], 0,
                                                                                           NOBODY, NOBODY)
    nochange = one(evs, type="setid", pid=pid, syscall="setresuid")
    assert (nochange["args"], nochange["ret"], nochange["new_uid"]) == ([-1, -1, -1], 0, 0)
    refused = one(evs, type="setid", pid=pid, ret=-errno.EPERM)
    assert (refused["args"], refused["error"], refused["old_uid"], refused["new_uid"]) == ([0], "EPERM", NOBODY,
                                                                                            NOBODY)

    e = one(evs, type="capset", pid=acts.facts["capset"])
    assert (e["effective"], e["permitted"], e["inheritable"]) == ((1 << 5) | (1 << 39),) * 2 + (0,)
    assert e["effective_caps"] == ["cap_kill", "cap_bpf"] and e["version"] == 0x20080522 and e["ret"] == 0

    e = one(evs, type="ptrace", pid=acts.me, target_pid=acts.facts["ptrace"])
    assert (e["request"], e["request_name"], e["ret"]) == (16, "PTRACE_ATTACH", 0)

    fd, name = acts.facts["bpf"]
    e = one(evs, type="bpf_prog_load", pid=acts.me, prog_name=name)
    assert (e["prog_type"], e["prog_type_name"], e["insn_cnt"], e["license"], e["ret"]) == (1, "socket_filter", 2,
                                                                                           "GPL", fd)

    fd, file, err_no = acts.facts["module"]
    e = one(evs, type="module_load", pid=acts.me)
    assert (e["syscall"], e["fd"], e["file"], e["params"]) == ("finit_module", fd, file, f"audparam={acts.tag}")
    assert (e["ret"], e["error"]) == (-err_no, errno.errorcode[err_no])

    path, fd = acts.facts["open"]
    e = one(evs, type="open", pid=acts.me, path=path, flags_names="O_RDONLY|O_CLOEXEC")
    assert (e["syscall"], e["flags_names"], e["ret"], e["error"]) == ("openat", "O_RDONLY|O_CLOEXEC", fd, None)
    assert not [e for e in evs if e["type"] == "open" and "other_" in e["path"]]

    for family, host in (("inet", "127.0.0.1"), ("inet6", "::1")):
        server_port, client_port, conn_fd = acts.facts[f"connect_{host}"]
        e = one(evs, type="connect", pid=acts.me, rport=server_port)
        assert (e["family"], e["proto"], e["raddr"], e["laddr"], e["lport"], e["ret"]) == (
            family, "tcp", host, host, client_port, 0)
        e = one(evs, type="accept", pid=acts.me, lport=server_port)
        assert (e["family"], e["raddr"], e["rport"], e["laddr"], e["ret"], e["proto"]) == (
            family, host, client_port, host, conn_fd, "tcp")

    source, target = acts.facts["mount"]
    e = one(evs, type="mount", pid=acts.me, target=target)
    assert (e["syscall"], e["source"], e["fstype"], e["ret"], e["error"]) == ("mount", source, "tmpfs", 0, None)
    e = one(evs, type="umount", pid=acts.me, target=target)
    assert (e["flags"], e["ret"]) == (0, 0)

    victim, same_uid = acts.facts["kill"]
    e = one(evs, type="kill", pid=acts.me, target_pid=victim)
    assert (e["sig"], e["sig_name"], e["target_uid"], e["uid"], e["code"], e["result"]) == (
        15, "SIGTERM", NOBODY, 0, "SI_USER", "delivered")
    assert not [e for e in evs if e["type"] == "kill" and e["target_pid"] == same_uid]
    attacker, target = acts.facts["kill_denied"]
    e = one(evs, type="kill", pid=attacker)
    assert (e["uid"], e["sig_name"], e["target_pid"], e["target_tid"], e["target_uid"], e["target_comm"],
            e["code"], e["result"]) == (NOBODY, "SIGUSR1", target, target, 0, "sleep", "SI_USER", "denied")


@pytest.mark.parametrize("ring_pages", [None, "1"])
def test_load_events_plus_losses_equal_actions(tmp_path: Path, ring_pages: str | None) -> None:
    """20,000 audited opens: with the default ring every event arrives or is counted lost; with a
    one-page ring (BPFTRACE_PERF_RB_PAGES=1) most are lost, and reported as such."""
    n = 20_000
    target = tmp_path / "hot"
    target.write_text("x")

    def workload() -> None:
        for _ in range(n):
            os.close(os.open(target, os.O_RDONLY))

    started = time.monotonic()
    rc, out, err = run_audit(["--only", "open", "--paths", str(target)], workload,
                             env={"BPFTRACE_PERF_RB_PAGES": ring_pages} if ring_pages else None)
    assert rc == 0, err
    evs = events(out)
    opens = [e for e in evs if e["type"] == "open" and e["path"] == str(target)]
    lost = sum(e["count"] for e in evs if e["type"] == "lost")
    assert all(e["pid"] == os.getpid() and e["ret"] >= 0 for e in opens)
    assert len(opens) + lost == n, (len(opens), lost)
    if ring_pages:
        assert lost > n // 2 and opens, (len(opens), lost)
    assert time.monotonic() - started < 40


def test_text_mode_and_only(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_text("x")
    fds: list[int] = []
    tag = uuid.uuid4().hex[:8]
    pids: list[int] = []

    def workload() -> None:
        fds.append(os.open(target, os.O_RDONLY))
        os.close(fds[0])
        proc = subprocess.Popen(["/bin/true", f"two\nlines{tag}"])
        proc.wait()
        pids.append(proc.pid)
        socket.socket().close()  # connect/accept are not selected: no line for the test's own sockets
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            socket.create_connection(server.getsockname()).close()

    rc, out, err = run_audit(["--text", "--only", "open,exec", "--paths", str(target)], workload)
    assert rc == 0, err
    lines = [ln for ln in out.splitlines() if f"path={target}" in ln]
    assert len(lines) == 1
    assert f" OPEN          pid={os.getpid()} uid=0 comm=" in lines[0]
    assert lines[0].endswith(f" syscall=openat path={target} flags={os.O_CLOEXEC} flags_names=O_RDONLY|O_CLOEXEC "
                             f"mode=0 ret={fds[0]}")
    # One line per event, a newline in an argument escaped.
    execs = [ln for ln in out.splitlines() if f" EXEC          pid={pids[0]} " in ln]
    assert len(execs) == 1
    assert f" filename=/bin/true argv=/bin/true 'two\\nlines{tag}' argv_truncated=false " in execs[0]
    kinds = {ln.split()[1] for ln in out.splitlines() if ln[:4].isdigit()}
    assert kinds <= {"OPEN", "EXEC"} and "{" not in out


@pytest.mark.parametrize("args, message", [
    (["--only", "exec,bogus"], "--only: unknown category 'bogus'"),
    (["--paths", "etc/shadow"], "is not an absolute path"),
    (["--paths", '/etc/"x'], "holds a quote"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytrace", "tool", "audit", *args], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
