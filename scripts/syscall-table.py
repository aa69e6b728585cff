#!/usr/bin/env python3
# syscall-table.py: writes the per-number table of Documentation/Syscalls.md (between
# its "BEGIN/END syscall table" markers) from Sources/SyscallEmu/SyscallNumber.swift
# (scripts/syscall-numbers.py generates it), the handlers registered in
# Sources/SyscallEmu, and the status notes below.
# CompatibilityTests checks the table against the dispatcher, so run this after adding
# a handler and edit the notes when a call is host, partial or ENOSYS by design.
# Registrations are found as `register(.NAME`, `registerLeaf(.NAME`, `host(.NAME`, the lists of
# `for nr: SyscallNumber in [.a, .b]` loops, and `(.NAME, .op...)` tuples of such loops.
import os, re, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
src = os.path.join(root, "Sources", "SyscallEmu")
enum = open(os.path.join(src, "SyscallNumber.swift")).read()
names = {int(nr): name for name, nr in re.findall(r'^    case (\w+) = (\d+)$', enum, re.M)}
numbers = {name: nr for nr, name in names.items()}

registered = set()
for fn in sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs):
    if not fn.endswith(".swift") or fn.endswith("/SyscallNumber.swift"):
        continue
    s = open(fn).read()
    found = re.findall(r'\b(?:register|registerLeaf|host)\(\.(\w+)', s)
    for block in re.findall(r'for \w+: SyscallNumber in \[([^\]]*)\]', s):
        found += re.findall(r'\.(\w+)', block)
    found += re.findall(r'\((?:SyscallNumber)?\.(\w+), (?:\w+)?\.\w+', s)
    registered |= {numbers[n] for n in found if n in numbers}

