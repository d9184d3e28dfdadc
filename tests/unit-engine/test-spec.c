/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <string.h>

#include "json-util.h"
#include "seccomp.h"
#include "spec.h"

#define MINIMAL_LINUX                                                                                       \
        "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}, {\"type\": \"ipc\"}, "    \
        "{\"type\": \"uts\"}, {\"type\": \"network\"}]%s}"
#define MINIMAL_PROCESS                                                                                     \
        "\"process\": {\"user\": {\"uid\": %s, \"gid\": 0}, \"args\": [\"/bin/true\"], \"cwd\": \"/\", "    \
        "\"capabilities\": {\"bounding\": [%s], \"effective\": [], \"permitted\": []}}"

static int parse(const char *json, Spec *s, BerthError *e) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *msg = NULL;

        g_assert_cmpint(json_parse_bounded(json, strlen(json), 1 << 20, &root, &msg), ==, 0);
        return spec_parse(root, s, e);
}

static char *make(const char *uid, const char *caps, const char *linux_extra, const char *top_extra) {
        g_autofree char *proc = g_strdup_printf(MINIMAL_PROCESS, uid, caps);
        g_autofree char *lin = g_strdup_printf(MINIMAL_LINUX, linux_extra);
        return g_strdup_printf("{\"root\": {\"path\": \"/r\"}, %s, %s%s}", proc, lin, top_extra);
}

static void test_minimal(void) {
        g_autofree char *j = make("1000", "\"CAP_KILL\", \"CAP_SYS_CHROOT\"", "", ", \"hostname\": \"h\"");
        Spec s;
        BerthError e = {};

        g_assert_cmpint(parse(j, &s, &e), ==, 0);
        g_assert_cmpstr(s.root_path, ==, "/r");
        g_assert_cmpuint(s.uid, ==, 1000);
        g_assert_cmpuint(s.caps.bounding, ==, (1ULL << 5) | (1ULL << 18));
        g_assert_cmpuint(s.caps.inheritable, ==, 0);
        g_assert_true(s.namespaces[SPEC_NS_NET].enabled);
        g_assert_false(s.namespaces[SPEC_NS_CGROUP].enabled);
        g_assert_cmpint(s.seccomp, ==, SPEC_SECCOMP_NONE);
        g_assert_cmpuint(s.umask, ==, 022);
        spec_done(&s);
}

