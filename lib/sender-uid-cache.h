/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

/* The uid the bus daemon recorded for a unique name, remembered per bus connection. A unique name
 * (":1.42") names one connection for the whole life of the bus daemon (it never hands it out again) and
 * the uid is fixed when that connection is made, so the answer never goes stale: asking the daemon again
 * on every method call (a blocking GetConnectionCredentials round trip in the middle of each handler)
 * buys nothing. Bounded: when full, everything is forgotten and asked again. */
#define SENDER_UID_CACHE_MAX 1024U

bool sender_uid_cache_get(sd_bus *bus, const char *unique_name, uid_t *ret);
void sender_uid_cache_put(sd_bus *bus, const char *unique_name, uid_t uid);
