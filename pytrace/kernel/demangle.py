"""C++ symbol demangling through libstdc++'s ``__cxa_demangle``.

The C++ runtime already carries a complete, correct Itanium-ABI demangler,
so we call it through ctypes instead of adding a dependency or writing a
demangler.  The buffer ``__cxa_demangle`` returns comes from ``malloc`` and
is released with the process's libc ``free``.  When libstdc++ cannot be
loaded, every name is reported as not demangleable (``None``): callers fall
back to the raw symbol name.
"""

from __future__ import annotations

import ctypes
import functools

LIBSTDCXX = "libstdc++.so.6"
_STATUS_OK = 0


class Demangler:
    """A handle on ``__cxa_demangle``; ``available`` is False when libstdc++
    (or libc's ``free``) could not be loaded."""

    def __init__(self, library: str = LIBSTDCXX) -> None:
        self._demangle = None
        self._free = None
        try:
            cxx = ctypes.CDLL(library)
            # The process's own libc: the one libstdc++'s malloc calls resolve to.
            libc = ctypes.CDLL(None)
            # getattr, not cxx.__cxa_demangle: inside a class body Python
            # mangles dunder-prefixed names to cxx._Demangler__cxa_demangle.
            fn = getattr(cxx, "__cxa_demangle")
            free = libc.free
        except (OSError, AttributeError):
            return
        # c_void_p, not c_char_p, as restype: ctypes would copy a c_char_p
        # result into a bytes object and lose the pointer we must free.
        fn.restype = ctypes.c_void_p
        fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                       ctypes.POINTER(ctypes.c_int)]
        free.restype = None
        free.argtypes = [ctypes.c_void_p]
        self._demangle, self._free = fn, free

    @property
    def available(self) -> bool:
        return self._demangle is not None

    def __call__(self, name: str) -> str | None:
        """The demangled form of ``name``, or None when it is not a mangled
        C++ name.  A symbol version suffix (``@GLIBCXX_3.4``, ``@@...``, as
        found in .symtab) is kept after the demangled name."""
        # __cxa_demangle also accepts bare *type* encodings ("i" -> "int"),
        # so anything that is not a function/object name (_Z prefix) must be
        # filtered out here or plain C names like "f" would turn into "float".
        if self._demangle is None or self._free is None or not name.startswith("_Z"):
            return None
        base, at, version = name.partition("@")
        status = ctypes.c_int(-1)
        try:
            ptr = self._demangle(base.encode(), None, None, ctypes.byref(status))
        except UnicodeEncodeError:
            return None
        if not ptr:
            return None
        try:
            if status.value != _STATUS_OK:
                return None
            text = ctypes.string_at(ptr).decode("utf-8", "replace")
        finally:
            self._free(ptr)
        return text + at + version if at else text


@functools.cache
def default_demangler() -> Demangler:
    """One process-wide Demangler: the library handles it wraps are process
    global anyway (dlopen reference counts), so loading them once is only a
    cache of an immutable resource, never state that changes."""
    return Demangler()


def demangle(name: str) -> str | None:
    """``name`` demangled, or None when it is not mangled or libstdc++ is absent."""
    return default_demangler()(name)


def strip_parameters(demangled: str) -> str:
    """A demangled function name without its parameter list and what follows
    it (cv-qualifiers, ``[clone .cold]``): ``ns::f(int) const`` -> ``ns::f``.
    This is the form bpftrace matches ``uprobe:bin:cpp:ns::f`` against."""
    # Scan back from the last ')' to its matching '(': nested parentheses
    # inside the list ("std::function<void ()>") are skipped by the depth
    # count, and a trailing " const" or " [clone .cold]" has none.
    end = demangled.rfind(")")
    depth = 0
    for i in range(end, -1, -1):
        if demangled[i] == ")":
            depth += 1
        elif demangled[i] == "(":
            depth -= 1
            if depth == 0:
                return demangled[:i]
    return demangled
