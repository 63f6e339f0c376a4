"""Finding the file a uprobe/usdt target names, the way the dynamic loader
and the shell would.

``resolve_library`` takes a path (seen from a process's root with ``-p``),
a library's soname or short name ("libc.so.6", "libc", "libssl": the file
the process has mapped, else /etc/ld.so.cache, else the loader's default
directories) or an executable on PATH ("bash").  ``LibraryResolver`` keeps
the parsed ld.so.cache between calls, revalidated by the file's identity;
it lives as long as its owner (there is no module-level cache).
"""

from __future__ import annotations

import os
import re
import struct

# ld.so.cache, "new" format (glibc elf/dl-cache.h): a 48-byte header, then
# nlibs 24-byte entries; key and value are offsets of the soname and path
# strings, counted from the start of this header.
LD_SO_CACHE = "/etc/ld.so.cache"
_CACHE_MAGIC = b"glibc-ld.so.cache1.1"
_CACHE_HEADER = struct.Struct("<20sII")
_CACHE_HEADER_SIZE = 48
_CACHE_ENTRY = struct.Struct("<iIIIQ")
FLAG_ELF_LIBC6, FLAG_TYPE_MASK = 0x0003, 0x00FF
FLAG_X8664_LIB64, FLAG_REQUIRED_MASK = 0x0300, 0xFF00
# Where the loader looks when the cache has no answer (Debian x86_64).
STANDARD_LIBRARY_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                         "/usr/lib", "/lib")
_PROC_ROOT = re.compile(r"^/proc/\d+/root(?=/)")


def _cstr(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset: end if end >= 0 else len(table)].decode("utf-8", "replace")


def parse_ld_so_cache(raw: bytes) -> list[tuple[str, str]]:
    """(soname, path) of each x86-64 libc6 library in an ld.so.cache image,
    in cache order (which ldconfig sorts highest version first)."""
    # Old glibc wrote the "ld.so-1.7.0" table first and the new one after
    # it; current glibc writes only the new one.  Finding the magic handles both.
    start = raw.find(_CACHE_MAGIC)
    if start < 0 or len(raw) < start + _CACHE_HEADER_SIZE:
        return []
    _, nlibs, _strings = _CACHE_HEADER.unpack_from(raw, start)
    out = []
    pos = start + _CACHE_HEADER_SIZE
    for _ in range(nlibs):
        if pos + _CACHE_ENTRY.size > len(raw):
            break
        flags, key, value, _osv, _hwcap = _CACHE_ENTRY.unpack_from(raw, pos)
        pos += _CACHE_ENTRY.size
        if (flags & FLAG_TYPE_MASK) != FLAG_ELF_LIBC6 or \
                (flags & FLAG_REQUIRED_MASK) != FLAG_X8664_LIB64:
            continue  # i386 or x32 libraries the loader would not pick for us
        out.append((_cstr(raw, start + key), _cstr(raw, start + value)))
    return out


def read_ld_so_cache(path: str = LD_SO_CACHE) -> list[tuple[str, str]]:
    with open(path, "rb") as fh:
        return parse_ld_so_cache(fh.read())


def library_match(name: str, soname: str) -> bool:
    """Whether ``soname`` is what the short library name ``name`` means:
    itself, or with a ".so" suffix and version: "libc" -> "libc.so.6",
    "libssl" -> "libssl.so.3" but not NSS's "libssl3.so", "libc.so" -> "libc.so.6"."""
    if soname == name:
        return True
    suffix = "." if name.endswith(".so") or ".so." in name else ".so"
    return soname.startswith(name + suffix)


def is_elf(path: str) -> bool:
    """Whether ``path`` is a readable ELF file (libc.so in a lib directory
    is a linker script, not the library)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def proc_root(path: str) -> str:
    """"/proc/PID/root" when ``path`` lies under a process's root, else ""."""
    m = _PROC_ROOT.match(path)
    return m.group(0) if m else ""


def strip_root(path: str) -> str:
    """``path`` without a leading /proc/PID/root: the name the process
    itself uses, which is what probe names show."""
    return path[len(proc_root(path)):]


def in_root(path: str, pid: int | None) -> str:
    """``path`` as seen by process ``pid`` (through its /proc root, so a
    process in another mount namespace gets its own file), else as is."""
    # /proc paths (/proc/PID/exe) are the kernel's, the same from every root.
    if pid is not None and path.startswith("/") and not path.startswith("/proc/"):
        rooted = f"/proc/{pid}/root{path}"
        if os.path.exists(rooted):
            return rooted
    return path


def mapped_library(name: str, pid: int) -> str | None:
    """The file a running process has mapped for library ``name``: exactly
    what its loader chose, whatever LD_LIBRARY_PATH or rpath said."""
    try:
        with open(f"/proc/{pid}/maps") as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    path = parts[5].rstrip("\n")
                    if library_match(name, os.path.basename(path)):
                        return in_root(path, pid)
    except OSError:
        pass
    return None


def resolve_library(name: str, pid: int | None = None, *,
                    cache: list[tuple[str, str]] | None = None) -> str | None:
    """The file a uprobe/usdt target names, found the way the dynamic loader
    and the shell would: a path (seen from ``pid``'s root when given); a
    library by soname or short name ("libc.so.6", "libc", "libssl") from the
    process's mappings, /etc/ld.so.cache (``cache``: parsed entries, else
    read now), then the standard directories; an executable on PATH
    ("bash").  None when nothing is found."""
    if not name:
        return None
    if "/" in name:
        found = in_root(name, pid)
        return found if os.path.exists(found) else None
    if pid is not None:
        mapped = mapped_library(name, pid)
        if mapped is not None:
            return mapped
    if cache is None:
        try:
            cache = read_ld_so_cache()
        except OSError:
            cache = []
    for soname, path in cache:
        if library_match(name, soname) and os.path.exists(path):
            return in_root(path, pid)
    # After a cache miss the loader tries its default directories itself
    # (a library installed without running ldconfig is still found).
    for d in STANDARD_LIBRARY_DIRS:
        try:
            files = sorted((f for f in os.listdir(d) if library_match(name, f)),
                           key=_version_key, reverse=True)
        except OSError:
            continue
        for f in files:
            path = os.path.join(d, f)
            if is_elf(path):
                return in_root(path, pid)
    for d in os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":"):
        if not d:
            continue
        cand = in_root(os.path.join(d, name), pid)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _version_key(soname: str) -> tuple[int, ...]:
    # "libfoo.so.1.10" sorts above "libfoo.so.1.9" and above "libfoo.so".
    return tuple(int(p) for p in soname.split(".so", 1)[-1].split(".") if p.isdigit())


class LibraryResolver:
    """``resolve_library`` with the parsed ld.so.cache kept between calls
    and re-read when the file's (device, inode, mtime) changes."""

    def __init__(self, cache_path: str = LD_SO_CACHE) -> None:
        self.cache_path = cache_path
        self._cache: tuple[tuple[int, int, int], list[tuple[str, str]]] | None = None

    def entries(self) -> list[tuple[str, str]] | None:
        """The parsed cache, or None when it cannot be read."""
        try:
            st = os.stat(self.cache_path)
            key = (st.st_dev, st.st_ino, st.st_mtime_ns)
            if self._cache is None or self._cache[0] != key:
                self._cache = (key, read_ld_so_cache(self.cache_path))
            return self._cache[1]
        except OSError:
            return None

    def resolve(self, name: str, pid: int | None = None) -> str | None:
        if "/" in name:  # a path needs no cache
            return resolve_library(name, pid, cache=[])
        return resolve_library(name, pid, cache=self.entries())
