/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The capabilities an unpack child keeps: writing arbitrary owners/modes (CHOWN, FOWNER, FSETID),
 * device nodes and whiteouts (MKNOD), file capabilities (SETFCAP), writing into directories whatever
 * their mode (DAC_OVERRIDE), and trusted.overlay.opaque, which the kernel only lets CAP_SYS_ADMIN set. */
#define SANDBOX_CAPS_EFFECTIVE                                                                              \
        ((UINT64_C(1) << 0) | (UINT64_C(1) << 1) | (UINT64_C(1) << 3) | (UINT64_C(1) << 4) |                \
         (UINT64_C(1) << 21) | (UINT64_C(1) << 27) | (UINT64_C(1) << 31))

/* What one kind of worker may keep. */
typedef struct SandboxProfile {
        uint64_t caps;               /* capabilities kept (bounding, permitted, effective) */
        const char *const *syscalls; /* allowed unconditionally, NULL-terminated; the rest kills */
        bool user_namespace;         /* unprivileged caller: a user namespace first (it maps only
                                      * its own uid and gid), so that it may make the others */
        bool namespaces_optional;    /* unshare() refused by the service manager (systemd's
                                      * RestrictNamespaces=) or the kernel: go on with the
                                      * seccomp filter alone, which allows no socket() either */
} SandboxProfile;

/* The unpack worker's (services/unpacker): root with SANDBOX_CAPS_EFFECTIVE, extraction syscalls. */
extern const SandboxProfile sandbox_profile_unpack;

/* Called in a freshly forked child, before it reads a byte of untrusted input:
 *  1. dies with its parent (PR_SET_PDEATHSIG), default signal mask;
 *  2. closes every fd but keep_fds (and stderr, for logging);
 *  3. own network namespace (no network at all) and own mount namespace in which root_path — which
 *     must be the directory open on root_fd — is the whole file system (bind mounted nosuid,nodev,
 *     noexec, pivot_root'ed into, old root detached); root_path NULL: an empty read-only tmpfs is the
 *     whole file system, and the child works on the fds it kept only;
 *  4. bounding set, permitted and effective capabilities reduced to the profile's;
 *  5. PR_SET_NO_NEW_PRIVS;
 *  6. a seccomp allow-list (default: kill the process): the profile's system calls, mmap/mprotect
 *     without PROT_EXEC, fcntl() for descriptor flags and duplication only.
 * On success *ret_root_fd (when root_path is given) is a new fd for "/" (the snapshot dir); root_fd is
 * closed. On failure returns -errno and, when err is given, "<the step that failed>: <why>" in it, e.g.
 * "the seccomp() system call is refused (…): Operation not permitted". */
int sandbox_enter_profile(const SandboxProfile *p, const char *root_path, int root_fd, const int *keep_fds,
                          size_t n_keep_fds, int *ret_root_fd, char *err, size_t err_size);

/* sandbox_enter_profile(&sandbox_profile_unpack, …) */
int sandbox_enter(const char *root_path, int root_fd, const int *keep_fds, size_t n_keep_fds,
                  int *ret_root_fd, char *err, size_t err_size);

/* Only steps 4–6 (for tests that check the filter without a snapshot dir). */
int sandbox_restrict_profile(const SandboxProfile *p, char *err, size_t err_size);
int sandbox_restrict(char *err, size_t err_size);

/* For a long-lived service (the fetcher): PR_SET_NO_NEW_PRIVS and an allow-list of syscalls; anything
 * else fails with EPERM (as systemd's SystemCallFilter= with SystemCallErrorNumber=EPERM does), so a
 * rare path that needs an unlisted call fails one request instead of killing every transfer. */
int sandbox_filter_service(const char *const *syscalls, char *err, size_t err_size);
