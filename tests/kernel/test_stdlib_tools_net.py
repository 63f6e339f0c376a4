"""The stdlib's network tools (stdlib/tools/tcp*.pt, group C), run as a user
runs them: ``pytrace tool NAME [PID]``.

Each test runs a workload it controls on 127.0.0.1 and ::1 (connections
between its own sockets, on ports the kernel hands out, so they are unique)
and asserts the workload's own lines, field by field.  The tools see the
whole machine: lines are picked by those ports.  Retransmits and drops come
from a classic BPF socket filter that drops every segment (SO_ATTACH_FILTER
on the receiving socket: the kernel frees them with reason SOCKET_FILTER, the
sender retransmits), from a full accept queue (the listener ignores a SYN: the
client retransmits it after a second) and from a connect to a closed port
(reason NO_SOCKET): nothing outside the test's sockets is changed, so there
is nothing to clean up.

Debian's bpftrace 0.17 cannot run its own versions of these tools on this
kernel (tcpconnect, tcpaccept, tcplife and tcpretrans use kprobes, tcpdrop.bt
needs kernel headers: tests/kernel/test_tool_scripts.py).  It can run two of
pytrace's (tcpconnect.pt and tcpretrans.pt: the others need BTF types or
enums bpftrace 0.17 does not resolve on this kernel): both run at once around
one workload and must print the same lines for it.
"""

from __future__ import annotations

import ctypes
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .difflib_pt import compare, fork_named, have_bpftrace, ready, reap, run_both
from .harness import READY, Result

pytestmark = [pytest.mark.kernel]

COMM = Path("/proc/self/comm").read_text().strip()
FAMILIES = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))
TIME = re.compile(r"^\d\d:\d\d:\d\d $")
SO_ATTACH_FILTER, SO_DETACH_FILTER = 26, 27
TOOLS = Path(__file__).resolve().parents[2] / "stdlib" / "tools"
needs_bpftrace = pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")


