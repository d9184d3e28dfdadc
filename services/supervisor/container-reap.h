/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SIGKILL to every process still in the container's cgroups (its shim died and left them), until none
 * is left. 0, or -EBUSY when some would not go. Run before the cgroup is removed. */
int container_kill_orphans(const char *id);
