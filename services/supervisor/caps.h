/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "berth-error.h"
#include "spec.h"

/* "CAP_CHOWN" → 0 …; -EINVAL for a name this build does not know (never silently dropped). */
int cap_from_spec_name(const char *name);
/* Highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap). */
int cap_last_cap(void);

/* Child side, in this order (see engine.c): drop the bounding set while we still hold CAP_SETPCAP,
 * then (after the uid switch, with PR_SET_KEEPCAPS) set effective, permitted and inheritable, then the
 * ambient set. */
int caps_drop_bounding(const SpecCaps *caps, BerthError *err);
int caps_apply(const SpecCaps *caps, BerthError *err);
