/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "etc-files.h"
#include "fs-util.h"
#include "macro.h"
#include "request.h"

#define ETC_HOST_RESOLV_MAX (64U * 1024U)

static bool is_loopback(const char *a) {
        return g_str_has_prefix(a, "127.") || streq(a, "::1");
}

/* The nameserver, search and options lines of a resolv.conf; only well-formed values are kept (they are
 * copied into every container). */
static void read_resolv(const char *path, GPtrArray *servers, GPtrArray *other) {
        g_autofree char *data = NULL;
        g_auto(GStrv) lines = NULL;
        gsize len;

        if (!g_file_get_contents(path, &data, &len, NULL) || len > ETC_HOST_RESOLV_MAX)
                return;
        lines = g_strsplit(data, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) w = g_strsplit_set(g_strstrip(*l), " \t", -1);
                if (!w[0] || !w[1])
                        continue;
                if (streq(w[0], "nameserver") && ip_address_is_valid(w[1]))
                        g_ptr_array_add(servers, g_strdup(w[1]));
                else if (other && (streq(w[0], "search") || streq(w[0], "options"))) {
                        bool clean = true;
                        for (const char *c = *l; *c; c++)
                                clean = clean && (unsigned char) *c >= 0x20 && *c != 0x7f;
                        if (clean && strlen(*l) < 1024)
                                g_ptr_array_add(other, g_strdup(*l));
                }
        }
}

char *etc_resolv_conf(char *const *dns) {
        g_autoptr(GPtrArray) servers = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) other = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GString) s = g_string_new("# Written by berth for this container.\n");
        bool all_loopback = true;

        if (dns && dns[0]) {
                for (char *const *d = dns; *d; d++)
                        g_ptr_array_add(servers, g_strdup(*d));
                g_autoptr(GPtrArray) host_servers = g_ptr_array_new_with_free_func(g_free);
                read_resolv("/etc/resolv.conf", host_servers, other);
        } else {
                read_resolv("/etc/resolv.conf", servers, other);
                for (unsigned i = 0; i < servers->len; i++)
                        all_loopback = all_loopback && is_loopback(servers->pdata[i]);
                if (servers->len == 0 || all_loopback) {
                        /* A resolver on the host's loopback is not reachable from the container's own
                         * namespace: systemd-resolved's upstream servers are. */
                        g_ptr_array_set_size(servers, 0);
                        read_resolv("/run/systemd/resolve/resolv.conf", servers, NULL);
                        for (unsigned i = servers->len; i-- > 0;)
                                if (is_loopback(servers->pdata[i]))
                                        g_ptr_array_remove_index(servers, i);
                        if (servers->len == 0)
                                g_string_append(s, "# The host's resolver listens on loopback only and no "
                                                   "upstream server is known: give one with --dns.\n");
                }
        }
        for (unsigned i = 0; i < servers->len; i++)
                g_string_append_printf(s, "nameserver %s\n", (char *) servers->pdata[i]);
        for (unsigned i = 0; i < other->len; i++)
                g_string_append_printf(s, "%s\n", (char *) other->pdata[i]);
        return g_string_free(g_steal_pointer(&s), false);
}

/* Container names may hold '_', host names may not: either kind, nothing that could end a line or start
 * a comment. */
static bool host_names_are_valid(const char *names) {
        g_auto(GStrv) l = g_strsplit(names, " ", -1);

        if (!l[0])
                return false;
        for (char **n = l; *n; n++)
                if (!container_name_is_valid(*n) && !hostname_is_valid(*n))
                        return false;
        return true;
}

char *etc_hosts(const EtcHost *entries, size_t n) {
        GString *s = g_string_new("127.0.0.1\tlocalhost\n"
                                  "::1\tlocalhost ip6-localhost ip6-loopback\n");

        /* SECURITY: the addresses come from CNI plugins' results and the names from state files, and the
         * lines land in other containers' /etc/hosts: an entry that is not an address and plain names is
         * left out rather than written. */
        for (size_t i = 0; i < n; i++)
                if (ip_address_is_valid(entries[i].address) && entries[i].names &&
                    host_names_are_valid(entries[i].names))
                        g_string_append_printf(s, "%s\t%s\n", entries[i].address, entries[i].names);
        return g_string_free(s, false);
}

int etc_write_in_place(int dir_fd, const char *name, const char *data) {
        _cleanup_close_ int fd =
                openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);

        if (fd < 0)
                return -errno;
        return loop_write(fd, data, strlen(data));
}
