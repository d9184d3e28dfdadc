/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl start / stop / kill / wait / rm / ls / inspect / logs, and the ctr-style groups
 * `containers VERB` and `tasks ls`. Each acts on /org/berth/Broker1/container/<id> objects. */
#include <fcntl.h>
#include <getopt.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berthctl.h"
#include "bus-names.h"
#include "json-util.h"
#include "bus-util.h"
#include "container-cli.h"
#include "container-network.h"
#include "fs-util.h"
#include "output.h"
#include "polkit-agent.h"
#include "table.h"

/* The verbs that take NAME... and call one method each. */
static int for_each_name(int argc, char *argv[], int first, const char *what,
                         int (*fn)(sd_bus *bus, const char *path, const char *name, void *userdata),
                         void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int ret = 0, r;

        if (first >= argc) {
                fprintf(stderr, "berthctl: %s: expected a container name (see --help)\n", what);
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r < 0)
                return r;
        for (int i = first; i < argc; i++) {
                _cleanup_free_ char *path = NULL;

                r = container_resolve(bus, argv[i], what, &path);
                if (r >= 0)
                        r = fn(bus, path, argv[i], userdata);
                if (r < 0)
                        ret = r;
        }
        return ret;
}

/* ---- start ------------------------------------------------------------------------------------------ */

static int cmd_start(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *path = NULL;
        bool attach = false;
        int i = 1, r;

        if (wants_help(argc, argv)) {
                printf("berthctl start [-a] NAME\n\nStart a created container; -a waits for it and prints "
                       "its output, exiting with its status.\n");
                return 0;
        }
        if (i < argc && (streq(argv[i], "-a") || streq(argv[i], "--attach"))) {
                attach = true;
                i++;
        }
        if (i + 1 != argc) {
                fprintf(stderr, "berthctl: start: expected one container name (see --help)\n");
                return CLI_EXIT_ERROR;
        }
        r = broker_connect(&bus);
        if (r >= 0)
                r = container_resolve(bus, argv[i], "start", &path);
        if (r >= 0)
                r = container_call(bus, path, "Start", NULL, "start", "t", UINT64_C(0));
        if (r < 0)
                return CLI_EXIT_ERROR;
        if (!attach) {
                printf("%s\n", argv[i]);
                return 0;
        }
        r = container_print_log(bus, path, true, "start");
        return r < 0 ? CLI_EXIT_ERROR : r;
}

/* ---- stop, kill, wait, rm ---------------------------------------------------------------------------- */

static int stop_one(sd_bus *bus, const char *path, const char *name, void *userdata) {
        uint32_t timeout = *(uint32_t *) userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE,
                                           "Stop");
        if (r >= 0)
                r = sd_bus_message_append(m, "ut", timeout, UINT64_C(0));
        if (r < 0)
                return report_bus_error("stop", NULL, r);
        /* The reply comes with the exit: up to the timeout and then the SIGKILL. */
        r = polkit_agent_call(bus, m, (uint64_t) (timeout + 30) * 1000000 + broker_default_timeout(), &error,
                              &reply);
        if (r < 0)
                return report_bus_error("stop", &error, r);
        printf("%s\n", name);
        return 0;
}

static int cmd_stop(int argc, char *argv[]) {
        uint32_t timeout = 10;
        int i = 1;

        if (wants_help(argc, argv)) {
                printf("berthctl stop [-t SECONDS] NAME...\n\nStop containers: SIGTERM, then SIGKILL after "
                       "SECONDS (default 10).\n");
                return 0;
        }
        if (i + 1 < argc &&
            (streq(argv[i], "-t") || streq(argv[i], "--time") || streq(argv[i], "--timeout"))) {
                char *end;
                unsigned long v;

                errno = 0;
                v = strtoul(argv[i + 1], &end, 10);
                if (errno != 0 || *end || end == argv[i + 1] || v > 86400 || argv[i + 1][0] == '-') {
                        fprintf(stderr, "berthctl: stop: invalid timeout '%s'\n", argv[i + 1]);
                        return -EINVAL;
                }
                timeout = (uint32_t) v;
                i += 2;
        }
        return for_each_name(argc, argv, i, "stop", stop_one, &timeout);
}

