#ifndef CHATFLOW_SHIMS_H
#define CHATFLOW_SHIMS_H
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <errno.h>

/* Swift cannot call the variadic syscall(2); glibc 2.36 has no pidfd_open wrapper. */
static inline int chatflow_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* glibc defines POSIX_SPAWN_SETSID only under _GNU_SOURCE, which would clash with Swift's Glibc module. */
static inline short chatflow_spawn_setsid_flag(void) { return (short)0x80; }
#endif
