"""Kernel knowledge the stdlib's tools share: syscall numbers and argument
lists, errno and signal names, and the decoding of the flag words syscalls
take (open flags, file modes, mmap prot/flags, ``AT_*`` fds and flags).

Everything here is a pure function of its arguments, except the two readers
of tracefs (``syscall_params``, ``tracepoint_syscalls``), which take the
tracefs root as a parameter.  Nothing is cached at module level.  The API,
for tools such as ``strace`` and ``audit``::

    syscall_names() -> dict[int, str]        number -> name (x86_64)
    syscall_name(nr) -> str                  "openat", or "syscall_999"
    syscall_number(name) -> int | None       257 for "openat" (and for "sys_enter_openat")
    tracepoint_syscall(event) -> str         "sys_enter_newstat" -> "stat"
    tracepoint_syscalls(root) -> {name: ev}  the syscalls this kernel has tracepoints for
    syscall_params(root, name) -> [Param]    (type, name) of each argument, from the tracepoint
    parse_syscall_format(text) -> [Param]    the same from a format file's text
    errno_name(e), strerror(e), is_error_return(ret), format_return(ret)
    signal_name(sig)
    open_flags(f), file_mode(m), stat_mode(m), access_mode(m), at_fd(fd), at_flags(f),
    mmap_prot(p), mmap_flags(f), flag_names(value, table, zero)

Where the syscall numbers come from (investigated on Linux 6.18):
the per-syscall tracepoints (``syscalls:sys_enter_X``) name every syscall
this kernel has and give its argument names and C types, but not its
number: the number is only in each record (``__syscall_nr``), at run time.
The kernel's own table cannot be read either: ``sys_call_table`` is a data
symbol, absent from /proc/kallsyms without CONFIG_KALLSYMS_ALL (and since
6.9 x86 dispatches through the ``x64_sys_call`` switch), the syscall
metadata section (``__start_syscalls_metadata``) is init data freed after
boot, and there is no /proc/kcore.  x86_64 syscall numbers are, however, a
stable ABI: arch/x86/entry/syscalls/syscall_64.tbl only ever appends.  So
the numbers below are that table (common/64-bit entries, through Linux
6.18), the names the tracepoints use are mapped onto it
(``tracepoint_syscall``), and the tests check it both against the installed
<asm/unistd_64.h> and against ``__syscall_nr`` of records the kernel emits.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import signal as _signal
from typing import NamedTuple

# arch/x86/entry/syscalls/syscall_64.tbl (common and 64 entries), as runs of
# consecutive numbers: (first number, names in order).
_SYSCALL_RUNS: tuple[tuple[int, str], ...] = (
    (0, """read write open close stat fstat lstat poll lseek mmap mprotect munmap brk rt_sigaction
        rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe select sched_yield mremap
        msync mincore madvise shmget shmat shmctl dup dup2 pause nanosleep getitimer alarm setitimer getpid
        sendfile socket connect accept sendto recvfrom sendmsg recvmsg shutdown bind listen getsockname
        getpeername socketpair setsockopt getsockopt clone fork vfork execve exit wait4 kill uname semget semop
        semctl shmdt msgget msgsnd msgrcv msgctl fcntl flock fsync fdatasync truncate ftruncate getdents getcwd
        chdir fchdir rename mkdir rmdir creat link unlink symlink readlink chmod fchmod chown fchown lchown
        umask gettimeofday getrlimit getrusage sysinfo times ptrace getuid syslog getgid setuid setgid geteuid
        getegid setpgid getppid getpgrp setsid setreuid setregid getgroups setgroups setresuid getresuid
        setresgid getresgid getpgid setfsuid setfsgid getsid capget capset rt_sigpending rt_sigtimedwait
        rt_sigqueueinfo rt_sigsuspend sigaltstack utime mknod uselib personality ustat statfs fstatfs sysfs
        getpriority setpriority sched_setparam sched_getparam sched_setscheduler sched_getscheduler
        sched_get_priority_max sched_get_priority_min sched_rr_get_interval mlock munlock mlockall munlockall
        vhangup modify_ldt pivot_root _sysctl prctl arch_prctl adjtimex setrlimit chroot sync acct
        settimeofday mount umount2 swapon swapoff reboot sethostname setdomainname iopl ioperm create_module
        init_module delete_module get_kernel_syms query_module quotactl nfsservctl getpmsg putpmsg afs_syscall
        tuxcall security gettid readahead setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr
        llistxattr flistxattr removexattr lremovexattr fremovexattr tkill time futex sched_setaffinity
        sched_getaffinity set_thread_area io_setup io_destroy io_getevents io_submit io_cancel get_thread_area
        lookup_dcookie epoll_create epoll_ctl_old epoll_wait_old remap_file_pages getdents64 set_tid_address
        restart_syscall semtimedop fadvise64 timer_create timer_settime timer_gettime timer_getoverrun
        timer_delete clock_settime clock_gettime clock_getres clock_nanosleep exit_group epoll_wait epoll_ctl
        tgkill utimes vserver mbind set_mempolicy get_mempolicy mq_open mq_unlink mq_timedsend
        mq_timedreceive mq_notify mq_getsetattr kexec_load waitid add_key request_key keyctl ioprio_set
        ioprio_get inotify_init inotify_add_watch inotify_rm_watch migrate_pages openat mkdirat mknodat
        fchownat futimesat newfstatat unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat pselect6
        ppoll unshare set_robust_list get_robust_list splice tee sync_file_range vmsplice move_pages utimensat
        epoll_pwait signalfd timerfd_create eventfd fallocate timerfd_settime timerfd_gettime accept4
        signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv pwritev rt_tgsigqueueinfo
        perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64 name_to_handle_at open_by_handle_at
        clock_adjtime syncfs sendmmsg setns getcpu process_vm_readv process_vm_writev kcmp finit_module
        sched_setattr sched_getattr renameat2 seccomp getrandom memfd_create kexec_file_load bpf execveat
        userfaultfd membarrier mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free
        statx io_pgetevents rseq uretprobe uprobe"""),
    # 337..423 are unused on x86_64: 424+ are the numbers shared by every
    # architecture since Linux 5.1.
    (424, """pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount fsopen
        fsconfig fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2 process_madvise
        epoll_pwait2 mount_setattr quotactl_fd landlock_create_ruleset landlock_add_rule
        landlock_restrict_self memfd_secret process_mrelease futex_waitv set_mempolicy_home_node cachestat
        fchmodat2 map_shadow_stack futex_wake futex_wait futex_requeue statmount listmount lsm_get_self_attr
        lsm_set_self_attr lsm_list_modules mseal setxattrat getxattrat listxattrat removexattrat
        open_tree_attr file_getattr file_setattr"""),
)

# Tracepoints named after the kernel's sys_X function where it differs from
# the syscall's name (SYSCALL_DEFINE(newstat) implements stat(2), ...).
TRACEPOINT_ALIASES: dict[str, str] = {
    "newstat": "stat", "newfstat": "fstat", "newlstat": "lstat", "newuname": "uname",
    "sendfile64": "sendfile", "umount": "umount2",
}


def syscall_names() -> dict[int, str]:
    """Every x86_64 syscall number this table knows, mapped to its name."""
    table: dict[int, str] = {}
    for first, names in _SYSCALL_RUNS:
        for i, name in enumerate(names.split()):
            table[first + i] = name
    return table


def syscall_name(nr: int) -> str:
    """The name of syscall ``nr``; an unknown number reads ``syscall_NR``
    (strace writes the same for numbers it does not know)."""
    return syscall_names().get(nr, f"syscall_{nr}")


def tracepoint_syscall(event: str) -> str:
    """The syscall a ``syscalls`` tracepoint traces: ``sys_enter_newstat``
    (or ``newstat``) -> ``stat``."""
    for prefix in ("sys_enter_", "sys_exit_"):
        if event.startswith(prefix):
            event = event[len(prefix):]
            break
    return TRACEPOINT_ALIASES.get(event, event)


def syscall_number(name: str) -> int | None:
    """The number of a syscall by its name, or by its tracepoint's name."""
    name = tracepoint_syscall(name)
    for nr, known in syscall_names().items():
        if known == name:
            return nr
    return None


