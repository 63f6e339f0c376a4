"""Debian's uprobe-based bpftrace tools, under bpftrace 0.17 and pytrace at
once, around a workload the test controls: an interactive bash driven
through a pty (bashreadline), a program resolving names (gethostlatency), a
TLS client and server over a socketpair plus RSA signing (sslsnoop,
ssllatency; they also start a thread: threadsnoop).

The tools see every process of the machine: only the lines of the
workload's pid are compared, with times, pids/tids and latencies masked.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.cprog import build_c

from .difflib_pt import column, have_bpftrace, pick, pinned, same, tool_outputs

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

# bpftrace 0.17 drops a uprobe attach point whose function the binary lacks,
# silently, and attaches the rest (it fails only when no probe is left:
# "No probes to attach"); pytrace drops it too, with a warning on stderr.
# These tools name such functions on Debian 12: libcrypto.so.3 exports no
# rsa_ossl_*/ossl_ecdsa_*/ecdh_* (local symbols: "need debug symbol", the
# tools say), and glibc 2.34 moved pthread_create from libpthread.so.0 into
# libc (test_tool_scripts.py ABSENT_FUNCTIONS).


# ---------------------------------------------------------------- bashreadline


class _Pty:
    """The master side of a pty: read until a marker, or until the other
    side has gone (reads fail with EIO then)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = b""

    def _read(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for output; False once the other side is gone."""
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: no process has the terminal open any more
            return False
        self.seen += chunk
        return bool(chunk)

    def until(self, marker: bytes, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.seen and time.monotonic() < deadline and self._read(0.1):
            pass
        assert marker in self.seen, f"no {marker!r} in {self.seen!r}"
        self.seen = self.seen.split(marker, 1)[1]

    def until_closed(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self._read(0.1):
            assert time.monotonic() < deadline, f"the terminal stayed open: {self.seen!r}"


def _drive_bash(lines: list[bytes]) -> int:
    """Type ``lines`` into an interactive bash on a pty, each after its
    prompt (the last must end bash); return bash's pid once it has exited."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: bash, pinned like every workload here
        try:
            os.sched_setaffinity(0, {0})
            os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"],
                      {"PATH": "/usr/bin:/bin", "TERM": "dumb", "PS1": "ptprompt$ "})
        finally:
            os._exit(127)
    term = _Pty(fd)
    try:
        for line in lines:
            term.until(b"ptprompt$ ")
            os.write(fd, line + b"\n")
        term.until_closed()
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid


def test_bashreadline() -> None:
    tag = f"ptrl{os.getpid()}"
    typed = [f"echo {tag}".encode(), f"true {tag}  two words".encode(), f"true {tag} {'w' * 80}".encode(), b"exit"]
    bash: list[int] = []
    bt, pt = tool_outputs("bashreadline", lambda: bash.append(_drive_bash(typed)))
    keep = lambda ln: column(ln, 1) == str(bash[0])  # noqa: E731
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=bash, times=True, sort_ties=False)
    assert got[:2] == ["Tracing bash commands... Hit Ctrl-C to end.", "TIME      PID    COMMAND"]
    # str(retval): 63 bytes of a longer line.
    assert [ln.split(None, 2)[2] for ln in got[2:] if ln] == [t.decode()[:63] for t in typed]


# ---------------------------------------------------------------- gethostlatency

GETHOST_C = r"""
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
/* Names that resolve without DNS: numeric addresses, and localhost from /etc/hosts. */
int main(int argc, char **argv) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_flags = AI_NUMERICHOST;
    for (int i = 1; i < argc; i++)
        if (getaddrinfo(argv[i], NULL, &hints, &res) == 0)
            freeaddrinfo(res);
    gethostbyname("localhost");
    gethostbyname2("localhost", AF_INET);
    return 0;
}
"""


