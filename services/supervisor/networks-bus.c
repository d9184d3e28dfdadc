/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.berth.Supervisor1's network methods (broker only): CreateNetwork, RemoveNetwork, ListNetworks,
 * InspectNetwork. The broker authorised the caller (org.berth.network-manage for changes); we validate
 * every argument again. Changes are written by a child in the host mount namespace (our /etc is
 * read-only under systemd), under the network lock. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "container.h"
#include "host-mntns.h"
#include "json-util.h"
#include "log.h"
#include "net-attach.h"
#include "network-store.h"
#include "networks-bus.h"

typedef struct NetworkOp {
        const char *name, *subnet, *gateway; /* subnet NULL: remove */
} NetworkOp;

typedef struct OpRecord {
        int32_t error;
        char message[BERTH_ERROR_MESSAGE_MAX];
} OpRecord;

/* The bridge plugin makes a network's bridge and never removes it; with the network gone, nothing else
 * uses it. iproute2 does it: berth has no netlink code of its own. */
static void bridge_delete(const char *bridge) {
        g_autofree char *sys = g_strdup_printf("/sys/class/net/%s/bridge", bridge);
        const char *argv[] = { "ip", "link", "delete", bridge, "type", "bridge", NULL };
        int status;

        if (strlen(bridge) >= 16 || strchr(bridge, '/') || access(sys, F_OK) < 0)
                return;
        if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                          NULL, NULL, NULL, &status, NULL) ||
            !g_spawn_check_wait_status(status, NULL))
                log_warning("Failed to delete bridge '%s' of a removed network.", bridge);
}

static _noreturn_ void op_child(Manager *m, const NetworkOp *op, int fd) {
        g_autofree char *runtime_dir = g_path_get_dirname(m->containers_path);
        _cleanup_free_ char *msg = NULL;
        OpRecord rec = {};
        int r, lock_fd;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        r = host_mntns_join();
        if (r < 0)
                msg = strdup("cannot join the host mount namespace");
        lock_fd = r >= 0 ? network_lock(runtime_dir) : -EBADF;
        if (r >= 0 && lock_fd < 0) {
                r = lock_fd;
                msg = strdup("cannot take the network lock");
        }
        if (r >= 0 && op->subnet)
                r = network_create(op->name, isempty(op->subnet) ? NULL : op->subnet,
                                   isempty(op->gateway) ? NULL : op->gateway, NULL, &msg);
        else if (r >= 0) {
                /* SECURITY: under the lock, so that no container attaches between the check and the
                 * removal; an attachment (any container state) keeps its network. */
                int users = net_network_users(m->containers_path, op->name, NULL);
                if (users > 0) {
                        r = -EBUSY;
                        msg = g_strdup_printf("network '%s' is in use by %d container%s", op->name, users,
                                              users == 1 ? "" : "s");
                } else {
                        _cleanup_(cni_network_freep) CniNetwork *net = NULL;
                        _cleanup_free_ char *ignored = NULL;

                        (void) network_load(op->name, false, &net, &ignored);
                        r = network_remove(op->name);
                        if (r == -ENOENT)
                                msg = g_strdup_printf("no network '%s'", op->name);
                        if (r >= 0 && net && net->bridge)
                                bridge_delete(net->bridge);
                }
        }
        rec.error = r < 0 ? -r : 0;
        snprintf(rec.message, sizeof(rec.message), "%s", msg ?: (r < 0 ? strerror(-r) : ""));
        (void) send(fd, &rec, sizeof(rec), MSG_NOSIGNAL);
        _exit(r < 0 ? 1 : 0);
}