class Param(NamedTuple):
    """One argument of a syscall as its tracepoint declares it."""
    type: str   # the C type, whitespace-normalised: "const char *", "unsigned long"
    name: str   # "filename", "flags"


_FIELD = re.compile(r"^\s*field:(?P<decl>[^;]*);")


def parse_syscall_format(text: str) -> list[Param]:
    """The arguments in a ``syscalls/sys_enter_X/format`` file's text, in
    order (the common_* fields and ``__syscall_nr`` are not arguments)."""
    params: list[Param] = []
    for line in text.splitlines():
        m = _FIELD.match(line)
        if m is None:
            continue
        decl = " ".join(m.group("decl").split())
        d = re.search(r"([A-Za-z_][A-Za-z0-9_]*)$", decl)
        if d is None:
            continue
        name = d.group(1)
        if name.startswith("common_") or name == "__syscall_nr":
            continue
        params.append(Param(decl[: d.start()].strip(), name))
    return params


def tracepoint_syscalls(root: str) -> dict[str, str]:
    """The syscalls this kernel has tracepoints for: syscall name ->
    tracepoint event (``"stat": "sys_enter_newstat"``), read from
    ``root``/events/syscalls (root is the tracefs mount)."""
    try:
        entries = os.listdir(os.path.join(root, "events", "syscalls"))
    except OSError:
        return {}
    return {tracepoint_syscall(e): e for e in sorted(entries) if e.startswith("sys_enter_")}


