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

/* Allocates a file's blocks before it is written (fallocate mode 0; declared under _GNU_SOURCE
   only). Fails with EOPNOTSUPP where the file system cannot; the caller then just writes. */
static inline int chatflow_allocate(int fd, long long length) {
    return (int)syscall(SYS_fallocate, fd, 0, (long long)0, length);
}

/* renameat2(RENAME_EXCHANGE): swaps two names atomically, so a view is replaced without a new
   inode (the spare keeps the previous one). Fails with EINVAL where the file system cannot. */
static inline int chatflow_exchange(const char *from, const char *to) {
    return (int)syscall(SYS_renameat2, -100 /* AT_FDCWD */, from, -100, to, 2U /* RENAME_EXCHANGE */);
}

/* Allocates blocks past the end without changing the size (FALLOC_FL_KEEP_SIZE): what readers
   see is unchanged, and appends into them allocate nothing. */
static inline int chatflow_allocate_beyond_end(int fd, long long length) {
    return (int)syscall(SYS_fallocate, fd, 1 /* FALLOC_FL_KEEP_SIZE */, (long long)0, length);
}

/* syncfs(2): every dirty file of the file system holding fd written and the device's cache
   flushed, in one call (declared under _GNU_SOURCE only): the commit log's checkpoint. */
static inline int chatflow_syncfs(int fd) {
    return (int)syscall(SYS_syncfs, fd);
}

/* O_DIRECT, defined under _GNU_SOURCE only; glibc's __O_DIRECT is its per-architecture value. */
#include <fcntl.h>
static inline int chatflow_o_direct(void) { return __O_DIRECT; }

/* openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: `path` (relative) under `dirfd`, no link
   followed and no way out of it (ELOOP at a link, EXDEV at an escape; ENOSYS before Linux 5.6).
   One system call, as open(2) is. */
struct chatflow_open_how { unsigned long long flags, mode, resolve; };
static inline int chatflow_open_beneath(int dirfd, const char *path, int flags, unsigned int mode) {
    struct chatflow_open_how how = {
        (unsigned long long)(unsigned int)flags,
        (flags & 0100 /* O_CREAT */) ? mode : 0,
        0x08 /* RESOLVE_BENEATH */ | 0x04 /* RESOLVE_NO_SYMLINKS */ };
    return (int)syscall(437 /* SYS_openat2 */, dirfd, path, &how, sizeof how);
}

/* glibc defines POSIX_SPAWN_SETSID only under _GNU_SOURCE, which would clash with Swift's Glibc module. */
static inline short chatflow_spawn_setsid_flag(void) { return (short)0x80; }

/* glibc >= 2.29 exports this; its prototype is hidden behind _GNU_SOURCE. */
/* Hidden behind _GNU_SOURCE too; atomically close-on-exec so concurrent spawns never inherit it. */
extern int pipe2(int pipefd[2], int flags);

extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
/* Hands freed heap memory back to the system (malloc.h). */
extern int malloc_trim(size_t pad);
/* One malloc arena for the whole process (mallopt M_ARENA_MAX = -8): the catch-up's reader threads
   would otherwise each keep an arena of freed memory. */
extern int mallopt(int param, int value);
static inline void chatflow_single_malloc_arena(void) { mallopt(-8, 1); }

/* glibc >= 2.34: close every descriptor >= fd in the child (libinotifytools' fd is not close-on-exec). */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

/* epoll and timerfd: Swift's Glibc module does not export them, and epoll_event is packed. */
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <stdint.h>
#include <time.h>

static inline int chatflow_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

/* Level-triggered readability of fd, reported with token. */
static inline int chatflow_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event event = { .events = EPOLLIN, .data = { .u64 = token } };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

static inline int chatflow_epoll_remove(int epfd, int fd) {
    struct epoll_event event = { 0 };
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &event);
}

/* Waits for up to max ready descriptors; their tokens go to tokens[]. */
static inline int chatflow_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int count = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < count; i++) tokens[i] = events[i].data.u64;
    return count;
}

static inline int chatflow_timerfd_create(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
}

/* Arms the timer for an absolute CLOCK_MONOTONIC time in seconds; 0 disarms it. */
static inline int chatflow_timerfd_arm(int fd, double at) {
    struct itimerspec spec = { 0 };
    if (at > 0) {
        spec.it_value.tv_sec = (time_t)at;
        spec.it_value.tv_nsec = (long)((at - (double)(time_t)at) * 1e9);
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    }
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, 0);
}
/* Raw inotify for the engine's own waits (chatflow logs --follow): no library, and no
   <sys/inotify.h>, which CInotifyTools includes too. Masks are the kernel's values. */
static inline int chatflow_inotify_init(void) { return (int)syscall(SYS_inotify_init1, 04000 | 02000000 /* IN_NONBLOCK | IN_CLOEXEC */); }
static inline int chatflow_inotify_add_watch(int fd, const char *path, unsigned int mask) {
    return (int)syscall(SYS_inotify_add_watch, fd, path, mask);
}

#endif