static int parse_signal(const char *s) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno == 0 && *end == 0 && end != s)
                return v > 0 && v < NSIG ? (int) v : -EINVAL;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (int i = 1; i < NSIG; i++) {
                const char *n = sigabbrev_np(i);

                if (n && strcasecmp(n, s) == 0)
                        return i;
        }
        return -EINVAL;
}

static int kill_one(sd_bus *bus, const char *path, const char *name, void *userdata) {
        int r = container_call(bus, path, "Kill", NULL, "kill", "it", (int32_t) * (int *) userdata,
                               UINT64_C(0));

        if (r >= 0)
                printf("%s\n", name);
        return r;
}

static int cmd_kill(int argc, char *argv[]) {
        int sig = SIGKILL, i = 1;

        if (wants_help(argc, argv)) {
                printf("berthctl kill [-s SIGNAL] NAME...\n\nSend a signal (default KILL) to the "
                       "containers' "
                       "init.\n");
                return 0;
        }
        if (i + 1 < argc && (streq(argv[i], "-s") || streq(argv[i], "--signal"))) {
                sig = parse_signal(argv[i + 1]);
                if (sig < 0) {
                        fprintf(stderr, "berthctl: kill: unknown signal '%s'\n", argv[i + 1]);
                        return -EINVAL;
                }
                i += 2;
        }
        return for_each_name(argc, argv, i, "kill", kill_one, &sig);
}

static int wait_one(sd_bus *bus, const char *path, const char *name, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *reason;
        int32_t code;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE,
                                           "Wait");
        if (r >= 0)
                r = sd_bus_message_append(m, "t", UINT64_C(0));
        if (r < 0)
                return report_bus_error("wait", NULL, r);
        r = polkit_agent_call(bus, m, UINT64_MAX, &error, &reply);
        if (r < 0)
                return report_bus_error("wait", &error, r);
        r = sd_bus_message_read(reply, "is", &code, &reason);
        if (r < 0)
                return report_bus_error("wait", NULL, r);
        printf("%d\n", code);
        *(int *) userdata = container_exit_status(code);
        return 0;
}

static int cmd_wait(int argc, char *argv[]) {
        int status = 0, r;

        if (wants_help(argc, argv)) {
                printf("berthctl wait NAME...\n\nWait for containers to stop and print their exit codes; "
                       "exits with the last one's.\n");
                return 0;
        }
        r = for_each_name(argc, argv, 1, "wait", wait_one, &status);
        return r < 0 ? CLI_EXIT_ERROR : status;
}

static int rm_one(sd_bus *bus, const char *path, const char *name, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE,
                                           "Remove");
        if (r >= 0)
                r = sd_bus_message_append(m, "t", *(bool *) userdata ? UINT64_C(1) : UINT64_C(0));
        if (r < 0)
                return report_bus_error("rm", NULL, r);
        /* A forced removal waits for the kill. */
        r = polkit_agent_call(bus, m, 120 * 1000000 + broker_default_timeout(), &error, &reply);
        if (r < 0)
                return report_bus_error("rm", &error, r);
        printf("%s\n", name);
        return 0;
}

static int cmd_rm(int argc, char *argv[]) {
        bool force = false;
        int i = 1;

        if (wants_help(argc, argv)) {
                printf("berthctl rm [-f] NAME...\n\nRemove containers (-f: kill running ones first).\n");
                return 0;
        }
        if (i < argc && (streq(argv[i], "-f") || streq(argv[i], "--force"))) {
                force = true;
                i++;
        }
        return for_each_name(argc, argv, i, "rm", rm_one, &force);
}

/* ---- ls --------------------------------------------------------------------------------------------- */

