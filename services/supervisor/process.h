/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "berth-error.h"
#include "spec.h"

/* Child side: the container process's own attributes, and the final execve. */

/* setrlimit for every rlimit of the spec (before the capabilities go: raising a hard limit needs
 * CAP_SYS_RESOURCE). */
int process_set_rlimits(const Spec *spec, BerthError *err);

/* process.oomScoreAdj, when the spec has one (otherwise the caller's is inherited, as with runc). Before
 * the capabilities go: lowering it needs CAP_SYS_RESOURCE. */
int process_set_oom_score_adj(const Spec *spec, BerthError *err);

/* setgroups (always, even to an empty list: CVE-2023-25173), setresgid, setresuid, keeping the
 * permitted capabilities across the switch for caps_apply(). */
int process_set_user(const Spec *spec, BerthError *err);

/* Opens process.cwd inside the new root (creating it like docker does), never through a magic link:
 * "/proc/self/fd/N" as a working directory is refused (CVE-2024-21626), and fchdir()s there. */
int process_set_cwd(const Spec *spec, BerthError *err);

/* Closes every fd but 0, 1, 2 and keep[0..n_keep) (the sync fds, all O_CLOEXEC, gone at execve). */
int process_close_fds(const int *keep, size_t n_keep, BerthError *err);

/* Every signal back to SIG_DFL and unblocked (dispositions set to SIG_IGN and the blocked mask would
 * otherwise pass through execve into the container). */
void process_reset_signals(void);

/* Looks args[0] up in the PATH of the container's environment and execve()s it. Returns only on
 * failure, with err set; *ret_status is 127 (not found) or 126 (found, not executable). */
int process_exec(const Spec *spec, int *ret_status, BerthError *err);