static void test_refused(void) {
        static const struct {
                const char *uid, *caps, *linux_extra, *top_extra, *why;
        } cases[] = {
                { "4294967295", "", "", "", "uid" }, /* (uid_t)-1 */
                { "4294967296", "", "", "", "uid" }, /* wraps to 0 in 32 bits */
                { "-1", "", "", "", "uid" },
                { "\"0\"", "", "", "", "uid" },
                { "0", "\"CAP_NOPE\"", "", "", "unknown capability" },
                { "0", "", ", \"sysctl\": {\"kernel.core_pattern\": \"|/x\"}", "", "sysctl" },
                { "0", "", ", \"sysctl\": {\"kernel.shm_rmid_forced\": \"1\\n2\"}", "", "control" },
                { "0", "", ", \"sysctl\": {\"net/../kernel\": \"1\"}", "", "invalid key" },
                { "0", "", ", \"maskedPaths\": [\"relative\"]", "", "not absolute" },
                { "0", "", ", \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\"}", "", "linux.seccomp" },
                { "0", "", ", \"cgroupsPath\": \"/a/../../b\"", "", "cgroupsPath" },
                { "0", "", "", ", \"annotations\": {\"org.berth.seccomp\": \"maybe\"}", "annotation" },
                { "0", "", "", ", \"mounts\": [{\"destination\": \"rel\", \"type\": \"tmpfs\"}]",
                  "not absolute" },
                { "0", "", ", \"resources\": {\"devices\": [{\"access\": \"rwm\"}]}", "",
                  "devices[].allow" },
                { "0", "", ", \"resources\": {\"devices\": [{\"allow\": true, \"type\": \"x\"}]}", "",
                  "devices[].type" },
                { "0", "", ", \"resources\": {\"devices\": [{\"allow\": true, \"access\": \"rwx\"}]}", "",
                  "devices[].access" },
                { "0", "", ", \"resources\": {\"devices\": [{\"allow\": true, \"access\": \"rr\"}]}", "",
                  "devices[].access" },
                { "0", "", ", \"resources\": {\"devices\": [{\"allow\": true, \"major\": -2}]}", "",
                  "devices[].major" },
                { "0", "", ", \"resources\": {\"devices\": [{\"allow\": true, \"minor\": 4294967296}]}", "",
                  "devices[].minor" },
                { "0", "", ", \"resources\": {\"devices\": {}}", "", "linux.resources.devices" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *j =
                        make(cases[i].uid, cases[i].caps, cases[i].linux_extra, cases[i].top_extra);
                Spec s;
                BerthError e = {};

                g_test_message("case %zu: %s", i, j);
                g_assert_cmpint(parse(j, &s, &e), <, 0);
                g_assert_nonnull(strstr(e.message, cases[i].why));
                spec_done(&s);
        }
}

static void test_device_rules(void) {
        g_autofree char *j =
                make("0", "",
                     ", \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}, "
                     "{\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, "
                     "\"access\": \"wr\"}, {\"allow\": true, \"type\": \"b\", \"major\": null}]}",
                     "");
        g_autofree char *none = make("0", "", "", "");
        Spec s, t;
        BerthError e = {};

        g_assert_cmpint(parse(j, &s, &e), ==, 0);
        g_assert_cmpuint(s.resources.n_devices, ==, 3);
        g_assert_false(s.resources.devices[0].allow);
        g_assert_cmpint(s.resources.devices[0].type, ==, 'a');
        g_assert_cmpint(s.resources.devices[0].major, ==, -1);
        g_assert_cmpuint(s.resources.devices[0].access, ==, SPEC_DEVICE_ALL);
        g_assert_true(s.resources.devices[1].allow);
        g_assert_cmpint(s.resources.devices[1].type, ==, 'c');
        g_assert_cmpint(s.resources.devices[1].major, ==, 1);
        g_assert_cmpint(s.resources.devices[1].minor, ==, 3);
        g_assert_cmpuint(s.resources.devices[1].access, ==, SPEC_DEVICE_READ | SPEC_DEVICE_WRITE);
        g_assert_cmpint(s.resources.devices[2].type, ==, 'b');
        g_assert_cmpint(s.resources.devices[2].major, ==, -1);
        spec_done(&s);
        /* None in the spec: NULL, and the engine applies its default list (cgroup_device_rules()). */
        g_assert_cmpint(parse(none, &t, &e), ==, 0);
        g_assert_null(t.resources.devices);
        spec_done(&t);
}

static void test_sysctl_allow_list(void) {
        g_autofree char *j = make("0", "", "", "");
        Spec s;
        BerthError e = {};

        g_assert_cmpint(parse(j, &s, &e), ==, 0);
        g_assert_cmpint(spec_sysctl_check(&s, "net.ipv4.ip_forward", "1", &e), ==, 0);
        g_assert_cmpint(spec_sysctl_check(&s, "kernel.msgmax", "8192", &e), ==, 0);
        g_assert_cmpint(spec_sysctl_check(&s, "fs.mqueue.msg_max", "10", &e), ==, 0);
        g_assert_cmpint(spec_sysctl_check(&s, "kernel.sem", "250 32000 32 128", &e), ==, 0);
        g_assert_cmpint(spec_sysctl_check(&s, "kernel.core_pattern", "x", &e), ==, -EPERM);
        g_assert_cmpint(spec_sysctl_check(&s, "vm.swappiness", "1", &e), ==, -EPERM);
        g_assert_cmpint(spec_sysctl_check(&s, "kernel.shm_rmid_forced=1+kernel.core_pattern", "x", &e), ==,
                        -EINVAL);
        g_assert_cmpint(spec_sysctl_check(&s, "net..x", "1", &e), ==, -EINVAL);
        g_assert_cmpint(spec_sysctl_check(&s, "kernel.shmmax", "1\r", &e), ==, -EINVAL);
        /* without its own network namespace, net.* is the host's */
        s.namespaces[SPEC_NS_NET].enabled = false;
        g_assert_cmpint(spec_sysctl_check(&s, "net.ipv4.ip_forward", "1", &e), ==, -EPERM);
        spec_done(&s);
}

static void test_seccomp_compiles(void) {
        g_autofree char *j = make("0", "\"CAP_SYS_CHROOT\"", "",
                                  ", \"annotations\": {\"org.berth.seccomp\": \"default\"}");
        g_autofree char *j2 = make("0", "\"CAP_SYS_ADMIN\"", "",
                                   ", \"annotations\": {\"org.berth.seccomp\": \"default\"}");
        SeccompPrograms p, p2;
        Spec s, s2;
        BerthError e = {};

        g_assert_cmpint(parse(j, &s, &e), ==, 0);
        g_assert_cmpint(s.seccomp, ==, SPEC_SECCOMP_DEFAULT);
        g_assert_cmpint(seccomp_build(&s, &p, &e), ==, 0);
        g_assert_cmpuint(p.n, ==, 2);
        g_assert_cmpuint(p.progs[0].len, >, 100);
        /* CAP_SYS_ADMIN opens the mount/namespace group: a different (larger) program */
        g_assert_cmpint(parse(j2, &s2, &e), ==, 0);
        g_assert_cmpint(seccomp_build(&s2, &p2, &e), ==, 0);
        g_assert_cmpuint(p2.progs[0].len, !=, p.progs[0].len);
        seccomp_programs_done(&p);
        seccomp_programs_done(&p2);
        spec_done(&s);
        spec_done(&s2);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/spec/minimal", test_minimal);
        g_test_add_func("/spec/refused", test_refused);
        g_test_add_func("/spec/device-rules", test_device_rules);
        g_test_add_func("/spec/sysctl-allow-list", test_sysctl_allow_list);
        g_test_add_func("/spec/seccomp-compiles", test_seccomp_compiles);
        return g_test_run();
}
