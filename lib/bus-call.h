/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Building method calls: shared by the services and berthctl (libberth-base: libc and sd-bus only). */

/* Does a call of this member carry a secret (so its message must be marked sensitive)? */
bool bus_member_carries_secret(const char *member);
/* A new method call destination/path/interface.member with the arguments types/ap appended (nothing
 * appended when types is NULL or empty); marked sensitive when bus_member_carries_secret(member). */
int bus_message_new_method_callv(sd_bus *bus, sd_bus_message **ret, const char *destination,
                                 const char *path, const char *interface, const char *member,
                                 const char *types, va_list ap);
