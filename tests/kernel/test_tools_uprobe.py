"""Debian's uprobe-based bpftrace tools, under bpftrace 0.17 and pytrace at
once, around a workload the test controls: a TLS client and server over a
socketpair plus RSA signing (sslsnoop, ssllatency; they also start a thread:
threadsnoop).  bashreadline and gethostlatency run under both tracers in
tests/kernel/test_stdlib_tools_proc.py, next to the stdlib's ports of them.

The tools see every process of the machine: only the lines of the
workload's pid are compared, with times, pids/tids and latencies masked.
"""

from __future__ import annotations

import re
import subprocess
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
