/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* pause / unpause: the container's cgroup frozen or thawed. cgroup v1 (and the hybrid layout, whose
 * controllers are v1): freezer.state FROZEN / THAWED in the freezer hierarchy; v2 (or a hybrid machine
 * without a v1 freezer): cgroup.freeze 1 / 0 in the unified hierarchy, done once cgroup.events says
 * "frozen 1" / "frozen 0". Returns once the state is reached, -ETIMEDOUT after FREEZER_TIMEOUT_MSEC
 * (a task stuck in uninterruptible sleep can hold a v1 freeze in FREEZING). */
#define FREEZER_TIMEOUT_MSEC 5000

int freezer_set(int state_dir_fd, bool frozen);
/* Whether the container's cgroup is frozen now (adoption after a supervisor restart). */
int freezer_get(int state_dir_fd, bool *ret);
