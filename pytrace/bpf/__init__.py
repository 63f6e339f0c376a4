"""The pure-Python kernel interface of pytrace's runtime.

Everything that talks to the kernel's BPF and perf subsystems lives here and
only here: raw system calls and attr layouts (``syscalls``), maps (``maps``),
program loading and test runs (``program``), attaching programs to events
(``attach``), reading the ELF objects LLVM's BPF back end emits and linking
them against map fds (``elf``), the ring-buffer consumer (``ringbuf``) and a
tiny instruction encoder for hand-written programs and probes (``insn``).

It uses ctypes and the standard library only: no native build step, no
libbpf, no subprocesses.  Import the submodules directly; this package
re-exports nothing so that importing one part does not pay for the others.
"""