def syscall_params(root: str, name: str) -> list[Param] | None:
    """The arguments of syscall ``name`` from its ``sys_enter`` tracepoint
    under the tracefs mount ``root``; None if this kernel has no tracepoint
    for it."""
    event = tracepoint_syscalls(root).get(tracepoint_syscall(name))
    if event is None:
        return None
    try:
        with open(os.path.join(root, "events", "syscalls", event, "format"), encoding="utf-8") as fh:
            return parse_syscall_format(fh.read())
    except OSError:
        return None


# --- errno and signals -----------------------------------------------------

# Kernel-internal codes (include/linux/errno.h) that a syscall tracepoint can
# see before the kernel restarts the call or converts them; user space never
# gets them, so Python's errno module does not know them.
_KERNEL_ERRNO: dict[int, tuple[str, str]] = {
    512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    513: ("ERESTARTNOINTR", "To be restarted"),
    514: ("ERESTARTNOHAND", "To be restarted if no handler"),
    515: ("ENOIOCTLCMD", "No ioctl command"),
    516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
    517: ("EPROBE_DEFER", "Driver requests probe retry"),
    518: ("EOPENSTALE", "Open found a stale dentry"),
    519: ("ENOPARAM", "Parameter not supported"),
    521: ("EBADHANDLE", "Illegal NFS file handle"),
    522: ("ENOTSYNC", "Update synchronization mismatch"),
    523: ("EBADCOOKIE", "Cookie is stale"),
    524: ("ENOTSUPP", "Operation is not supported"),
    525: ("ETOOSMALL", "Buffer or request is too small"),
    526: ("ESERVERFAULT", "An untranslatable error occurred"),
    527: ("EBADTYPE", "Type not supported by server"),
    528: ("EJUKEBOX", "Request initiated, but will not complete before timeout"),
    529: ("EIOCBQUEUED", "iocb queued, will get completion event"),
    530: ("ERECALLCONFLICT", "Conflict with recalled state"),
}