def test_gethostlatency(tmp_path: Path) -> None:
    exe = build_c(tmp_path, GETHOST_C, name="ptgethost")
    pids: list[int] = []

    def work() -> None:
        # A name that is not numeric fails at once under AI_NUMERICHOST (no DNS).
        p = subprocess.Popen([str(exe), "127.0.0.1", "127.0.0.2", "h" * 80], preexec_fn=pinned())
        pids.append(p.pid)
        assert p.wait() == 0
    bt, pt = tool_outputs("gethostlatency", work)
    keep = lambda ln: column(ln, 1) == str(pids[0])  # noqa: E731
    for body in (bt, pt):  # LATms: none of these lookups waits for anything
        assert all(0 <= int(column(ln, 3)) < 5_000 for ln in pick(body, 2, keep)[2:] if ln), body
    # LATms: each tracer times the call with its own probes.
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=pids, times=True, sort_ties=False,
               masks=[(r"(?m)^(HH:MM:SS  PID +ptgethost +) +\d+ ", r"\1LAT ")])
    assert got[1] == "TIME      PID    COMM              LATms HOST"
    assert [ln.split()[1:] for ln in got[2:] if ln] == [["PID", "ptgethost", "LAT", h] for h in
                                                        ("127.0.0.1", "127.0.0.2", "h" * 63, "localhost",
                                                         "localhost")]


# ---------------------------------------------------------------- TLS

SSL_C = r"""
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* OpenSSL 3's ABI, declared here: only the run-time libraries need be installed. */
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_method_st SSL_METHOD;
typedef struct rsa_st RSA;
typedef struct bignum_st BIGNUM;
const SSL_METHOD *TLS_client_method(void);
const SSL_METHOD *TLS_server_method(void);
SSL_CTX *SSL_CTX_new(const SSL_METHOD *method);
long SSL_CTX_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg);
int SSL_CTX_set_cipher_list(SSL_CTX *ctx, const char *list);
SSL *SSL_new(SSL_CTX *ctx);
int SSL_set_fd(SSL *s, int fd);
int SSL_connect(SSL *s);
int SSL_accept(SSL *s);
int SSL_read(SSL *s, void *buf, int num);
int SSL_write(SSL *s, const void *buf, int num);
RSA *RSA_new(void);
BIGNUM *BN_new(void);
int BN_set_word(BIGNUM *a, unsigned long w);
int RSA_generate_key_ex(RSA *rsa, int bits, BIGNUM *e, void *cb);
int RSA_sign(int type, const unsigned char *m, unsigned int m_len, unsigned char *sigret, unsigned int *siglen,
             RSA *rsa);
int RSA_verify(int type, const unsigned char *m, unsigned int m_len, const unsigned char *sigbuf,
               unsigned int siglen, RSA *rsa);
#define SSL_CTRL_SET_MAX_PROTO_VERSION 124
#define TLS1_2_VERSION 0x0303
#define NID_sha256 672

static SSL_CTX *server_ctx;
static int server_fd;

static SSL_CTX *context(const SSL_METHOD *method) {
    SSL_CTX *ctx = SSL_CTX_new(method);
    /* TLS 1.2 with anonymous ECDH: a handshake that needs no certificate. */
    SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MAX_PROTO_VERSION, TLS1_2_VERSION, NULL);
    SSL_CTX_set_cipher_list(ctx, "aNULL:@SECLEVEL=0");
    return ctx;
}

static void *pt_tls_server(void *arg) {
    char buf[64];
    SSL *s = SSL_new(server_ctx);
    SSL_set_fd(s, server_fd);
    if (SSL_accept(s) != 1)
        return arg;
    int n = SSL_read(s, buf, sizeof buf);
    SSL_write(s, buf, n > 0 ? n : 1);
    shutdown(server_fd, SHUT_WR);  /* EOF without close_notify: the client's next read fails */
    return NULL;
}

int main(void) {
    int sv[2];
    char buf[64];
    pthread_t t;
    void *failed;
    signal(SIGPIPE, SIG_IGN);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 2;
    server_ctx = context(TLS_server_method());
    server_fd = sv[1];
    pthread_create(&t, NULL, pt_tls_server, "server failed");
    SSL *c = SSL_new(context(TLS_client_method()));
    SSL_set_fd(c, sv[0]);
    if (SSL_connect(c) != 1)
        return 3;
    SSL_write(c, "ping", 4);
    SSL_read(c, buf, sizeof buf);
    pthread_join(t, &failed);
    if (failed)
        return 4;
    if (SSL_read(c, buf, sizeof buf) > 0)
        return 6;
    RSA *rsa = RSA_new();
    BIGNUM *e = BN_new();
    unsigned char md[32] = {1, 2, 3}, sig[512];
    unsigned int siglen = 0;
    BN_set_word(e, 65537);
    RSA_generate_key_ex(rsa, 1024, e, NULL);
    RSA_sign(NID_sha256, md, sizeof md, sig, &siglen, rsa);
    if (RSA_verify(NID_sha256, md, sizeof md, sig, siglen, rsa) != 1)
        return 5;
    printf("done\n");
    fflush(stdout);
    /* Alive until the test closes stdin: bpftrace names a uprobe's func
       (a usym) only while its process lives, and the tools print theirs at exit. */
    read(0, buf, 1);
    return 0;
}
"""


