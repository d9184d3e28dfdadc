/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <json-glib/json-glib.h>

#include "request.h"

/* A container's attachment to a CNI network. The record <state dir>/network.json is written BEFORE the
 * namespace and the ADD exist, so that whatever dies when (the container, its shim, the creating
 * process, the supervisor) the next removal or the supervisor's next start finds it and runs DEL: no
 * veth, IPAM lease or iptables rule outlives the container. It holds the conflist as ADD used it (DEL
 * must undo exactly that), the ports, the names for /etc/hosts, and, once ADD succeeded, its result.
 *
 * All of this runs in the host mount namespace (the creating process, the clean-up child), under the
 * network lock (network-store.h). */

#define NET_ATTACHMENT_FILE "network.json"
#define NET_ATTACHMENT_MAX (2U * 1024U * 1024U)

typedef struct NetAttachArgs {
        const char *runtime_dir;     /* /run/berth: netns/, network.lock */
        const char *containers_path; /* /run/berth/containers */
        int state_dir_fd;
        const char *id;
        const char *hostname; /* the container's host name */
        const ContainerRequest *request;
} NetAttachArgs;

/* Creates the namespace, runs ADD, writes resolv.conf, hosts and hostname into the state directory and
 * rewrites the hosts files of the network's other containers. *ret_netns: the namespace file. On failure
 * nothing is left (DEL ran). -EADDRINUSE: a published port is taken. */
int net_attach(const NetAttachArgs *a, char **ret_netns, char **ret_error);

/* DEL of the attachment recorded in the state directory (none: 0), the namespace file removed, the other
 * containers' hosts files rewritten. Idempotent. */
int net_detach(const char *runtime_dir, const char *containers_path, int state_dir_fd, const char *id);

/* Start-up: leases under /var/lib/cni/networks/<berth network>/ (when leases) and namespace files under
 * netns/ whose container has no state directory any more (a reboot, a removal that crashed) get their
 * DEL. The leases are the host's: only the supervisor of the host's runtime directory may judge them. */
int net_reconcile(const char *runtime_dir, const char *containers_path, bool leases);

/* The attachment as a JSON object for inspect: {network, addresses, ports} (NULL when none). */
JsonNode *net_attachment_summary(int state_dir_fd);

/* How many containers are attached to the network (any state: an attachment lives until removal);
 * *ret (optional): an array of {id, name, addresses, ports}. */
int net_network_users(const char *containers_path, const char *network, JsonNode **ret);
