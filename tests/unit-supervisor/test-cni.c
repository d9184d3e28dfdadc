/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CNI runtime (cni.c) against fake plugins: shell scripts in a temporary CNI_PATH that log their
 * environment and stdin and print a result, so that the conflist checks, the environment, prevResult
 * chaining, runtimeConfig, DEL's reverse order, the portmap skip and error reporting are seen exactly. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cni.h"
#include "etc-files.h"
#include "macro.h"

static char *dir;

/* A plugin that appends "<name> <command> <ifname> <netns>" and its stdin to log, then prints a result
 * whose ips[0].address is 10.0.0.<n>/24 (n = its position) or fails when its name is "bad". */
static void write_plugin(const char *name, int n) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *script = g_strdup_printf(
                "#!/bin/sh\n"
                "in=$(cat)\n"
                "echo \"%s $CNI_COMMAND $CNI_IFNAME $CNI_NETNS $CNI_CONTAINERID\" >> %s/log\n"
                "echo \"$in\" >> %s/log\n"
                "if [ %s = bad ]; then echo '{\"code\":7,\"msg\":\"broken\",\"details\":\"on purpose\"}'; "
                "exit 1; fi\n"
                "[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
                "echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.%d/24\"}]}'\n",
                name, dir, dir, name, n);

        g_assert_true(g_file_set_contents(path, script, -1, NULL));
        g_assert_cmpint(chmod(path, 0755), ==, 0);
}

static char *read_log(void) {
        g_autofree char *p = g_build_filename(dir, "log", NULL);
        char *data = NULL;

        if (!g_file_get_contents(p, &data, NULL, NULL))
                return g_strdup("");
        (void) g_unlink(p);
        return data;
}

static CniNetwork *parse_ok(const char *text) {
        CniNetwork *n = NULL;
        _cleanup_free_ char *err = NULL;

        g_assert_cmpint(cni_network_parse(text, strlen(text), &n, &err), ==, 0);
        g_assert_nonnull(n);
        return n;
}

#define LIST(plugins) "{\"cniVersion\":\"1.0.0\",\"name\":\"net1\",\"plugins\":[" plugins "]}"

static void test_parse(void) {
        static const char *const bad[] = {
                "[]",
                "{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"one\"}]}", /* no name */
                "{\"cniVersion\":\"1.0.0\",\"name\":\"a b\",\"plugins\":[{\"type\":\"one\"}]}",
                "{\"name\":\"n\",\"plugins\":[{\"type\":\"one\"}]}", /* no version */
                LIST(""),                                            /* no plugin */
                LIST("{\"type\":\"../bin/sh\"}"),                    /* a path */
                LIST("{\"type\":\"/bin/sh\"}"),
                LIST("{\"type\":\"missing\"}"), /* not installed */
                LIST("{\"bridge\":\"x\"}"),     /* no type */
                LIST("1"),
        };
        g_autofree char *many = NULL;
        g_autoptr(GString) s = g_string_new("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[");
        _cleanup_(cni_network_freep) CniNetwork *n = NULL;

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                CniNetwork *x = NULL;
                _cleanup_free_ char *err = NULL;

                g_test_message("bad conflist: %s", bad[i]);
                g_assert_cmpint(cni_network_parse(bad[i], strlen(bad[i]), &x, &err), <, 0);
                g_assert_null(x);
                g_assert_nonnull(err);
        }
        for (unsigned i = 0; i <= CNI_PLUGINS_MAX; i++)
                g_string_append_printf(s, "%s{\"type\":\"one\"}", i ? "," : "");
        g_string_append(s, "]}");
        {
                CniNetwork *x = NULL;
                _cleanup_free_ char *err = NULL;
                g_assert_cmpint(cni_network_parse(s->str, s->len, &x, &err), <, 0);
        }

        n = parse_ok(LIST("{\"type\":\"bridge\",\"bridge\":\"br7\",\"ipam\":{\"type\":\"host-local\","
                          "\"ranges\":[[{\"subnet\":\"10.7.0.0/24\",\"gateway\":\"10.7.0.1\"}]]}},"
                          "{\"type\":\"one\"}"));
        g_assert_cmpstr(n->name, ==, "net1");
        g_assert_cmpstr(n->bridge, ==, "br7");
        g_assert_cmpstr(n->subnet, ==, "10.7.0.0/24");
        g_assert_cmpstr(n->gateway, ==, "10.7.0.1");
}

