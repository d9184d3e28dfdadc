/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "cni.h"

/* berth's networks are CNI conflists in /etc/berth/net.d/<name>.conflist. The default network
 * ("bridge", bridge berth0) is written the first time a container needs it, with the subnet from
 * /etc/berth/network.conf ([network] DefaultSubnet=, DefaultGateway=) or else the first of
 * 10.88.0.0/16, 10.89.0.0/24 … 10.89.255.0/24 that no host route and no other berth network overlaps.
 * Writers run in the host mount namespace (the supervisor's own view of /etc is read-only) and hold
 * the network lock. */

#define NETWORK_DEFAULT_SUBNET "10.88.0.0/16"
#define NETWORKS_MAX 256U

const char *network_dir(void);
/* The lock every change of networks and attachments holds (flock on /run/berth/network.lock). Returns
 * the fd; close it to unlock. */
int network_lock(const char *runtime_dir);

/* Loads <name>. -ENOENT when there is none (the default network is created then, when create_default). */
int network_load(const char *name, bool create_default, CniNetwork **ret, char **ret_error);
/* Writes a new bridge network; subnet/gateway may be NULL (picked). -EEXIST, -EADDRINUSE (collision,
 * message names the route or network), -EINVAL. */
int network_create(const char *name, const char *subnet, const char *gateway, CniNetwork **ret,
                   char **ret_error);
int network_remove(const char *name);
/* Sorted names of the networks there are. */
int network_list(char ***ret);
