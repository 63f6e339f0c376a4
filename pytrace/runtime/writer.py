"""Writing a session's output: buffered text, large writes resumed after
partial writes, flushing per batch or per line, and a reader that went
away (``pytrace ... | head``) ending the output quietly.

A mixin of ``Session``: it uses the session's ``out``, ``options``,
``output_closed`` and ``_held`` (output kept back until every probe is
attached).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, TextIO

if TYPE_CHECKING:
    from .session import RunOptions

# Writes this long bypass Python's buffered writer (see _write_direct).
DIRECT_WRITE_MIN = 4096


class OutputWriter:
    """Output for the Session."""

    out: TextIO
    options: "RunOptions"
    output_closed: bool
    _held: "list[str | Callable[[], None]] | None"

    def _flush(self) -> None:
        if self.options.buffering != "full" and not self.output_closed:
            try:
                self.out.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _write(self, text: str) -> None:
        if self._held is not None:
            self._held.append(text)
            return
        if self.output_closed:
            return
        try:
            if len(text) >= DIRECT_WRITE_MIN and self._out_fd is not None:
                self._write_direct(text)
            else:
                self.out.write(text)
            if self._flush_each:
                self.out.flush()
        except BrokenPipeError:
            self._reader_gone()

    @property
    def _out_fd(self) -> int | None:
        """The output's file descriptor, None for a stream without one."""
        if not hasattr(self, "_out_fd_cached"):
            try:
                self._out_fd_cached: int | None = self.out.fileno()
            except (AttributeError, OSError, ValueError):
                self._out_fd_cached = None
        return self._out_fd_cached

    def _write_direct(self, text: str) -> None:
        """A large write (a batch of printf lines) with os.write, resuming
        after partial writes.  CPython 3.11's buffered writer drops the rest
        of a large write when a signal handler runs while it is blocked on a
        full pipe (Ctrl-C while the reader lags: the half-written line and
        everything after it were lost without a word)."""
        self.out.flush()
        data = memoryview(text.encode(getattr(self.out, "encoding", None) or "utf-8",
                                      getattr(self.out, "errors", None) or "strict"))
        fd = self._out_fd
        assert fd is not None
        while data:
            data = data[os.write(fd, data):]

    def _reader_gone(self) -> None:
        """The output's reader went away (pytrace ... | head): stop tracing
        quietly, as bpftrace does when SIGPIPE ends it."""
        self.output_closed = True
        self._stop()

    @property
    def _flush_each(self) -> bool:
        if not hasattr(self, "_flush_each_cached"):
            mode = self.options.buffering
            self._flush_each_cached = mode in ("line", "none") or (mode is None and self._isatty())
        return self._flush_each_cached

    def _isatty(self) -> bool:
        try:
            return self.out.isatty()
        except (ValueError, OSError):
            return False