HOST = {
    10: "", 26: "", 27: "", 28: "", 110: "", 111: "pgid of the host process", 121: "", 124: "",
    318: "", 99: "", 229: "", 96: "vDSO", 201: "vDSO", 100: "", 98: "",
    309: "", 149: "", 150: "", 151: "", 152: "", 325: "", 324: "process-wide on the host, which covers every kthread",
    135: "of the calling kthread", 159: "", 305: "", 38: "the host process's itimers: SIGALRM/SIGVTALRM/SIGPROF reach the application through the signal thread; CPU time includes the libOS's",
    36: "", 37: "shares ITIMER_REAL with setitimer, as in Linux", 29: "", 30: "", 31: "", 67: "", 64: "", 65: "a blocking semop holds its kthread",
    66: "", 220: "", 68: "", 69: "blocking holds its kthread", 70: "blocking holds its kthread", 71: "", 251: "", 252: "", 237: "", 238: "", 239: "",
    139: "", 136: "", 216: "", 462: "", 310: "own pid only (ESRCH for others: no other process in the instance)", 311: "own pid only",
}
PARTIAL = {
    97: "RLIMIT_NOFILE is the descriptor table's; the others the host's", 160: "as getrlimit", 302: "as getrlimit (this process)",
    16: "TCGETS, TCSETS/TCSETSW/TCSETSF, TIOCGWINSZ/TIOCSWINSZ, TIOCGPGRP/TIOCSPGRP, TIOCSCTTY, TIOCNOTTY, TIOCGSID, TCFLSH, TCSBRK, TCXONC, TIOCOUTQ, TIOCSTI on a host terminal (else ENOTTY); FIONBIO, FIONREAD",
    9: "file mappings need a host descriptor (HostFS, memfd): ENODEV for MemFS files",
    157: "PR_SET_NAME, PR_GET_NAME",
    41: "AF_UNIX, AF_INET, AF_INET6 (host or NetStack), AF_NETLINK (host; NETLINK_ROUTE from the instance with `--net`); others EAFNOSUPPORT",
    54: "options beyond SOL_SOCKET basics are the backend's (NetStack: the list in Architecture.md)", 55: "as setsockopt",
    56: "threads, and processes as a host fork (CLONE_VM only with CLONE_VFORK)", 435: "as clone",
    125: "the host process's capabilities; pid 0 or this process", 126: "only a request that changes nothing succeeds (EPERM otherwise: caps are per host thread)",
    161: "checks the path; then EPERM even for root (no per-instance root yet)",
    227: "CLOCK_REALTIME only (EINVAL others); EPERM unless root, then the host's clock", 164: "EPERM unless root, then the host's clock",
    170: "EPERM unless root; root's name is the instance's own (uname shows it)", 171: "as sethostname", 63: "host, with the instance's names once set",
    203: "recorded and reported, not applied (uthreads move between kthreads)", 204: "the mask set by sched_setaffinity, else the host's",
    140: "recorded nice value, not applied to host threads", 141: "recorded; lowering needs root (EACCES)",
    144: "recorded (SCHED_FIFO/RR need root)", 142: "recorded", 145: "", 143: "", 314: "recorded", 315: "",
    330: "ENOSPC: no protection keys (PKRU would be shared by uthreads)", 331: "EINVAL", 329: "pkey -1 only (plain mprotect)",
    275: "one end a pipe; bytes are copied, no page moves", 276: "the libOS's pipes; bytes are copied", 278: "readv/writev on the pipe; SPLICE_F_GIFT ignored",
    285: "host's fallocate on HostFS and memfds; MemFS: mode 0 and KEEP_SIZE, others EOPNOTSUPP",
    319: "a host memfd (mmap, seals, fstat are the host's)",
    188: "HostFS: the host's; MemFS: its own (user., trusted., security.); other libOS files EOPNOTSUPP", 189: "as setxattr", 190: "as setxattr",
    191: "as setxattr (ENODATA where none)", 192: "as getxattr", 193: "as getxattr", 194: "as setxattr (empty where none)", 195: "as listxattr",
    196: "as listxattr", 197: "as setxattr", 198: "as removexattr", 199: "as removexattr",
    222: "host timers on a reserved signal, delivered by the libOS (SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID); deleted by execve",
    223: "", 224: "", 225: "", 226: "", 133: "FIFOs and regular files; devices EPERM", 259: "as mknod",
    253: "see inotify_init1", 254: "MemFS paths: events from the libOS's own operations (no IN_OPEN/IN_ACCESS); HostFS paths: the host's inotify (changes by others too)", 255: "",
    294: "as inotify_add_watch",
    116: "recorded for the instance (root only)", 117: "emulated credentials (the host process keeps its own)", 119: "as setresuid",
    105: "as setresuid", 106: "as setresuid", 113: "as setresuid", 114: "as setresuid", 122: "as setresuid", 123: "as setresuid",
}
EPERM = {169, 167, 168, 172, 173, 175, 313, 176, 246, 320, 163, 155, 165, 166, 179, 153, 101, 103}
DONE_NOTES = {
    228: "answered through the libOS's vDSO (the application's libc uses the vDSO directly)",
}
BY_DESIGN = {
    334: "rseq: per kernel thread, and uthreads share kthreads (glibc carries on without it)",
}
OTHER_BRANCH = {
}

rows = []
counted = 0
for nr in sorted(names):
    name = names[nr]
    if nr in BY_DESIGN:
        status, note = "ENOSYS by design", BY_DESIGN[nr]
    elif nr in registered:
        if nr in EPERM:
            status, note = "done", "EPERM: an instance holds no host privilege (as an unprivileged container)"
        elif nr in HOST:
            status, note = "host", HOST[nr]
        elif nr in PARTIAL:
            status, note = "partial", PARTIAL[nr]
        else:
            status, note = "done", DONE_NOTES.get(nr, "")
        counted += 1
    else:
        owner = next((b for b, s in OTHER_BRANCH.items() if nr in s), None)
        status, note = "ENOSYS", f"branch {owner}" if owner else ""
    rows.append(f"| {nr} | {name} | {status} | {note} |")

out = ["<!-- BEGIN syscall table (scripts/syscall-table.py; checked by CompatibilityTests) -->",
       f"Answered (done, host or partial): **{counted}** of {len(names)} x86-64 call numbers.", "",
       "| nr | name | status | notes |", "| --- | --- | --- | --- |"] + rows + ["<!-- END syscall table -->"]
doc = os.path.join(root, "Documentation", "Syscalls.md")
text = open(doc).read()
block = "\n".join(out)
if "<!-- BEGIN syscall table" in text:
    a = text.index("<!-- BEGIN syscall table")
    b = text.index("<!-- END syscall table -->") + len("<!-- END syscall table -->")
    text = text[:a] + block + text[b:]
else:
    text = text.rstrip("\n") + "\n\n## Every call by number\n\n" + block + "\n"
open(doc, "w").write(text)
print(counted, "answered of", len(names))