# The largest errno a syscall returns as -errno (include/linux/err.h MAX_ERRNO).
MAX_ERRNO = 4095


def errno_name(e: int) -> str:
    """``ENOENT`` for 2; an unknown code reads ``E<n>``.  Where Python
    knows two names for one code (EAGAIN/EWOULDBLOCK) it keeps the one
    strace and the kernel headers list first."""
    e = abs(e)
    if e in _KERNEL_ERRNO:
        return _KERNEL_ERRNO[e][0]
    return _errno.errorcode.get(e, f"E{e}")


def strerror(e: int) -> str:
    """The message for an errno: ``No such file or directory``."""
    e = abs(e)
    if e in _KERNEL_ERRNO:
        return _KERNEL_ERRNO[e][1]
    return os.strerror(e)


def is_error_return(ret: int) -> bool:
    """Whether a syscall's raw return value is -errno (-4095..-1)."""
    return -MAX_ERRNO <= ret < 0


def format_return(ret: int, hex_value: bool = False) -> str:
    """A syscall's return as strace writes it: ``3``, ``0x7f12...`` (for
    calls that return addresses, ``hex_value``), or ``-1 ENOENT (No such
    file or directory)``."""
    if is_error_return(ret):
        return f"-1 {errno_name(-ret)} ({strerror(-ret)})"
    if hex_value:
        return hex(ret & 0xFFFFFFFFFFFFFFFF)
    return str(ret)


def signal_name(sig: int) -> str:
    """``SIGTERM`` for 15, ``SIGRTMIN+3``, ``0`` for 0 (the "is it alive"
    probe of kill(2)), and the number itself when unknown."""
    if sig == 0:
        return "0"
    # The kernel's range (32..64), not Python's SIGRTMIN (34: glibc keeps
    # 32 and 33 for itself).
    rtmin, rtmax = 32, 64
    if rtmin <= sig <= rtmax:
        return "SIGRTMIN" if sig == rtmin else f"SIGRTMIN+{sig - rtmin}"
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return str(sig)


# --- flag words --------------------------------------------------------------

def flag_names(value: int, table: tuple[tuple[int, str], ...], zero: str = "0") -> str:
    """``A|B|0x40`` for the bits of ``value`` named in ``table`` (in table
    order; a multi-bit entry matches only when all its bits are set), the
    rest as hex; ``zero`` when value is 0."""
    if value == 0:
        return zero
    names: list[str] = []
    rest = value
    for bits, name in table:
        if bits and rest & bits == bits:
            names.append(name)
            rest &= ~bits
    if rest:
        names.append(hex(rest))
    return "|".join(names)


