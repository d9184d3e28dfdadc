/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fs-util.h"
#include "json-util.h"
#include "network-store.h"

const char *network_dir(void) {
        return getenv("BERTH_NETWORK_DIR") ?: BERTH_SYSCONFDIR "/net.d";
}

static const char *config_dir(void) {
        const char *d = getenv("BERTH_CONFIG_DIR");
        return isempty(d) ? BERTH_SYSCONFDIR : d;
}

int network_lock(const char *runtime_dir) {
        g_autofree char *p = g_build_filename(runtime_dir, "network.lock", NULL);
        int fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int load_file(const char *name, CniNetwork **ret, char **ret_error) {
        g_autofree char *path = g_strdup_printf("%s/%s.conflist", network_dir(), name);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        if (fd < 0)
                return -errno;
        r = read_regular_file_fd(fd, CNI_CONFLIST_MAX, &data, &size);
        if (r < 0)
                return json_set_error(ret_error, -r, "cannot read %s: %s", path, strerror(-r));
        r = cni_network_parse(data, size, ret, ret_error);
        if (r < 0)
                return json_prefix_error(ret_error, "%s", path), r;
        if (!streq((*ret)->name, name)) {
                *ret = cni_network_free(*ret);
                return json_set_error(ret_error, EBADMSG, "%s: its name is not '%s'", path, name);
        }
        return 0;
}

/* ---- IPv4 subnets ---------------------------------------------------------------------------------- */

typedef struct Subnet {
        uint32_t addr; /* host order, network address */
        unsigned prefix;
} Subnet;

static uint32_t mask_of(unsigned prefix) {
        return prefix == 0 ? 0 : UINT32_MAX << (32 - prefix);
}

static int subnet_parse(const char *s, Subnet *ret) {
        g_autofree char *copy = g_strdup(s);
        char *slash = strchr(copy, '/'), *end;
        struct in_addr a;
        unsigned long p;

        if (!slash)
                return -EINVAL;
        *slash = 0;
        errno = 0;
        p = strtoul(slash + 1, &end, 10);
        if (errno || *end || end == slash + 1 || p < 8 || p > 30 || inet_pton(AF_INET, copy, &a) != 1)
                return -EINVAL;
        ret->prefix = (unsigned) p;
        ret->addr = ntohl(a.s_addr) & mask_of(ret->prefix);
        return 0;
}

static bool subnets_overlap(Subnet a, Subnet b) {
        uint32_t m = mask_of(MIN(a.prefix, b.prefix));
        return (a.addr & m) == (b.addr & m);
}

static char *subnet_to_string(Subnet s) {
        struct in_addr a = { .s_addr = htonl(s.addr) };
        char buf[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &a, buf, sizeof(buf));
        return g_strdup_printf("%s/%u", buf, s.prefix);
}

/* A host route (from /proc/net/route: no netlink needed to read it) that overlaps s, described; default
 * routes do not count. NULL when none does. */
static char *route_collision(Subnet s, const char *own_bridge) {
        g_autofree char *data = NULL;
        g_auto(GStrv) lines = NULL;

        if (!g_file_get_contents("/proc/net/route", &data, NULL, NULL))
                return NULL;
        lines = g_strsplit(data, "\n", -1);
        for (char **l = lines; *l; l++) {
                char iface[32];
                unsigned dest, gw, flags, refcnt, use, metric, mask;
                Subnet r;

                if (sscanf(*l, "%31s %x %x %x %u %u %u %x", iface, &dest, &gw, &flags, &refcnt, &use,
                           &metric, &mask) != 8 ||
                    mask == 0 || streq_ptr(iface, own_bridge))
                        /* Default routes, and the route of the bridge this network will use (left by a
                         * removed network of the same bridge: ours to take over). */
                        continue;
                r.addr = ntohl(dest);
                r.prefix = (unsigned) __builtin_popcount(mask);
                if (subnets_overlap(s, r)) {
                        g_autofree char *rs = subnet_to_string(r);
                        return g_strdup_printf("the host route %s dev %s", rs, iface);
                }
        }
        return NULL;
}

static char *network_collision(Subnet s, const char *except) {
        g_auto(GStrv) names = NULL;

        if (network_list(&names) < 0)
                return NULL;
        for (char **n = names; *n; n++) {
                _cleanup_(cni_network_freep) CniNetwork *net = NULL;
                _cleanup_free_ char *msg = NULL;
                Subnet o;

                if (streq_ptr(*n, except) || load_file(*n, &net, &msg) < 0 || !net->subnet ||
                    subnet_parse(net->subnet, &o) < 0)
                        continue;
                if (subnets_overlap(s, o))
                        return g_strdup_printf("berth network '%s' (%s)", *n, net->subnet);
        }
        return NULL;
}

/* Another berth network first: its bridge's route would name it less clearly. */
static char *collision(Subnet s, const char *own_bridge) {
        char *c = network_collision(s, NULL);
        return c ?: route_collision(s, own_bridge);
}

/* ---- writing ---------------------------------------------------------------------------------------- */

static char *bridge_name_for(const char *name) {
        g_auto(GStrv) names = NULL;

        if (streq(name, REQUEST_DEFAULT_NETWORK))
                return g_strdup("berth0");
        (void) network_list(&names);
        for (unsigned i = 1; i < 10000; i++) {
                g_autofree char *b = g_strdup_printf("berth%u", i);
                bool used = false;

                for (char **n = names; n && *n && !used; n++) {
                        _cleanup_(cni_network_freep) CniNetwork *net = NULL;
                        _cleanup_free_ char *msg = NULL;
                        used = load_file(*n, &net, &msg) >= 0 && streq_ptr(net->bridge, b);
                }
                if (!used)
                        return g_steal_pointer(&b);
        }
        return NULL;
}

static char *conflist_text(const char *name, const char *bridge, const char *subnet, const char *gateway) {
        /* bridge + host-local: a veth into the bridge, an address from the subnet, a default route via
         * the gateway, masquerading out; portmap: published ports (DNAT, and SNAT/route_localnet so that
         * 127.0.0.1 works); firewall: lets the bridge's traffic through a FORWARD chain with a DROP
         * policy; tuning: the place for per-network sysctls. */
        return g_strdup_printf("{\n"
                               "  \"cniVersion\": \"%s\",\n"
                               "  \"name\": \"%s\",\n"
                               "  \"plugins\": [\n"
                               "    {\n"
                               "      \"type\": \"bridge\",\n"
                               "      \"bridge\": \"%s\",\n"
                               "      \"isGateway\": true,\n"
                               "      \"ipMasq\": true,\n"
                               "      \"hairpinMode\": true,\n"
                               "      \"ipam\": {\n"
                               "        \"type\": \"host-local\",\n"
                               "        \"ranges\": [[{ \"subnet\": \"%s\", \"gateway\": \"%s\" }]],\n"
                               "        \"routes\": [{ \"dst\": \"0.0.0.0/0\" }]\n"
                               "      }\n"
                               "    },\n"
                               "    { \"type\": \"portmap\", \"snat\": true, \"capabilities\": { "
                               "\"portMappings\": true } },\n"
                               "    { \"type\": \"firewall\", \"backend\": \"iptables\" },\n"
                               "    { \"type\": \"tuning\" }\n"
                               "  ]\n"
                               "}\n",
                               CNI_VERSION, name, bridge, subnet, gateway);
}

static int pick_gateway(Subnet s, const char *gateway, char **ret, char **ret_error) {
        struct in_addr a;
        uint32_t g;
        char buf[INET_ADDRSTRLEN];

        if (gateway) {
                if (inet_pton(AF_INET, gateway, &a) != 1)
                        return json_set_error(ret_error, EINVAL, "'%s' is not an IPv4 address", gateway);
                g = ntohl(a.s_addr);
                if ((g & mask_of(s.prefix)) != s.addr || g == s.addr || g == (s.addr | ~mask_of(s.prefix)))
                        return json_set_error(ret_error, EINVAL,
                                              "the gateway %s is not a host of the subnet", gateway);
        } else
                g = s.addr + 1;
        a.s_addr = htonl(g);
        inet_ntop(AF_INET, &a, buf, sizeof(buf));
        *ret = g_strdup(buf);
        return 0;
}

int network_create(const char *name, const char *subnet, const char *gateway, CniNetwork **ret,
                   char **ret_error) {
        g_autofree char *path = NULL, *gw = NULL, *sub = NULL, *text = NULL, *bridge = NULL, *why = NULL;
        g_auto(GStrv) names = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        Subnet s;
        int r;

        if (!network_name_is_valid(name) || streq(name, "none") || streq(name, "host"))
                return json_set_error(ret_error, EINVAL, "invalid network name '%.64s'", name);
        (void) network_list(&names);
        if (names && g_strv_length(names) >= NETWORKS_MAX)
                return json_set_error(ret_error, E2BIG, "there are %u networks already", NETWORKS_MAX);
        path = g_strdup_printf("%s/%s.conflist", network_dir(), name);
        if (access(path, F_OK) >= 0)
                return json_set_error(ret_error, EEXIST, "network '%s' exists", name);

        bridge = bridge_name_for(name);
        if (!bridge)
                return json_set_error(ret_error, E2BIG, "no free bridge name");
        if (subnet) {
                if (subnet_parse(subnet, &s) < 0)
                        return json_set_error(ret_error, EINVAL, "'%s' is not an IPv4 subnet a.b.c.d/8..30",
                                              subnet);
                why = collision(s, bridge);
                if (why)
                        return json_set_error(ret_error, EADDRINUSE, "the subnet %s overlaps %s", subnet,
                                              why);
        } else {
                /* Picked: the first candidate nothing on the host uses. */
                bool found = false;
                (void) subnet_parse(NETWORK_DEFAULT_SUBNET, &s);
                for (unsigned i = 0; i <= 256 && !found; i++) {
                        char cand[32];
                        if (i > 0 && snprintf_ok(cand, "10.89.%u.0/24", i - 1))
                                (void) subnet_parse(cand, &s);
                        g_free(why);
                        why = collision(s, bridge);
                        found = !why;
                }
                if (!found)
                        return json_set_error(
                                ret_error, EADDRINUSE,
                                "no free subnet among 10.88.0.0/16 and 10.89.0-255.0/24 (the last "
                                "one overlaps %s): give one with --subnet",
                                why);
        }
        r = pick_gateway(s, gateway, &gw, ret_error);
        if (r < 0)
                return r;
        sub = subnet_to_string(s);
        text = conflist_text(name, bridge, sub, gw);

        if (mkdir(network_dir(), 0755) < 0 && errno != EEXIST)
                return json_set_error(ret_error, errno, "cannot create %s: %m", network_dir());
        dir_fd = open(network_dir(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return json_set_error(ret_error, errno, "cannot open %s: %m", network_dir());
        g_free(path);
        path = g_strdup_printf("%s.conflist", name);
        r = write_file_atomic_at(dir_fd, path, text, strlen(text), 0644);
        if (r < 0)
                return json_set_error(ret_error, -r, "cannot write %s/%s: %s", network_dir(), path,
                                      strerror(-r));
        return ret ? load_file(name, ret, ret_error) : 0;
}

/* The default network's subnet as the admin configured it, or NULL (picked). */
static int default_settings(char **ret_subnet, char **ret_gateway, char **ret_error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autofree char *path = g_build_filename(config_dir(), "network.conf", NULL);
        g_autoptr(GError) e = NULL;

        *ret_subnet = *ret_gateway = NULL;
        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e))
                return g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                               ? 0
                               : json_set_error(ret_error, EINVAL, "cannot read %s: %s", path, e->message);
        *ret_subnet = g_key_file_get_string(kf, "network", "DefaultSubnet", NULL);
        *ret_gateway = g_key_file_get_string(kf, "network", "DefaultGateway", NULL);
        if (*ret_subnet)
                g_strstrip(*ret_subnet);
        if (*ret_gateway)
                g_strstrip(*ret_gateway);
        return 0;
}

int network_load(const char *name, bool create_default, CniNetwork **ret, char **ret_error) {
        g_autofree char *subnet = NULL, *gateway = NULL;
        int r;

        if (!network_name_is_valid(name))
                return json_set_error(ret_error, EINVAL, "invalid network name '%.64s'", name);
        r = load_file(name, ret, ret_error);
        if (r != -ENOENT || !create_default || !streq(name, REQUEST_DEFAULT_NETWORK)) {
                if (r == -ENOENT)
                        return json_set_error(ret_error, ENOENT, "no network '%s' (berthctl network ls)",
                                              name);
                return r;
        }
        r = default_settings(&subnet, &gateway, ret_error);
        if (r < 0)
                return r;
        r = network_create(name, isempty(subnet) ? NULL : subnet, isempty(gateway) ? NULL : gateway, ret,
                           ret_error);
        if (r < 0)
                return json_prefix_error(ret_error, "cannot create the default network '%s'", name), r;
        return 0;
}

int network_remove(const char *name) {
        g_autofree char *path = NULL;

        if (!network_name_is_valid(name))
                return -EINVAL;
        path = g_strdup_printf("%s/%s.conflist", network_dir(), name);
        return unlink(path) < 0 ? -errno : 0;
}

static gint compare_str(gconstpointer a, gconstpointer b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int network_list(char ***ret) {
        g_autoptr(GPtrArray) l = g_ptr_array_new_with_free_func(g_free);
        _cleanup_closedir_ DIR *d = opendir(network_dir());
        struct dirent *de;

        while (d && (de = readdir(d))) {
                size_t n = strlen(de->d_name);
                g_autofree char *name = NULL;

                if (n <= 9 || !g_str_has_suffix(de->d_name, ".conflist"))
                        continue;
                name = g_strndup(de->d_name, n - 9);
                if (network_name_is_valid(name) && l->len < NETWORKS_MAX)
                        g_ptr_array_add(l, g_steal_pointer(&name));
        }
        g_ptr_array_sort(l, compare_str);
        g_ptr_array_set_free_func(l, NULL);
        g_ptr_array_add(l, NULL);
        *ret = (char **) g_ptr_array_free(g_steal_pointer(&l), false);
        return 0;
}
