/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "berth-error.h"
#include "spec.h"

/* clone() flags for the namespaces the spec asks to create (not those it joins by path). The cgroup
 * namespace is left out on purpose: the init unshares it after the parent moved it into its cgroup
 * (sync point 1), so that the namespace's root is the container's own cgroup. The user namespace has
 * its slot here (CLONE_NEWUSER first, maps written by the parent at sync point 1) but is refused by
 * spec.c until the userns issue adds the maps. */
unsigned long namespaces_clone_flags(const Spec *spec);

/* Child side: join the namespaces given by path (setns, before anything else is set up). */
int namespaces_join(const Spec *spec, BerthError *err);
/* Child side, after sync point 1. */
int namespaces_unshare_cgroup(const Spec *spec, BerthError *err);
/* Child side: hostname (UTS) and loopback up (new network namespace). */
int namespaces_setup_uts(const Spec *spec, BerthError *err);
int namespaces_setup_loopback(const Spec *spec, BerthError *err);
/* Brings up "lo" in the calling thread's network namespace (an ioctl; no netlink). -errno. Also used for
 * the namespace files of CNI networks (netns.c). */
int namespaces_loopback_up(void);
