/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

/* The container's /etc/resolv.conf, /etc/hosts and /etc/hostname: files in its state directory, bind-
 * mounted read-only over the image's (spec-build.c). */

#define ETC_RESOLV_CONF "resolv.conf"
#define ETC_HOSTS "hosts"
#define ETC_HOSTNAME "hostname"

typedef struct EtcHost {
        char *address; /* without a prefix length */
        char *names;   /* space-separated */
} EtcHost;

/* resolv.conf: the servers given (--dns), else the host's; when the host's only servers are loopback
 * ones (a local caching resolver, unreachable from the container's namespace), systemd-resolved's
 * upstream list (/run/systemd/resolve/resolv.conf) when there is one, else none (and a comment saying
 * so). The host's search and options lines are kept. Read in the host mount namespace. */
char *etc_resolv_conf(char *const *dns);

/* hosts: localhost lines, then the entries in order (the container's own first); an entry whose address
 * is not an IP address or whose names are not container or host names is left out. */
char *etc_hosts(const EtcHost *entries, size_t n);

/* Writes data to <dir_fd>/<name> in place (truncate + write, never rename): the file is bind-mounted
 * into the running container, which keeps seeing the inode it got. */
int etc_write_in_place(int dir_fd, const char *name, const char *data);
