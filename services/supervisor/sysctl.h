/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "berth-error.h"
#include "spec.h"

/* Child side, after the pivot and before /proc/sys is made read-only: writes each sysctl of the spec
 * (already checked by spec_sysctl_check()) through an fd resolved under the container's own /proc/sys,
 * never following a symlink, and checked to be on procfs. */
int sysctls_apply(const Spec *spec, BerthError *err);
