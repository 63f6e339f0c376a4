"""The command of ``-c``: forked at once, held before exec until every probe
is attached (so its first instructions are traced), stopped as bpftrace
stops it when tracing ends first."""

from __future__ import annotations

import os
import signal

from ..records import dataclass


@dataclass
class Child:
    """A command started by -c, held before exec until every probe is attached."""

    pid: int
    release_fd: int
    reaped: bool = False

    @classmethod
    def spawn(cls, command: str) -> "Child":
        import shlex
        argv = shlex.split(command)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: wait for the go-ahead, then exec; never return into pytrace
            try:
                os.close(w)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                if os.read(r, 1):  # EOF: pytrace gave up before attaching
                    os.execvp(argv[0], argv)
            except OSError as exc:
                os.write(2, f"pytrace: cannot run {argv[0]}: {exc.strerror}\n".encode())
            except BaseException:
                pass
            finally:
                os._exit(127)
        os.close(r)
        return cls(pid, w)

    def release(self) -> None:
        if self.release_fd >= 0:
            os.write(self.release_fd, b"x")
            os.close(self.release_fd)
            self.release_fd = -1

    def exited(self) -> bool:
        if self.reaped:
            return True
        try:
            pid, _status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.reaped = True
            return True
        if pid == self.pid:
            self.reaped = True
        return self.reaped

    def stop(self) -> None:
        """End the child if it still runs (as bpftrace does when tracing stops
        first): never started: SIGKILL; running: SIGTERM, then SIGKILL after
        half a second.  Reaps it either way."""
        import time
        if self.reaped:
            return
        if self.release_fd >= 0:
            os.close(self.release_fd)
            self.release_fd = -1
            self._signal(signal.SIGKILL)
        elif not self.exited():
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + 0.5
            while not self.exited() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not self.exited():
                self._signal(signal.SIGKILL)
        if not self.reaped:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.reaped = True

    def _signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass
