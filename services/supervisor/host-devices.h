/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

/* The host's device nodes for a privileged container, as podman --privileged gives them: every
 * character and block device under dev_path (listed as "/dev/…"), but not the container's own instances
 * (pts, shm, mqueue), fd links or the host's console. Appends the members "devices" (linux.devices) to the
 * object being built in b; unreadable directories are skipped. */
void host_devices_add_json(JsonBuilder *b, const char *dev_path);
