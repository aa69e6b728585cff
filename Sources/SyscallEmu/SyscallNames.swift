// SyscallNames.swift: every x86-64 Linux system call name by number (generated once from
// the kernel's syscall_64.tbl via /usr/include/x86_64-linux-gnu/asm/unistd_64.h, plus
// 451-469 from Linux 6.17's table); nil marks a number the kernel leaves unused.

/// The kernel's names for x86-64 system call numbers.
public enum LinuxSyscallNames {
    /// Index: the call number.
    public static let table: [String?] = [
        "read", "write", "open", "close", "stat", "fstat", "lstat", "poll",  // 0
        "lseek", "mmap", "mprotect", "munmap", "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",  // 8
        "ioctl", "pread64", "pwrite64", "readv", "writev", "access", "pipe", "select",  // 16
        "sched_yield", "mremap", "msync", "mincore", "madvise", "shmget", "shmat", "shmctl",  // 24
        "dup", "dup2", "pause", "nanosleep", "getitimer", "alarm", "setitimer", "getpid",  // 32
        "sendfile", "socket", "connect", "accept", "sendto", "recvfrom", "sendmsg", "recvmsg",  // 40
        "shutdown", "bind", "listen", "getsockname", "getpeername", "socketpair", "setsockopt", "getsockopt",  // 48
        "clone", "fork", "vfork", "execve", "exit", "wait4", "kill", "uname",  // 56
        "semget", "semop", "semctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl",  // 64
        "fcntl", "flock", "fsync", "fdatasync", "truncate", "ftruncate", "getdents", "getcwd",  // 72
        "chdir", "fchdir", "rename", "mkdir", "rmdir", "creat", "link", "unlink",  // 80
        "symlink", "readlink", "chmod", "fchmod", "chown", "fchown", "lchown", "umask",  // 88
        "gettimeofday", "getrlimit", "getrusage", "sysinfo", "times", "ptrace", "getuid", "syslog",  // 96
        "getgid", "setuid", "setgid", "geteuid", "getegid", "setpgid", "getppid", "getpgrp",  // 104
        "setsid", "setreuid", "setregid", "getgroups", "setgroups", "setresuid", "getresuid", "setresgid",  // 112
        "getresgid", "getpgid", "setfsuid", "setfsgid", "getsid", "capget", "capset", "rt_sigpending",  // 120
        "rt_sigtimedwait", "rt_sigqueueinfo", "rt_sigsuspend", "sigaltstack", "utime", "mknod", "uselib", "personality",  // 128
        "ustat", "statfs", "fstatfs", "sysfs", "getpriority", "setpriority", "sched_setparam", "sched_getparam",  // 136
        "sched_setscheduler", "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "mlock", "munlock", "mlockall",  // 144
        "munlockall", "vhangup", "modify_ldt", "pivot_root", "_sysctl", "prctl", "arch_prctl", "adjtimex",  // 152
        "setrlimit", "chroot", "sync", "acct", "settimeofday", "mount", "umount2", "swapon",  // 160
        "swapoff", "reboot", "sethostname", "setdomainname", "iopl", "ioperm", "create_module", "init_module",  // 168
        "delete_module", "get_kernel_syms", "query_module", "quotactl", "nfsservctl", "getpmsg", "putpmsg", "afs_syscall",  // 176
        "tuxcall", "security", "gettid", "readahead", "setxattr", "lsetxattr", "fsetxattr", "getxattr",  // 184
        "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",  // 192
        "tkill", "time", "futex", "sched_setaffinity", "sched_getaffinity", "set_thread_area", "io_setup", "io_destroy",  // 200
        "io_getevents", "io_submit", "io_cancel", "get_thread_area", "lookup_dcookie", "epoll_create", "epoll_ctl_old", "epoll_wait_old",  // 208
        "remap_file_pages", "getdents64", "set_tid_address", "restart_syscall", "semtimedop", "fadvise64", "timer_create", "timer_settime",  // 216
        "timer_gettime", "timer_getoverrun", "timer_delete", "clock_settime", "clock_gettime", "clock_getres", "clock_nanosleep", "exit_group",  // 224
        "epoll_wait", "epoll_ctl", "tgkill", "utimes", "vserver", "mbind", "set_mempolicy", "get_mempolicy",  // 232
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "kexec_load", "waitid",  // 240
        "add_key", "request_key", "keyctl", "ioprio_set", "ioprio_get", "inotify_init", "inotify_add_watch", "inotify_rm_watch",  // 248
        "migrate_pages", "openat", "mkdirat", "mknodat", "fchownat", "futimesat", "newfstatat", "unlinkat",  // 256
        "renameat", "linkat", "symlinkat", "readlinkat", "fchmodat", "faccessat", "pselect6", "ppoll",  // 264
        "unshare", "set_robust_list", "get_robust_list", "splice", "tee", "sync_file_range", "vmsplice", "move_pages",  // 272
        "utimensat", "epoll_pwait", "signalfd", "timerfd_create", "eventfd", "fallocate", "timerfd_settime", "timerfd_gettime",  // 280
        "accept4", "signalfd4", "eventfd2", "epoll_create1", "dup3", "pipe2", "inotify_init1", "preadv",  // 288
        "pwritev", "rt_tgsigqueueinfo", "perf_event_open", "recvmmsg", "fanotify_init", "fanotify_mark", "prlimit64", "name_to_handle_at",  // 296
        "open_by_handle_at", "clock_adjtime", "syncfs", "sendmmsg", "setns", "getcpu", "process_vm_readv", "process_vm_writev",  // 304
        "kcmp", "finit_module", "sched_setattr", "sched_getattr", "renameat2", "seccomp", "getrandom", "memfd_create",  // 312
        "kexec_file_load", "bpf", "execveat", "userfaultfd", "membarrier", "mlock2", "copy_file_range", "preadv2",  // 320
        "pwritev2", "pkey_mprotect", "pkey_alloc", "pkey_free", "statx", "io_pgetevents", "rseq", nil,  // 328
        nil, nil, nil, nil, nil, nil, nil, nil,  // 336
        nil, nil, nil, nil, nil, nil, nil, nil,  // 344
        nil, nil, nil, nil, nil, nil, nil, nil,  // 352
        nil, nil, nil, nil, nil, nil, nil, nil,  // 360
        nil, nil, nil, nil, nil, nil, nil, nil,  // 368
        nil, nil, nil, nil, nil, nil, nil, nil,  // 376
        nil, nil, nil, nil, nil, nil, nil, nil,  // 384
        nil, nil, nil, nil, nil, nil, nil, nil,  // 392
        nil, nil, nil, nil, nil, nil, nil, nil,  // 400
        nil, nil, nil, nil, nil, nil, nil, nil,  // 408
        nil, nil, nil, nil, nil, nil, nil, nil,  // 416
        "pidfd_send_signal", "io_uring_setup", "io_uring_enter", "io_uring_register", "open_tree", "move_mount", "fsopen", "fsconfig",  // 424
        "fsmount", "fspick", "pidfd_open", "clone3", "close_range", "openat2", "pidfd_getfd", "faccessat2",  // 432
        "process_madvise", "epoll_pwait2", "mount_setattr", "quotactl_fd", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "memfd_secret",  // 440
        "process_mrelease", "futex_waitv", "set_mempolicy_home_node", "cachestat", "fchmodat2", "map_shadow_stack", "futex_wake", "futex_wait",  // 448
        "futex_requeue", "statmount", "listmount", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "mseal", "setxattrat",  // 456
        "getxattrat", "listxattrat", "removexattrat", "open_tree_attr", "file_getattr", "file_setattr",  // 464
    ]

    /// The kernel's name for `number`, or nil if it is not an x86-64 call.
    public static func name(_ number: Int) -> String? {
        number >= 0 && number < table.count ? table[number] : nil
    }

    /// Every x86-64 call number.
    public static var numbers: [Int] { table.indices.filter { table[$0] != nil } }
}