static void format_ago(char *buf, size_t size, uint64_t usec) {
        struct timespec ts;
        uint64_t now, d;

        if (usec == 0) {
                snprintf(buf, size, "-");
                return;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        d = now > usec ? (now - usec) / 1000000 : 0;
        if (d < 60)
                snprintf(buf, size, "%llu seconds ago", (unsigned long long) d);
        else if (d < 3600)
                snprintf(buf, size, "%llu minutes ago", (unsigned long long) d / 60);
        else if (d < 86400)
                snprintf(buf, size, "%llu hours ago", (unsigned long long) d / 3600);
        else
                snprintf(buf, size, "%llu days ago", (unsigned long long) d / 86400);
}

static char *status_text(const char *status, int32_t code, const char *reason) {
        if (streq(status, "stopped")) {
                if (streq(reason, "oom"))
                        return g_strdup_printf("exited (%d, oom)", code);
                if (streq(reason, "lost"))
                        return g_strdup("lost");
                return g_strdup_printf("exited (%d)", code);
        }
        return g_strdup(status);
}

static char *owner_text(uint32_t uid) {
        struct passwd *pw = getpwuid(uid);

        return pw ? g_strdup(pw->pw_name) : g_strdup_printf("%u", uid);
}

static const TableColumn container_columns[] = {
        { "NAME", -24, "Name" },  { "IMAGE", -32, "Image" },         { "STATUS", -20, "Status" },
        { "PID", -8, "Pid" },     { "OWNER", -10, "Owner" },         { "CREATED", -16, "CreatedAt" },
        { NULL, 0, "Id" },        { NULL, 0, "ExitCode" },           { NULL, 0, "Reason" },
        { NULL, 0, "StartedAt" }, { NULL, 0, "FinishedAt" },         { NULL, 0, "Path" },
        { NULL, 0, "Health" },    { "RESTARTS", 8, "RestartCount" },
};

/* Health and RestartCount, properties (ListContainers' signature is fixed), in one GetAll; "" and 0
 * when unreadable (another user's container). */
static void row_properties(sd_bus *bus, const char *path, char **ret_health, uint32_t *ret_restarts) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *key, *health = "";
        uint32_t restarts = 0;
        int r;

        r = sd_bus_call_method(bus, BERTH_BROKER_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                               NULL, &reply, "s", BERTH_BROKER_CONTAINER_IFACE);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0 && streq(key, "Health"))
                        r = sd_bus_message_read(reply, "v", "s", &health);
                else if (r >= 0 && streq(key, "RestartCount"))
                        r = sd_bus_message_read(reply, "v", "u", &restarts);
                else if (r >= 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        *ret_health = g_strdup(r < 0 ? "" : health);
        *ret_restarts = r < 0 ? 0 : restarts;
}

static JsonNode *json_int(gint64 v) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);

        json_node_set_int(n, v);
        return n;
}

static JsonNode *json_string(const char *s) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);

        json_node_set_string(n, s);
        return n;
}