def run_tool(name: str, workload: Callable[[], None], params: list[str] | None = None,
             timeout: float = 60) -> Result:
    """``pytrace tool NAME params``: wait until it has attached, run the
    workload, SIGINT it, return what it printed (it must exit 0)."""
    env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED=READY)
    proc = subprocess.Popen([sys.executable, "-m", "pytrace", "tool", name, *(params or [])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while READY.encode() not in out and time.monotonic() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 0.1)
            if r:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        ready = READY.encode() in out
        if ready:
            workload()
            time.sleep(0.3)  # the last events reach the output
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    res = Result(proc.returncode, (out + rest).decode(), err.decode())
    assert ready, f"{name} did not start:\n{res.stdout}\n{res.stderr}"
    assert res.rc == 0 and "Traceback" not in res.stderr, res.stderr
    return res


def lines_of(res: Result, head: list[str]) -> list[str]:
    """The tool's lines after its header, which must be ``head``."""
    lines = res.body.split("\n")
    assert lines[:len(head)] == head, res.body
    return lines[len(head):]


def timed(lines: list[str], rest: str) -> list[str]:
    """The lines made of a wall-clock time ("HH:MM:SS ") then ``rest``."""
    return [ln for ln in lines if ln[9:] == rest and TIME.match(ln[:9])]


def closed_port(fam: int, host: str) -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(fam) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def drop_all(s: socket.socket) -> None:
    """Attach a classic BPF filter that drops every segment ``s`` receives
    (one instruction: BPF_RET|BPF_K 0)."""
    insn = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HxxxxxxQ", 1, ctypes.addressof(insn)))


def recv_n(s: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = s.recv(65536)
        assert chunk, f"EOF after {len(got)} of {n} bytes"
        got += chunk
    return got


@pytest.fixture
def listeners() -> Iterator[dict[int, socket.socket]]:
    """A listening socket per family (backlog 7), by family."""
    socks = {}
    for fam, host in FAMILIES:
        s = socket.socket(fam)
        s.bind((host, 0))
        s.listen(7)
        socks[fam] = s
    yield socks
    for s in socks.values():
        s.close()


# ---------------------------------------------------------------- tcpconnect

CONNECT_HEAD = ["Tracing tcp connections. Hit Ctrl-C to end.",
                f"{'TIME':<8} {'PID':<8} {'COMM':<16} {'SADDR':<39} {'SPORT':<6} {'DADDR':<39} {'DPORT':<6}"]


def connect_row(pid: int, comm: str, host: str, sport: int, dport: int) -> str:
    return f"{pid:<8} {comm:<16} {host:<39} {sport:<6} {host:<39} {dport:<6}"


def _connects(listeners: dict[int, socket.socket], conns: list[tuple[int, str, int, int]]) -> Callable[[], None]:
    """A workload: per family a connect that succeeds and one refused (to a
    closed port), and one in a child called ptconnchild; each connect's
    (pid, host, sport, dport) is appended to ``conns``."""
    def work() -> None:
        keep = []
        for fam, host in FAMILIES:
            lport = listeners[fam].getsockname()[1]
            c = socket.create_connection((host, lport))
            keep.append(c)
            conns.append((os.getpid(), host, c.getsockname()[1], lport))
            with socket.socket(fam) as r:
                r.bind((host, 0))
                closed = closed_port(fam, host)
                assert r.connect_ex((host, closed)) != 0
                conns.append((os.getpid(), host, r.getsockname()[1], closed))
        rd, wr = os.pipe()

        def child() -> None:
            with socket.create_connection(("127.0.0.1", listeners[socket.AF_INET].getsockname()[1])) as c:
                os.write(wr, str(c.getsockname()[1]).encode())
        pid = fork_named("ptconnchild", child)
        reap(pid)
        conns.append((pid, "127.0.0.1", int(os.read(rd, 16)), listeners[socket.AF_INET].getsockname()[1]))
        os.close(rd)
        os.close(wr)
        for c in keep:
            c.close()
    return work


def test_tcpconnect(listeners: dict[int, socket.socket]) -> None:
    """IPv4 and IPv6 connects, accepted and refused, by this process and by
    a child: one line each, with the caller's PID and COMM and both ends."""
    conns: list[tuple[int, str, int, int]] = []
    lines = lines_of(run_tool("tcpconnect", _connects(listeners, conns)), CONNECT_HEAD)
    assert len(conns) == 5
    for pid, host, sport, dport in conns:
        comm = COMM if pid == os.getpid() else "ptconnchild"
        assert len(timed(lines, connect_row(pid, comm, host, sport, dport))) == 1, (pid, sport, lines)


def test_tcpconnect_pid(listeners: dict[int, socket.socket]) -> None:
    """With a PID, only that process's connects: the child's is not shown."""
    conns: list[tuple[int, str, int, int]] = []
    lines = lines_of(run_tool("tcpconnect", _connects(listeners, conns), [str(os.getpid())]), CONNECT_HEAD)
    mine = [c for c in conns if c[0] == os.getpid()]
    assert len(mine) == 4
    for pid, host, sport, dport in mine:
        assert len(timed(lines, connect_row(pid, COMM, host, sport, dport))) == 1, (sport, lines)
    child_port = next(c[2] for c in conns if c[0] != os.getpid())
    assert not [ln for ln in lines if f" {child_port} " in ln], lines


# ---------------------------------------------------------------- tcpaccept

ACCEPT_HEAD = ["Tracing TCP accepts. Hit Ctrl-C to end.",
               f"{'TIME':<8} {'PID':<6} {'COMM':<14} {'RADDR':<39} {'RPORT':<5} {'LADDR':<39} {'LPORT':<5} BL"]


def test_tcpaccept(listeners: dict[int, socket.socket]) -> None:
    """Two connections queued per family, then accepted by a child called
    ptacceptor: its PID and COMM (not the client's, which runs the
    handshake's last step on loopback), both ends, and the queue length
    when each was queued (0 then 1, of 7).  With this process's PID as the
    parameter, the child's accepts are not shown."""
    for params in ([], [str(os.getpid())]):
        clients: list[tuple[str, int, int]] = []
        pids: list[int] = []

        def work() -> None:
            keep = []
            for fam, host in FAMILIES:
                for _ in range(2):
                    c = socket.create_connection((host, listeners[fam].getsockname()[1]))
                    keep.append(c)
                    clients.append((host, c.getsockname()[1], listeners[fam].getsockname()[1]))

            def child() -> None:
                for fam, _ in FAMILIES:
                    for _ in range(2):
                        listeners[fam].accept()[0].close()
            pids.append(fork_named("ptacceptor", child))
            reap(pids[0])
            for c in keep:
                c.close()
        lines = lines_of(run_tool("tcpaccept", work, params), ACCEPT_HEAD)
        for i, (host, rport, lport) in enumerate(clients):
            row = f"{pids[0]:<6} {'ptacceptor':<14} {host:<39} {rport:<5} {host:<39} {lport:<5} {i % 2}/7"
            assert len(timed(lines, row)) == (0 if params else 1), (row, lines)
        if params:
            assert not [ln for ln in lines if any(f" {c[1]} " in ln for c in clients)], lines


# ---------------------------------------------------------------- tcplife

LIFE_HEAD = [f"{'PID':<5} {'COMM':<10} {'LADDR':<15} {'LPORT':<5} {'RADDR':<15} {'RPORT':<5} TX_KB RX_KB MS"]


@pytest.mark.parametrize("fam,host", FAMILIES, ids=["ipv4", "ipv6"])
def test_tcplife(listeners: dict[int, socket.socket], fam: int, host: str) -> None:
    """A client (child ptlifecli) sends 300 KiB + 100 bytes, the server
    (child ptlifesrv) answers 200 KiB + 100 bytes and closes first; each end
    is a line with its own process, both ends, whole KiB sent (acked) and
    received, and its lifespan.  The server's process is known from its
    close() (FIN_WAIT1): bpftrace's version would print whoever was running."""
    lport = listeners[fam].getsockname()[1]
    rd, wr = os.pipe()
    pids: list[int] = []

    def server() -> None:
        c, _ = listeners[fam].accept()
        recv_n(c, 300 * 1024 + 100)
        c.sendall(b"s" * (200 * 1024 + 100))
        c.close()

    def client() -> None:
        with socket.create_connection((host, lport)) as c:
            os.write(wr, str(c.getsockname()[1]).encode())
            c.sendall(b"c" * (300 * 1024 + 100))
            recv_n(c, 200 * 1024 + 100)
            assert c.recv(1) == b""

    def work() -> None:
        pids.append(fork_named("ptlifesrv", server))
        pids.append(fork_named("ptlifecli", client))
        for p in pids:
            reap(p)
    res = run_tool("tcplife", work)
    cport = int(os.read(rd, 16))
    os.close(rd)
    os.close(wr)
    lines = lines_of(res, LIFE_HEAD)
    srv, cli = pids
    want = {cli: f"{cli:<5} {'ptlifecli':<10} {host:<15} {cport:<5} {host:<15} {lport:<6} {300:>5} {200:>5} ",
            srv: f"{srv:<5} {'ptlifesrv':<10} {host:<15} {lport:<5} {host:<15} {cport:<6} {200:>5} {300:>5} "}
    for pid, prefix in want.items():
        got = [ln for ln in lines if ln.startswith(prefix)]
        assert len(got) == 1, (prefix, lines)
        assert 0 <= int(got[0][len(prefix):]) < 10_000, got
    assert len([ln for ln in lines if f" {cport} " in ln]) == 2, lines


def test_tcplife_pid(listeners: dict[int, socket.socket]) -> None:
    """With a PID: only the sessions printed with that PID (this process's
    client end, not the server end in child ptlifesrv)."""
    lport = listeners[socket.AF_INET].getsockname()[1]
    ports: list[int] = []

    def server() -> None:
        c, _ = listeners[socket.AF_INET].accept()
        recv_n(c, 2048)
        c.close()

    def work() -> None:
        pid = fork_named("ptlifesrv", server)
        with socket.create_connection(("127.0.0.1", lport)) as c:
            ports.append(c.getsockname()[1])
            c.sendall(b"x" * 2048)
            assert c.recv(1) == b""
        reap(pid)
    lines = lines_of(run_tool("tcplife", work, [str(os.getpid())]), LIFE_HEAD)
    got = [ln for ln in lines if f" {ports[0]} " in ln]
    prefix = f"{os.getpid():<5} {COMM[:10]:<10} {'127.0.0.1':<15} {ports[0]:<5} {'127.0.0.1':<15} {lport:<6}     2     0 "
    assert len(got) == 1 and got[0].startswith(prefix), (prefix, lines)


# ---------------------------------------------------------------- tcpretrans

RETRANS_HEAD = ["Tracing tcp retransmits. Hit Ctrl-C to end.",
                f"{'TIME':<8} {'PID':<8} {'LADDR:LPORT':>20} {'RADDR:RPORT':>21} {'STATE':>6}"]


def _lost_data(fam: int, host: str, lport_listener: socket.socket, out: list[tuple[str, int, int, str]]) -> None:
    """1000 bytes whose every copy the receiver's socket filter drops for
    0.6 s (RTO and loss probes retransmit them), then delivered."""
    c = socket.create_connection((host, lport_listener.getsockname()[1]))
    s, peer = lport_listener.accept()
    while peer[1] != c.getsockname()[1]:  # one left queued by an earlier workload
        s.close()
        s, peer = lport_listener.accept()
    with c, s:
        drop_all(s)
        c.sendall(b"r" * 1000)
        time.sleep(0.6)
        s.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
        assert recv_n(s, 1000) == b"r" * 1000
        out.append((host, c.getsockname()[1], s.getsockname()[1], "ESTABLISHED"))


def _lost_syn(out: list[tuple[str, int, int, str]]) -> None:
    """A SYN to a listener whose accept queue is full (backlog 0, one
    connection waiting): ignored, retransmitted after the initial RTO (1 s)."""
    with socket.socket() as ls, socket.socket() as first, socket.socket() as second:
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        first.connect(ls.getsockname())
        second.setblocking(False)
        second.bind(("127.0.0.1", 0))
        assert second.connect_ex(ls.getsockname()) != 0
        time.sleep(1.3)
        out.append(("127.0.0.1", second.getsockname()[1], ls.getsockname()[1], "SYN_SENT"))


def test_tcpretrans(listeners: dict[int, socket.socket]) -> None:
    """Lost data on IPv4 and IPv6 (ESTABLISHED) and a lost SYN (SYN_SENT):
    at least one line each with both ends and the state; the retransmits run
    from timers, so PID is whatever was running (not checked)."""
    seen: list[tuple[str, int, int, str]] = []

    def work() -> None:
        threads = [threading.Thread(target=_lost_data, args=(fam, host, listeners[fam], seen))
                   for fam, host in FAMILIES] + [threading.Thread(target=_lost_syn, args=(seen,))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = lines_of(run_tool("tcpretrans", work), RETRANS_HEAD)
    assert len(seen) == 3
    for host, lport, rport, state in seen:
        rest = f"{host:>14}:{lport:<6} {host:>14}:{rport:<6} {state:>6}"
        got = [ln for ln in lines if ln.endswith(rest)]
        assert got, (rest, lines)
        assert all(TIME.match(ln[:9]) and re.match(r"^\d+ +$", ln[9:18]) for ln in got), got
        assert len([ln for ln in lines if f":{lport} " in ln]) == len(got), lines


# ---------------------------------------------------------------- tcpdrop

DROP_HEAD = ["Tracing tcp drops. Hit Ctrl-C to end.",
             f"{'TIME':<8} {'PID':<8} {'COMM':<16} {'SADDR:SPORT':<21} {'DADDR:DPORT':<21} {'STATE':<8} REASON"]


def _stack_after(lines: list[str], i: int) -> list[str]:
    """The function names of the kernel stack printed after line ``i``
    (printf("%s\\n", kstack): an empty line, a frame per line, an empty line)."""
    end = lines.index("", i + 2)
    frames = lines[i + 1:end]
    assert frames[0] == "" and all(re.match(r"^ {8}\w[\w.]*\+\d+$", f) for f in frames[1:]), frames
    return [f.strip().split("+")[0] for f in frames[1:]]


def test_tcpdrop(listeners: dict[int, socket.socket]) -> None:
    """A connect to a closed port per family: its SYN is dropped (NO_SOCKET,
    no socket: the ends come from the segment's headers) in this process's
    context (loopback delivers it in the sender's softirq), with the stack
    from connect() to tcp_v4_rcv/tcp_v6_rcv.  Then data to a socket whose
    filter drops everything: SOCKET_FILTER, with the receiving socket's ends
    and state."""
    refused: list[tuple[int, str, int, int]] = []
    filtered: list[tuple[int, int]] = []

    def work() -> None:
        for fam, host in FAMILIES:
            with socket.socket(fam) as r:
                r.bind((host, 0))
                closed = closed_port(fam, host)
                assert r.connect_ex((host, closed)) != 0
                refused.append((fam, host, r.getsockname()[1], closed))
        c = socket.create_connection(("127.0.0.1", listeners[socket.AF_INET].getsockname()[1]))
        s, _ = listeners[socket.AF_INET].accept()
        with c, s:
            drop_all(s)
            c.sendall(b"d" * 100)
            time.sleep(0.1)
            s.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
            assert recv_n(s, 100) == b"d" * 100
            filtered.append((s.getsockname()[1], c.getsockname()[1]))
    lines = lines_of(run_tool("tcpdrop", work), DROP_HEAD)
    for fam, host, cport, closed in refused:
        row = f"{os.getpid():<8} {COMM:<16} {host:>39}:{closed:<6} {host:>39}:{cport:<6} {'-':<10} NO_SOCKET"
        got = [i for i, ln in enumerate(lines) if ln[9:] == row and TIME.match(ln[:9])]
        assert len(got) == 1, (row, lines)
        names = _stack_after(lines, got[0])
        rcv = "tcp_v4_rcv" if fam == socket.AF_INET else "tcp_v6_rcv"
        for fn in (rcv, "tcp_connect", "__sys_connect"):
            assert fn in names, names
    sport, dport = filtered[0]
    rest = f"{'127.0.0.1':>39}:{sport:<6} {'127.0.0.1':>39}:{dport:<6} {'ESTABLISHED':<10} SOCKET_FILTER"
    got = [i for i, ln in enumerate(lines) if ln.endswith(rest) and TIME.match(ln[:9])]
    assert got, (rest, lines)
    assert "tcp_v4_rcv" in _stack_after(lines, got[0])


# ---------------------------------------------------------------- the same scripts under bpftrace 0.17


def both(name: str, workload: Callable[[], None], ports: Callable[[], list[int]]) -> list[str]:
    """stdlib/tools/NAME.pt under bpftrace 0.17 and pytrace at once around
    ``workload``: the same header, and the same lines naming the ports
    ``ports()`` returns once it has run (times masked: each tracer formats
    its own); pytrace's lines."""
    res = run_both(TOOLS / f"{name}.pt", workload)
    bt, pt = res["bpftrace"], res["pytrace"]
    assert ready(bt) and ready(pt), (bt.stderr, pt.stderr)
    assert (bt.rc, pt.rc) == (0, 0), (bt.stderr, pt.stderr)
    keys = ports()

    def mine(body: str) -> list[str]:
        lines = body.split("\n")
        return lines[:2] + sorted(re.sub(r"^\d\d:\d\d:\d\d ", "HH:MM:SS ", ln) for ln in lines[2:]
                                  if any(re.search(rf"[ :]{p}( |$)", ln) for p in keys))
    assert mine(pt.body) == mine(bt.body), f"--- bpftrace ---\n{bt.body}\n--- pytrace ---\n{pt.body}"
    return mine(pt.body)


@needs_bpftrace
def test_tcpconnect_as_bpftrace(listeners: dict[int, socket.socket]) -> None:
    conns: list[tuple[int, str, int, int]] = []
    got = both("tcpconnect", _connects(listeners, conns), lambda: [c[2] for c in conns])
    assert got[:2] == CONNECT_HEAD and len(got) == 2 + 5, got


@needs_bpftrace
def test_tcpretrans_as_bpftrace(listeners: dict[int, socket.socket]) -> None:
    seen: list[tuple[str, int, int, str]] = []
    got = both("tcpretrans", lambda: _lost_data(socket.AF_INET6, "::1", listeners[socket.AF_INET6], seen),
               lambda: [seen[0][1]])
    assert got[:2] == RETRANS_HEAD and len(got) > 2 and all("::1" in ln for ln in got[2:]), got


# ---------------------------------------------------------------- a compiler bug the tools hit

@needs_bpftrace
def test_string_variable_takes_the_widest_assignment() -> None:
    """A string variable first given a short string keeps a longer one given
    later (tcpdrop's $statestr = "-" ... = "ESTABLISHED"): its slot was
    sized by the first assignment, so pytrace printed "ES"."""
    compare('BEGIN { $s = "-"; if (1) { $s = "ESTABLISHED"; } printf("[%s]\\n", $s); '
            '@m[1] = "LONGER"; $t = "-"; $t = @m[1]; printf("[%s]\\n", $t); delete(@m[1]); exit(); }',
            wait_exit=True, expect=["[ESTABLISHED]\n[LONGER]"])
