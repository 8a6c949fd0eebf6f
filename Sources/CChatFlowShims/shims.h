#ifndef CHATFLOW_SHIMS_H
#define CHATFLOW_SHIMS_H
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <spawn.h>
#include <errno.h>

/* Swift cannot call the variadic syscall(2); glibc 2.36 has no pidfd_open wrapper. */
static inline int chatflow_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* An anonymous in-memory file (a hook's stdin). Declared under _GNU_SOURCE only, hence the syscall. */
static inline int chatflow_memfd_create(const char *name) {
    return (int)syscall(SYS_memfd_create, name, 1U /* MFD_CLOEXEC */);
}

/* glibc defines POSIX_SPAWN_SETSID only under _GNU_SOURCE, which would clash with Swift's Glibc module. */
static inline short chatflow_spawn_setsid_flag(void) { return (short)0x80; }

/* glibc >= 2.29 exports this; its prototype is hidden behind _GNU_SOURCE. */
/* Hidden behind _GNU_SOURCE too; atomically close-on-exec so concurrent spawns never inherit it. */
extern int pipe2(int pipefd[2], int flags);

extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
/* Hands freed heap memory back to the system (malloc.h). */
extern int malloc_trim(size_t pad);

/* glibc >= 2.34: close every descriptor >= fd in the child (libinotifytools' fd is not close-on-exec). */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
#endif