static int list(bool all, bool all_users, bool json) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t =
                table_new(container_columns, ELEMENTSOF(container_columns), json ? TABLE_JSON : TABLE_TEXT);
        const char *id, *name, *image, *status, *reason, *path;
        uint64_t created, started, finished;
        uint32_t pid, owner;
        int32_t code;
        int r;

        r = broker_connect_call(&bus, "ListContainers", &reply, "ls", "t",
                                all_users ? UINT64_C(1) : UINT64_C(0));
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssssuisuttto)");
        if (r < 0)
                return report_bus_error("ls", NULL, r);
        while ((r = sd_bus_message_read(reply, "(ssssuisuttto)", &id, &name, &image, &status, &pid, &code,
                                        &reason, &owner, &created, &started, &finished, &path)) > 0) {
                g_autofree char *st = NULL, *own = NULL, *health = NULL;
                char ago[64], pidbuf[16];
                uint32_t restarts;

                if (!all && !streq(status, "running") && !streq(status, "paused"))
                        continue;
                st = status_text(status, code, reason);
                row_properties(bus, path, &health, &restarts);
                /* The health of a running container only (the last check's word outlives it). */
                if (!streq(status, "running"))
                        g_clear_pointer(&health, g_free);
                /* A running container with a health check: "running (healthy)", as docker shows it. */
                if (!isempty(health)) {
                        g_autofree char *old = g_steal_pointer(&st);
                        st = g_strdup_printf("%s (%s)", old, health);
                }
                own = owner_text(owner);
                format_ago(ago, sizeof(ago), created);
                snprintf(pidbuf, sizeof(pidbuf), pid > 0 ? "%u" : "-", pid);

                table_add_string(t, name);
                table_add_string(t, image);
                table_add_cell(t, st, json_string(status));
                table_add_cell(t, pidbuf, json_int(pid));
                table_add_cell(t, own, json_int(owner));
                table_add_cell(t, ago, json_int((gint64) created));
                table_add_string(t, id);
                table_add_cell(t, NULL, json_int(code));
                table_add_string(t, reason);
                table_add_cell(t, NULL, json_int((gint64) started));
                table_add_cell(t, NULL, json_int((gint64) finished));
                table_add_string(t, path);
                table_add_string(t, health ?: "");
                table_add_uint(t, restarts);
        }
        if (r < 0)
                return report_bus_error("ls", NULL, r);
        table_print(t);
        return 0;
}

static int cmd_ls(int argc, char *argv[]) {
        bool all = false, all_users = false;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        printf("berthctl ls [-a] [--all-users] [--json]\n\nList containers: running ones, "
                               "or with "
                               "-a all. A user sees their own; --all-users (container-manage-any) "
                               "everyone's.\n");
                        return 0;
                } else if (streq(argv[i], "-a") || streq(argv[i], "--all"))
                        all = true;
                else if (streq(argv[i], "--all-users"))
                        all_users = true;
                else if (streq(argv[i], "--json"))
                        arg.json = true;
                else {
                        fprintf(stderr, "berthctl: ls: unknown argument '%s'\n", argv[i]);
                        return -EINVAL;
                }
        }
        return list(all, all_users, arg.json);
}

static int cmd_tasks_ls(int argc, char *argv[]) {
        /* ctr's tasks are the running containers. */
        return list(false, false, arg.json);
}

/* ---- inspect ---------------------------------------------------------------------------------------- */

static int get_properties(sd_bus *bus, const char *path, JsonBuilder *b, JsonNode **ret_options) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = polkit_agent_call_method(bus, BERTH_BROKER_NAME, path, "org.freedesktop.DBus.Properties",
                                     "GetAll", &error, &reply, "s", BERTH_BROKER_CONTAINER_IFACE);
        if (r < 0)
                return report_bus_error("inspect", &error, r);
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0) {
                const char *key, *type;
                char t;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, &t, &type);
                if (r < 0)
                        break;
                r = sd_bus_message_enter_container(reply, 'v', type);
                if (r < 0)
                        break;
                if (streq(key, "Options")) {
                        const char *s;

                        r = sd_bus_message_read(reply, "s", &s);
                        if (r >= 0)
                                *ret_options = json_from_string(s, NULL);
                } else {
                        json_builder_set_member_name(b, key);
                        if (streq(type, "s")) {
                                const char *s;
                                r = sd_bus_message_read(reply, "s", &s);
                                json_builder_add_string_value(b, s);
                        } else if (streq(type, "u")) {
                                uint32_t u;
                                r = sd_bus_message_read(reply, "u", &u);
                                json_builder_add_int_value(b, u);
                        } else if (streq(type, "i")) {
                                int32_t i;
                                r = sd_bus_message_read(reply, "i", &i);
                                json_builder_add_int_value(b, i);
                        } else if (streq(type, "t")) {
                                uint64_t t64;
                                r = sd_bus_message_read(reply, "t", &t64);
                                json_builder_add_int_value(b, (gint64) t64);
                        } else if (streq(type, "b")) {
                                int v;
                                r = sd_bus_message_read(reply, "b", &v);
                                json_builder_add_boolean_value(b, v);
                        } else {
                                r = sd_bus_message_skip(reply, type);
                                json_builder_add_null_value(b);
                        }
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = 1;
        }
        if (r < 0)
                return report_bus_error("inspect", NULL, r);
        return 0;
}