static void test_add_del(void) {
        _cleanup_(cni_network_freep) CniNetwork *n = parse_ok(LIST(
                "{\"type\":\"one\",\"x\":1},{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}},"
                "{\"type\":\"two\"}"));
        g_autoptr(JsonNode) result = NULL;
        g_auto(GStrv) addrs = NULL;
        _cleanup_free_ char *err = NULL;
        g_autofree char *log = NULL;
        RequestPort port = {
                .host_ip = (char *) "", .host_port = 8080, .container_port = 80, .protocol = (char *) "tcp"
        };
        CniRuntime rt = { .container_id = "0123", .netns = "/run/x/ns", .ifname = "eth0" };

        /* No port published: portmap is not run. */
        g_assert_cmpint(cni_add(n, &rt, &result, &err), ==, 0);
        log = read_log();
        g_assert_nonnull(strstr(log, "one ADD eth0 /run/x/ns 0123\n"));
        g_assert_null(strstr(log, "portmap"));
        /* The second plugin got the first one's result as prevResult, and name/cniVersion. */
        g_assert_nonnull(strstr(
                log, "\"prevResult\":{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.1/24\"}]}"));
        g_assert_nonnull(strstr(log, "\"name\":\"net1\""));
        addrs = cni_result_addresses(result);
        g_assert_cmpstr(addrs[0], ==, "10.0.0.3/24");
        g_assert_null(addrs[1]);

        /* DEL in reverse order. */
        g_assert_cmpint(cni_del(n, &rt, result, &err), ==, 0);
        g_free(log);
        log = read_log();
        g_assert_true(strstr(log, "two DEL") < strstr(log, "one DEL"));

        /* With a port: portmap runs and gets it as runtimeConfig, on 127.0.0.1 by default. */
        rt.ports = &port;
        rt.n_ports = 1;
        g_clear_pointer(&result, json_node_unref);
        g_assert_cmpint(cni_add(n, &rt, &result, &err), ==, 0);
        g_free(log);
        log = read_log();
        g_assert_nonnull(strstr(log, "portmap ADD"));
        g_assert_nonnull(
                strstr(log, "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,"
                            "\"protocol\":\"tcp\",\"hostIP\":\"127.0.0.1\"}]}"));
}

static void test_failure_rolls_back(void) {
        _cleanup_(cni_network_freep) CniNetwork *n = parse_ok(LIST("{\"type\":\"one\"},{\"type\":\"bad\"}"));
        g_autoptr(JsonNode) result = NULL;
        _cleanup_free_ char *err = NULL;
        g_autofree char *log = NULL;
        CniRuntime rt = { .container_id = "0123", .netns = "/run/x/ns", .ifname = "eth0" };

        g_assert_cmpint(cni_add(n, &rt, &result, &err), <, 0);
        g_assert_null(result);
        g_assert_cmpstr(err, ==, "CNI plugin 'bad' failed ADD (status 1): broken: on purpose");
        log = read_log();
        /* What ran is undone: DEL of the failed plugin and of the one before, in that order. */
        g_assert_nonnull(strstr(log, "bad DEL"));
        g_assert_true(strstr(log, "bad DEL") < strstr(log, "one DEL"));
}

/* A plugin's result is hostile: addresses that are not "IP/prefix" (a newline that would add a line to
 * other containers' /etc/hosts, a name, a prefix out of range) are left out; valid ones stay. */
static void test_result_addresses_are_checked(void) {
        static const char text[] =
                "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.9/24\\n6.6.6.6 evil\"},"
                "{\"address\":\"evil.example/24\"},{\"address\":\"10.0.0.7/33\"},{\"address\":\"10.0.0.8\"},"
                "{\"address\":7},{\"address\":\"10.0.0.5/24\"},{\"address\":\"fd00::5/64\"}]}";
        g_autoptr(JsonNode) result = json_from_string(text, NULL);
        g_auto(GStrv) addrs = NULL;

        g_assert_nonnull(result);
        addrs = cni_result_addresses(result);
        g_assert_cmpuint(g_strv_length(addrs), ==, 2);
        g_assert_cmpstr(addrs[0], ==, "10.0.0.5/24");
        g_assert_cmpstr(addrs[1], ==, "fd00::5/64");
}

/* The hosts file writes an entry only when its address is one and its names are plain names. */
static void test_hosts_entries_are_checked(void) {
        const EtcHost entries[] = {
                { (char *) "10.0.0.2", (char *) "web my_app" },
                { (char *) "10.0.0.3\n6.6.6.6", (char *) "evil" },
                { (char *) "10.0.0.4", (char *) "a\n6.6.6.6 evil" },
                { (char *) "10.0.0.5", (char *) "#comment" },
                { (char *) "10.0.0.6", (char *) "" },
                { (char *) "fd00::7", (char *) "db" },
        };
        g_autofree char *text = etc_hosts(entries, G_N_ELEMENTS(entries));

        g_assert_cmpstr(text, ==,
                        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                        "10.0.0.2\tweb my_app\nfd00::7\tdb\n");
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        dir = g_dir_make_tmp("berth-cni-XXXXXX", NULL);
        g_assert_nonnull(dir);
        write_plugin("one", 1);
        write_plugin("portmap", 2);
        write_plugin("two", 3);
        write_plugin("bad", 4);
        write_plugin("bridge", 5);
        g_setenv("BERTH_CNI_PATH", dir, true);
        g_test_add_func("/cni/parse", test_parse);
        g_test_add_func("/cni/add-del", test_add_del);
        g_test_add_func("/cni/failure-rolls-back", test_failure_rolls_back);
        g_test_add_func("/cni/result-addresses-are-checked", test_result_addresses_are_checked);
        g_test_add_func("/cni/hosts-entries-are-checked", test_hosts_entries_are_checked);
        r = g_test_run();
        {
                const char *names[] = { "one", "portmap", "two", "bad", "bridge", "log" };
                for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                        g_autofree char *p = g_build_filename(dir, names[i], NULL);
                        (void) g_unlink(p);
                }
                (void) g_rmdir(dir);
        }
        return r;
}
