"""Addresses and ids that scripts name and the compiler turns into constants:
``kaddr("sym")`` (kernel symbols), ``uaddr("sym")`` (a data symbol of the
probe's binary, its st_value as bpftrace 0.17 gives it) and
``cgroupid("path")`` (the inode number of a cgroup directory)."""

from __future__ import annotations

import os


def default_resolve(kind: str, name: str, binary: str | None = None) -> int | None:
    """kaddr()/cgroupid(), and uaddr() in ``binary``: the resolver of --emit
    and of the runtime."""
    if kind == "uaddr":
        from ..elfformat import ElfError
        from .elfsyms import find_symbol
        try:
            sym = find_symbol(binary, name) if binary else None
        except (OSError, ElfError):
            return None
        return sym.vaddr if sym is not None else None
    if kind == "kaddr":
        from .symbols import KernelSymbols
        return KernelSymbols().address(name)
    if kind == "cgroupid":
        try:
            return os.stat(name if name.startswith("/") else f"/sys/fs/cgroup/{name}").st_ino
        except OSError:
            return None
    return None