static JsonNode *get_spec(sd_bus *bus, const char *path, char **ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *json;
        JsonNode *n;
        int r;

        r = polkit_agent_call_method(bus, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE, "GetSpec",
                                     &error, &reply, "t", UINT64_C(0));
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &json);
        if (r < 0) {
                *ret_error = strdup(error.message ?: strerror(-r));
                return NULL;
        }
        n = json_from_string(json, NULL);
        if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
                if (n)
                        json_node_unref(n);
                *ret_error = strdup("the broker sent an invalid spec summary");
                return NULL;
        }
        return n;
}

static gint64 member_int(JsonObject *o, const char *name) {
        JsonNode *n = o ? json_object_get_member(o, name) : NULL;

        return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64
                       ? json_node_get_int(n)
                       : 0;
}

/* Mounts: the bind mounts of the spec; Limits: its resources, in the units of the run options. */
static void add_spec_mounts_and_limits(JsonBuilder *b, JsonNode *spec) {
        JsonObject *s = spec ? json_node_get_object(spec) : NULL;
        JsonArray *mounts = s ? json_object_get_array_or_null(s, "Mounts") : NULL;
        JsonNode *rn = s ? json_object_get_member(s, "Resources") : NULL;
        JsonObject *res = rn && JSON_NODE_HOLDS_OBJECT(rn) ? json_node_get_object(rn) : NULL;
        gint64 quota = member_int(res, "CpuQuota"), period = member_int(res, "CpuPeriod");

        json_builder_set_member_name(b, "Mounts");
        json_builder_begin_array(b);
        for (guint i = 0; mounts && i < json_array_get_length(mounts); i++) {
                JsonNode *e = json_array_get_element(mounts, i);
                JsonObject *m = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                JsonArray *opts = m ? json_object_get_array_or_null(m, "Options") : NULL;
                const char *type = m ? json_object_get_string_member_with_default(m, "Type", "") : "";
                bool ro = false;

                if (!streq_ptr(type, "bind"))
                        continue;
                for (guint j = 0; opts && j < json_array_get_length(opts); j++)
                        if (streq_ptr(json_array_get_string_element(opts, j), "ro"))
                                ro = true;
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "Destination");
                json_builder_add_string_value(
                        b, json_object_get_string_member_with_default(m, "Destination", ""));
                json_builder_set_member_name(b, "ReadOnly");
                json_builder_add_boolean_value(b, ro);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);

        json_builder_set_member_name(b, "Limits");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "Memory");
        json_builder_add_int_value(b, member_int(res, "Memory"));
        json_builder_set_member_name(b, "CpuQuotaMilli");
        json_builder_add_int_value(b, quota > 0 && period > 0 ? quota * 1000 / period : 0);
        json_builder_set_member_name(b, "PidsLimit");
        json_builder_add_int_value(b, member_int(res, "PidsLimit"));
        json_builder_end_object(b);
}