# The kernel's x86_64 values (include/uapi/asm-generic/fcntl.h), not
# Python's os.O_*: glibc defines O_LARGEFILE as 0 on 64-bit, and the kernel
# sees the real bit (0o100000) that glibc's open() adds.  Order: strace's.
OPEN_FLAGS: tuple[tuple[int, str], ...] = (
    (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"), (0o4010000, "O_SYNC"), (0o10000, "O_DSYNC"), (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"), (0o100000, "O_LARGEFILE"), (0o20200000, "O_TMPFILE"), (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"),
)
_ACCMODE = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")


def open_flags(flags: int) -> str:
    """open(2) flags: ``O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC``.  The access
    mode (the low two bits) always comes first; O_PATH ignores it, as the
    kernel does, and strace leaves it out."""
    flags &= 0xFFFFFFFF
    rest = flag_names(flags & ~3, OPEN_FLAGS, "")
    if flags & 0o10000000 and not flags & 3:
        return rest
    return _ACCMODE[flags & 3] + (f"|{rest}" if rest else "")


def file_mode(mode: int) -> str:
    """Permission bits as strace writes them (printf's ``%#03o``): ``0644``,
    ``04755``, ``000``."""
    mode &= 0o7777
    return (f"0{mode:o}" if mode else "0").rjust(3, "0")


_FILE_TYPES = ((0o140000, "S_IFSOCK"), (0o120000, "S_IFLNK"), (0o100000, "S_IFREG"), (0o060000, "S_IFBLK"),
               (0o040000, "S_IFDIR"), (0o020000, "S_IFCHR"), (0o010000, "S_IFIFO"))


def stat_mode(mode: int) -> str:
    """A mode with a file type (mknod, st_mode): ``S_IFREG|0644``."""
    kind = mode & 0o170000
    for bits, name in _FILE_TYPES:
        if kind == bits:
            return f"{name}|{file_mode(mode)}"
    return file_mode(mode) if not kind else f"{kind:#o}|{file_mode(mode)}"


def access_mode(mode: int) -> str:
    """access(2)'s mode: ``F_OK``, ``R_OK|W_OK``."""
    return flag_names(mode, ((4, "R_OK"), (2, "W_OK"), (1, "X_OK")), "F_OK")


AT_FDCWD = -100


def at_fd(fd: int) -> str:
    """A directory fd of the *at() calls: ``AT_FDCWD`` or the number.  The
    kernel takes it as a 32-bit int, so a zero-extended register value
    (0xffffff9c) is -100 too."""
    fd &= 0xFFFFFFFF
    fd = fd - (1 << 32) if fd & 0x80000000 else fd
    return "AT_FDCWD" if fd == AT_FDCWD else str(fd)


AT_FLAGS: tuple[tuple[int, str], ...] = (
    (0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"), (0x2000, "AT_STATX_FORCE_SYNC"),
    (0x4000, "AT_STATX_DONT_SYNC"), (0x8000, "AT_RECURSIVE"),
)


def at_flags(flags: int) -> str:
    """The AT_* flags of the *at() calls (include/uapi/linux/fcntl.h)."""
    return flag_names(flags & 0xFFFFFFFF, AT_FLAGS)


MMAP_PROT: tuple[tuple[int, str], ...] = (
    (0x1, "PROT_READ"), (0x2, "PROT_WRITE"), (0x4, "PROT_EXEC"), (0x8, "PROT_SEM"),
    (0x01000000, "PROT_GROWSDOWN"), (0x02000000, "PROT_GROWSUP"),
)


def mmap_prot(prot: int) -> str:
    """mmap/mprotect protection: ``PROT_READ|PROT_WRITE`` or ``PROT_NONE``."""
    return flag_names(prot & 0xFFFFFFFF, MMAP_PROT, "PROT_NONE")


# include/uapi/asm-generic/mman*.h and x86's MAP_32BIT; the sharing type
# (the low two bits, plus MAP_SHARED_VALIDATE = 3) comes first.
MMAP_FLAGS: tuple[tuple[int, str], ...] = (
    (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x40, "MAP_32BIT"), (0x100, "MAP_GROWSDOWN"),
    (0x800, "MAP_DENYWRITE"), (0x1000, "MAP_EXECUTABLE"), (0x2000, "MAP_LOCKED"), (0x4000, "MAP_NORESERVE"),
    (0x8000, "MAP_POPULATE"), (0x10000, "MAP_NONBLOCK"), (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"),
    (0x80000, "MAP_SYNC"), (0x100000, "MAP_FIXED_NOREPLACE"), (0x4000000, "MAP_UNINITIALIZED"),
)
_MAP_TYPES = {0: "", 1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}


def mmap_flags(flags: int) -> str:
    """mmap flags: ``MAP_PRIVATE|MAP_ANONYMOUS``."""
    flags &= 0xFFFFFFFF
    kind = _MAP_TYPES.get(flags & 0xF, hex(flags & 0xF))
    rest = flag_names(flags & ~0xF, MMAP_FLAGS, "")
    return "|".join(p for p in (kind, rest) if p) or "0"