static int run_op(Manager *m, const NetworkOp *op, OpRecord *ret) {
        int sp[2], status;
        pid_t pid;
        ssize_t n;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                safe_close(sp[0]);
                safe_close(sp[1]);
                return r;
        }
        if (pid == 0) {
                safe_close(sp[0]);
                op_child(m, op, sp[1]);
        }
        safe_close(sp[1]);
        /* Short: a file write under a lock only containers' creations hold, briefly. */
        n = recv(sp[0], ret, sizeof(*ret), 0);
        safe_close(sp[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (n != (ssize_t) sizeof(*ret))
                return -EIO;
        ret->message[sizeof(ret->message) - 1] = 0;
        return 0;
}

static const char *error_name(int error) {
        switch (error) {
        case EEXIST:
                return BERTH_ERROR_EXISTS;
        case ENOENT:
                return BERTH_ERROR_NOT_FOUND;
        case EBUSY:
        case EADDRINUSE:
                return BERTH_ERROR_BUSY;
        case E2BIG:
                return BERTH_ERROR_LIMIT;
        case EINVAL:
                return BERTH_ERROR_INVALID_ARGS;
        default:
                return BERTH_ERROR_IO;
        }
}

static JsonNode *network_document(Manager *m, const CniNetwork *n) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *file = g_strdup_printf("%s/%s.conflist", network_dir(), n->name);
        JsonNode *users = NULL;
        int count = net_network_users(m->containers_path, n->name, &users);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, n->name);
        json_builder_set_member_name(b, "bridge");
        json_builder_add_string_value(b, n->bridge ?: "");
        json_builder_set_member_name(b, "subnet");
        json_builder_add_string_value(b, n->subnet ?: "");
        json_builder_set_member_name(b, "gateway");
        json_builder_add_string_value(b, n->gateway ?: "");
        json_builder_set_member_name(b, "plugins");
        json_builder_begin_array(b);
        for (guint i = 0; i < json_array_get_length(n->plugins); i++) {
                JsonObject *p = json_node_get_object(json_array_get_element(n->plugins, i));
                json_builder_add_string_value(b, json_object_get_string_member(p, "type"));
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "file");
        json_builder_add_string_value(b, file);
        json_builder_set_member_name(b, "container_count");
        json_builder_add_int_value(b, count);
        json_builder_set_member_name(b, "containers");
        json_builder_add_value(b, users);
        json_builder_set_member_name(b, "conflist");
        json_builder_add_value(b, json_node_copy(n->root));
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

static int reply_document(sd_bus_message *msg, Manager *m, const char *name, sd_bus_error *error) {
        _cleanup_(cni_network_freep) CniNetwork *n = NULL;
        _cleanup_free_ char *text = NULL, *err = NULL;
        g_autoptr(JsonNode) doc = NULL;
        int r;

        r = network_load(name, false, &n, &err);
        if (r < 0)
                return sd_bus_error_setf(error, error_name(-r), "%s", strna(err));
        doc = network_document(m, n);
        text = json_to_string_compact(doc);
        if (!text)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", text);
}

int method_create_network(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *subnet, *gateway;
        uint64_t flags;
        OpRecord rec;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "ssst", &name, &subnet, &gateway, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (!network_name_is_valid(name) || streq(name, "none") || streq(name, "host"))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid network name '%.64s'.",
                                         name);
        if (strlen(subnet) > 64 || strlen(gateway) > 64 ||
            (!isempty(gateway) && !ip_address_is_valid(gateway)))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid subnet or gateway.");
        NetworkOp op = { .name = name, .subnet = subnet, .gateway = gateway };
        r = run_op(m, &op, &rec);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot create network '%s': %s", name,
                                         strerror(-r));
        if (rec.error != 0)
                return sd_bus_error_setf(error, error_name(rec.error), "Cannot create network '%s': %s",
                                         name, rec.message);
        log_info("Created network '%s'.", name);
        return reply_document(msg, m, name, error);
}

int method_remove_network(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name;
        uint64_t flags;
        OpRecord rec;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "st", &name, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (!network_name_is_valid(name))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid network name '%.64s'.",
                                         name);
        NetworkOp op = { .name = name };
        r = run_op(m, &op, &rec);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot remove network '%s': %s", name,
                                         strerror(-r));
        if (rec.error != 0)
                return sd_bus_error_setf(error, error_name(rec.error), "Cannot remove network '%s': %s",
                                         name, rec.message);
        log_info("Removed network '%s'.", name);
        return sd_bus_reply_method_return(msg, NULL);
}

int method_list_networks(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_auto(GStrv) names = NULL;
        uint64_t flags;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        (void) network_list(&names);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssssu)");
        for (char **n = names; r >= 0 && n && *n; n++) {
                _cleanup_(cni_network_freep) CniNetwork *net = NULL;
                _cleanup_free_ char *err = NULL;

                if (network_load(*n, false, &net, &err) < 0) {
                        log_warning("Skipping network '%s': %s", *n, strna(err));
                        continue;
                }
                r = sd_bus_message_append(reply, "(ssssu)", net->name, net->bridge ?: "", net->subnet ?: "",
                                          net->gateway ?: "",
                                          (uint32_t) net_network_users(m->containers_path, net->name, NULL));
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int method_inspect_network(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *name;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!network_name_is_valid(name))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid network name '%.64s'.",
                                         name);
        return reply_document(msg, userdata, name, error);
}

int method_get_container_network(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *text = NULL;
        g_autoptr(JsonNode) summary = NULL;
        Container *c;
        int r;

        r = container_bus_read_id_flags(msg, userdata, 0, &c, NULL, error);
        if (r < 0)
                return r;
        summary = net_attachment_summary(c->state_dir_fd);
        text = summary ? json_to_string_compact(summary) : strdup("{}");
        if (!text)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", text);
}
