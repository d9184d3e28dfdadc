/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Under systemd, berth-supervisor.service runs in a private mount namespace (ProtectSystem=,
 * ProtectHome=, …): a mount made there is invisible to callers and containers, and the kernel
 * refuses to attach a mount onto a directory fd that lives in another namespace. Every step that
 * makes mounts others must see runs in a forked child that first joins the host's namespace, the
 * one of PID 1 (the init that started the supervisor's unit). */

/* Whether this process already lives in PID 1's mount namespace. 1 yes, 0 no, -errno. */
int host_mntns_is_ours(void);

/* Joins PID 1's mount namespace (a no-op when it is already ours) and moves to its root, so that
 * no directory of the old namespace stays pinned as our cwd. Only for a forked child: the calling
 * process changes namespace for good. Returns 0 or -errno. */
int host_mntns_join(void);
