/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "berth-error.h"

/* Makes /dev/console of the container (already pivoted into it) the terminal slave_fd is: an empty
 * regular file created in the container's /dev tmpfs with the pty peer bound onto it, as runc does. Only
 * for containers with a terminal; without one there is no /dev/console (runc, podman). */
int console_bind(int slave_fd, BerthError *err);