static int inspect_one(sd_bus *bus, const char *path, const char *name, void *userdata) {
        JsonBuilder *all = userdata;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) options = NULL, root = NULL, spec = NULL;
        _cleanup_free_ char *spec_error = NULL;
        int r;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "State");
        json_builder_begin_object(b);
        r = get_properties(bus, path, b, &options);
        if (r < 0)
                return r;
        json_builder_end_object(b);
        /* What the user asked for (the broker's validated options). */
        json_builder_set_member_name(b, "Config");
        if (options)
                json_builder_add_value(b, json_node_copy(options));
        else
                json_builder_add_null_value(b);
        /* The summary of the runtime spec the container runs with: the config.json the supervisor wrote,
         * read back through the broker (Container.GetSpec); mounts and limits come from it too. */
        spec = get_spec(bus, path, &spec_error);
        json_builder_set_member_name(b, "Spec");
        if (spec)
                json_builder_add_value(b, json_node_copy(spec));
        else {
                json_builder_add_null_value(b);
                json_builder_set_member_name(b, "SpecError");
                json_builder_add_string_value(b, spec_error ?: "unknown error");
        }
        add_spec_mounts_and_limits(b, spec);
        /* Addresses and published ports, from the supervisor's record of the attachment. */
        json_builder_set_member_name(b, "NetworkSettings");
        json_builder_add_value(b, container_network_json(bus, path));
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_builder_add_value(all, json_node_copy(root));
        return 0;
}

static int cmd_inspect(int argc, char *argv[]) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl inspect NAME...\n\nShow containers' state, configuration, spec summary, "
                       "mounts "
                       "and limits as JSON.\n");
                return 0;
        }
        json_builder_begin_array(b);
        r = for_each_name(argc, argv, 1, "inspect", inspect_one, b);
        json_builder_end_array(b);
        if (r < 0)
                return r;
        print_json_builder(b);
        return 0;
}

/* ---- tables of commands ----------------------------------------------------------------------------- */

const Command container_commands[] = {
        { "run", "Run a command in a new container", cmd_run, NULL, true },
        { "create", "Create a container (start it with 'start')", cmd_create, NULL, true },
        { "start", "Start a created container (-a: wait and show its output)", cmd_start, NULL, true },
        { "stop", "Stop containers (SIGTERM, then SIGKILL)", cmd_stop, NULL, false },
        { "kill", "Send a signal to containers", cmd_kill, NULL, false },
        { "wait", "Wait for containers to stop; print their exit codes", cmd_wait, NULL, true },
        { "rm", "Remove containers", cmd_rm, NULL, false },
        { "ls", "List containers", cmd_ls, NULL, false },
        { "ps", "List containers (as ls)", cmd_ls, NULL, false },
        { "inspect", "Show a container as JSON", cmd_inspect, NULL, false },
        { "logs", "Print a detached container's output", cmd_logs, NULL, false },
        /* exec, attach and top: berthctl.c runs them itself (cmd-exec.c). */
        { "events", "Stream container and image events", cmd_events, NULL, false },
        { "stats", "Show containers' resource use", cmd_stats, NULL, false },
        { "pause", "Freeze every process of containers", cmd_pause, NULL, false },
        { "unpause", "Thaw paused containers", cmd_unpause, NULL, false },
        {},
};

/* ctr's spelling: `containers ls|rm|inspect…`, `tasks ls|kill`. */
const Verb containers_verbs[] = {
        { "ls", "[-a] [--json]", "List containers", cmd_ls },
        { "list", "[-a] [--json]", "List containers", cmd_ls },
        { "create", "[OPTIONS] IMAGE [CMD...]", "Create a container", cmd_create },
        { "start", "[-a] NAME", "Start a container", cmd_start },
        { "stop", "[-t S] NAME...", "Stop containers", cmd_stop },
        { "rm", "[-f] NAME...", "Remove containers", cmd_rm },
        { "delete", "[-f] NAME...", "Remove containers", cmd_rm },
        { "inspect", "NAME...", "Show containers as JSON", cmd_inspect },
        { "logs", "[-f] [--tail N] NAME", "Print a container's log", cmd_logs },
        {},
};

const Verb tasks_verbs[] = {
        { "ls", "", "List running containers", cmd_tasks_ls },
        { "list", "", "List running containers", cmd_tasks_ls },
        { "kill", "[-s SIG] NAME...", "Signal containers", cmd_kill },
        {},
};
