"""LLVM's side of code generation: IR text in, BPF ELF object (or assembly) out.

Everything that needs ``llvmlite.binding`` (the native LLVM library) lives
here, for two reasons:

* LLVM's BPF back end reports some problems (a stack frame over 512 bytes
  after its own spills, dynamic allocas, too many call arguments) by calling
  ``exit()`` from C, which Python cannot catch.  The compiler checks what it
  can beforehand; compiling in a forked child keeps whatever slips through
  from killing pytrace: the child dies instead and the parent reports it.
* Start-up: importing ``llvmlite.binding`` and initialising the BPF target
  costs ~40-50 ms.  :class:`CompilerProcess` forks the child as soon as the
  command line is read; it loads LLVM while the parent imports the front end,
  parses and checks the script and builds the IR (two CPUs work at once), then
  waits on a pipe for the IR text.
"""

from __future__ import annotations

import os
import signal
from functools import lru_cache
from typing import Any

# cpu v3: JMP32 and atomics, no sdiv (kernels before 6.6 lack v4).
CPU = "v3"
TRIPLE = "bpfel"


class CompileFailed(Exception):
    """The child compiling the IR died or reported an error."""


@lru_cache(maxsize=1)
def target_machine() -> Any:
    import llvmlite.binding as llvm
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    return llvm.Target.from_triple(TRIPLE).create_target_machine(cpu=CPU, opt=2)


def optimize(ir_text: str) -> Any:
    """Parse, verify and optimise (LLVM's O2 pipeline) one module's IR."""
    import llvmlite.binding as llvm
    tm = target_machine()
    mod = llvm.parse_assembly(ir_text)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=2)
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return mod


def emit_object(ir_text: str) -> bytes:
    return bytes(target_machine().emit_object(optimize(ir_text)))


def emit_assembly(ir_text: str) -> str:
    return str(target_machine().emit_assembly(optimize(ir_text)))


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _read_exactly(fd: int, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class CompilerProcess:
    """A forked child that compiles one module's IR to a BPF object.

    ``start()`` forks at once; the child initialises LLVM and blocks reading
    the IR (length-prefixed) from a pipe.  ``compile()`` sends the
    text and returns the object.  A child that is never used is killed by
    ``close()`` (or sees end of file when the parent dies)."""

    def __init__(self, pid: int, request_fd: int, reply_fd: int) -> None:
        self.pid = pid
        self._request: int | None = request_fd
        self._reply: int | None = reply_fd

    @classmethod
    def start(cls) -> "CompilerProcess":
        # CLOEXEC: a -c command must not keep these pipes open after exec.
        req_r, req_w = os.pipe2(os.O_CLOEXEC)
        rep_r, rep_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, reported through its exit status
            code = 0
            try:
                # Ctrl-C reaches the whole process group; the parent decides,
                # and closing the pipe is what ends the child.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                os.close(req_w)
                os.close(rep_r)
                target_machine()
                # Length-prefixed: other children forked later (a -c command
                # held before exec) also hold the write end, so end of file
                # cannot mark the end of the request.
                header = _read_exactly(req_r, 8)
                if len(header) == 8:
                    text = _read_exactly(req_r, int.from_bytes(header, "little")).decode()
                    _write_all(rep_w, emit_object(text))
            except BaseException:  # noqa: BLE001 - any failure is reported by the exit code
                code = 2
            finally:
                os._exit(code)
        os.close(req_r)
        os.close(rep_w)
        return cls(pid, req_w, rep_r)

    def compile(self, ir_text: str) -> bytes:
        """The object for ``ir_text``; CompileFailed if the child could not
        (LLVM aborted, or the child was gone)."""
        if self._request is None or self._reply is None:
            raise CompileFailed("the compiler process was already used")
        data = ir_text.encode()
        try:
            _write_all(self._request, len(data).to_bytes(8, "little") + data)
        except BrokenPipeError:
            pass  # the child is gone: its status says why
        os.close(self._request)
        self._request = None
        data = _read_all(self._reply)
        os.close(self._reply)
        self._reply = None
        status = self._reap()
        if status != 0 or not data:
            raise CompileFailed(f"exit status {status}")
        return data

    def _reap(self) -> int:
        pid, self.pid = self.pid, 0
        if not pid:
            return -1
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return -1
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """Release an unused child: it is killed, since end of file on its
        request pipe may never come (see start())."""
        if self.pid and self._request is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for name in ("_request", "_reply"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        self._reap()

    def __enter__(self) -> "CompilerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