@pytest.fixture(scope="module")
def ptssl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TLS program, linked against the libraries the tools probe
    (libssl.so.3 and libcrypto.so.3, found by their sonames)."""
    d = tmp_path_factory.mktemp("ssl")
    for lib in ("libssl.so.3", "libcrypto.so.3"):
        if not any(Path(p, lib).exists() for p in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")):
            pytest.skip(f"needs {lib}")
    return build_c(d, SSL_C, name="ptssl",
                   flags=("-O1", "-pthread", "-Wl,--no-as-needed", "-l:libssl.so.3", "-l:libcrypto.so.3"))


class TlsRun:
    """The workload: start ptssl (pinned), wait until it has done its TLS
    exchange and RSA operations; it lives on until close()."""

    def __init__(self, exe: Path) -> None:
        self.exe = exe
        self.proc: subprocess.Popen[bytes] | None = None

    def __call__(self) -> None:
        self.proc = subprocess.Popen([str(self.exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     preexec_fn=pinned())
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"done\n", f"ptssl failed: {self.proc.wait()}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the tracers did not both start"
        return self.proc.pid

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            assert self.proc.wait(timeout=10) == 0


@pytest.fixture
def tls(ptssl: Path) -> Iterator[TlsRun]:
    run = TlsRun(ptssl)
    yield run
    run.close()


def _tids(text: str, pid: int) -> list[int]:
    """The workload's thread ids: its pid and the ids of its threads, read
    from the TID column (pid + 1 is the server thread but ids may wrap)."""
    return sorted({int(m) for m in re.findall(r"(?m)^\d+ +(\d+) +ptssl ", text)} | {pid})


def test_sslsnoop(tls: TlsRun) -> None:
    bt, pt = tool_outputs("sslsnoop", tls)
    keep = lambda ln: column(ln, 2) == "ptssl"  # noqa: E731
    for body in (bt, pt):  # microseconds: since the tracer started, and each call's
        times = [(int(column(ln, 0)), int(column(ln, 3))) for ln in pick(body, 2, keep)[2:] if ln]
        assert all(0 <= t < 30_000_000 and 0 <= lat < 5_000_000 for t, lat in times), times
    # TIME(us) is each tracer's elapsed time, LAT(us) its own timing of the call.
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=_tids(bt, tls.pid), sort_ties=False,
               masks=[(r"(?m)^\d+ +(PID +ptssl) +\d+ ", r"US \1 LAT ")])
    assert got[1] == "TIME(us)   TID      COMM     LAT(us)   RET FUNC"
    calls = [ln.split()[4:] for ln in got[2:] if ln]
    # The last SSL_read meets EOF without close_notify: 0.
    assert sorted(calls) == sorted([["1", "SSL_do_handshake"]] * 2 + [["4", "SSL_read"]] * 2 +
                                   [["4", "SSL_write"]] * 2 + [["0", "SSL_read"], ["1", "RSA_sign"],
                                                               ["1", "RSA_verify"]])


def _latency_shape(body: str) -> list[str]:
    """ssllatency's maps with the latencies masked: each lhist becomes its
    key and total count (how many calls; the buckets are latencies), each
    stats line its count.  Stats lines are ordered by average latency, and
    hist entries with the same total by their key's raw bytes (for a usym a
    run-time address): those runs are sorted here."""
    lines = body.split("\n")
    out: list[str] = []
    hists: list[int] = []  # indexes in out of the current run of one map's hist entries
    i = 0
    while i < len(lines):
        ln = lines[i]
        head = re.match(r"^(@\w+)\[.*\]: $", ln)
        if head:
            total = 0
            i += 1
            while i < len(lines) and (m := re.match(r"^[\[(].*\) +(\d+) \|", lines[i])):
                total += int(m.group(1))
                i += 1
            if hists and not out[hists[-1]].startswith(head.group(1) + "["):
                _sort_run(out, hists)
            hists.append(len(out))
            out.append(f"{ln[:-2]}: total {total}")
            continue
        stat = re.match(r"^(@\w+\[.*\]): count (\d+), average -?\d+, total -?\d+$", ln)
        if stat:
            ln = f"{stat.group(1)}: count {stat.group(2)}"
        elif ln:
            _sort_run(out, hists)
        out.append(ln)
        i += 1
    _sort_run(out, hists)
    # The stats map's lines (by average latency): as one sorted run.
    st = [k for k, ln in enumerate(out) if ln.startswith("@stat")]
    for k, ln in zip(st, sorted(out[k] for k in st)):
        out[k] = ln
    return out


def _sort_run(out: list[str], idx: list[int]) -> None:
    """Sort the hist entries at ``idx`` by (total, text) in place; empty idx."""
    def total(s: str) -> int:
        return int(s.rsplit(" ", 1)[1])
    for k, ln in zip(idx, sorted((out[k] for k in idx), key=lambda s: (total(s), s))):
        out[k] = ln
    idx.clear()


def test_ssllatency(tls: TlsRun) -> None:
    bt, pt = tool_outputs("ssllatency", tls)
    a, b = _latency_shape(bt), _latency_shape(pt)
    assert b == a, f"--- bpftrace ---\n{bt}\n--- pytrace ---\n{pt}"
    assert b[:3] == ["Tracing SSL/TLS handshake... Hit Ctrl-C to end.", "", "Latency distribution in microsecond:"]
    for name, n in (("SSL_do_handshake", 2), ("SSL_read", 2), ("SSL_write", 2), ("RSA_sign", 1), ("RSA_verify", 1)):
        assert f"@hist[{name}]: total {n}" in b and f"@stat[{name}]: count {n}" in b
    # (int8)retval < 1: the read that met EOF.
    assert "@histF[SSL_read]: total 1" in b and "@statF[SSL_read]: count 1" in b


def test_threadsnoop(tls: TlsRun) -> None:
    """threadsnoop probes libpthread:pthread_create: glibc 2.34 moved it into
    libc, so on Debian 12 bpftrace attaches nothing there and prints only
    its header; the same must come out of pytrace."""
    bt, pt = tool_outputs("threadsnoop", tls)
    # Nothing can print but BEGIN: the whole outputs are compared.
    got = same(bt.split("\n"), pt.split("\n"), sort_ties=False)
    assert got[0] == "TIME(ms)   PID    COMM             FUNC"
    assert not any(got[1:]), "pthread_create is in libc, not in libpthread.so.0"
