/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The supervisor's request parser: the only reader of broker input. */
#include <glib.h>
#include <string.h>

#include "macro.h"
#include "request.h"

#define CFG                                                                                                 \
        "\"image_config\":\"sha256:"                                                                        \
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""

static int parse(const char *s, ContainerRequest **ret, char **err) {
        return container_request_parse(s, strlen(s), ret, err);
}

static void test_minimal(void) {
        _cleanup_(container_request_freep) ContainerRequest *r = NULL;
        _cleanup_free_ char *err = NULL;

        g_assert_cmpint(parse("{\"name\":\"web\",\"owner\":1000," CFG "}", &r, &err), ==, 0);
        g_assert_cmpstr(r->name, ==, "web");
        g_assert_cmpuint(r->owner, ==, 1000);
        g_assert_null(r->entrypoint);
        g_assert_null(r->cmd);
        g_assert_false(r->net_host);
        g_assert_false(r->seccomp_unconfined);
        g_assert_false(container_request_is_privileged(r, NULL));
}

static void test_full(void) {
        _cleanup_(container_request_freep) ContainerRequest *r = NULL;
        _cleanup_free_ char *err = NULL, *what = NULL;

        g_assert_cmpint(
                parse("{\"name\":\"a.b-c_d\",\"owner\":0," CFG
                      ",\"entrypoint\":[],\"cmd\":[\"sh\",\"-c\",\"x\"],"
                      "\"env\":[\"A=1\",\"B=\"],\"workdir\":\"/"
                      "srv\",\"user\":\"1:2\",\"hostname\":\"h-1.x\","
                      "\"tty\":true,\"stdin\":true,\"detach\":false,\"read_only\":true,\"memory\":10485760,"
                      "\"cpu_quota_milli\":500,\"pids_limit\":10,\"cap_add\":[\"net_raw\",\"CAP_SYS_ADMIN\"]"
                      ","
                      "\"cap_drop\":[\"all\"],\"privileged\":false,\"seccomp\":\"unconfined\",\"net\":"
                      "\"host\","
                      "\"mounts\":[{\"source_fd\":0,\"destination\":\"/data\",\"readonly\":true}]}",
                      &r, &err),
                ==, 0);
        g_assert_nonnull(r->entrypoint);
        g_assert_null(r->entrypoint[0]);
        g_assert_cmpstr(r->cmd[2], ==, "x");
        g_assert_cmpstr(r->cap_add[0], ==, "CAP_NET_RAW");
        g_assert_cmpstr(r->cap_add[1], ==, "CAP_SYS_ADMIN");
        g_assert_cmpstr(r->cap_drop[0], ==, "ALL");
        g_assert_true(r->net_host);
        g_assert_true(r->seccomp_unconfined);
        g_assert_cmpuint(r->n_mounts, ==, 1);
        g_assert_cmpstr(r->mounts[0].destination, ==, "/data");
        g_assert_true(r->mounts[0].readonly);
        g_assert_true(container_request_is_privileged(r, &what));
        g_assert_cmpstr(what, ==, "cap_add, seccomp=unconfined, net=host, bind mounts");
}

static void test_network(void) {
        _cleanup_(container_request_freep) ContainerRequest *r = NULL, *r2 = NULL, *r3 = NULL;
        _cleanup_free_ char *err = NULL, *what = NULL;

        /* No "net": the default network. */
        g_assert_cmpint(parse("{\"name\":\"web\",\"owner\":1000," CFG "}", &r, &err), ==, 0);
        g_assert_cmpstr(r->network, ==, REQUEST_DEFAULT_NETWORK);
        g_assert_false(r->net_none);

        g_assert_cmpint(
                parse("{\"name\":\"web\",\"owner\":1000," CFG ",\"net\":\"backend\",\"ports\":["
                      "{\"host_port\":6379,\"container_port\":6379},{\"host_port\":5353,"
                      "\"container_port\":53,\"protocol\":\"udp\",\"host_ip\":\"::1\"}],"
                      "\"dns\":[\"192.0.2.53\"],\"add_hosts\":[\"db:192.0.2.7\",\"v6:2001:db8::1\"]}",
                      &r2, &err),
                ==, 0);
        g_assert_cmpstr(r2->network, ==, "backend");
        g_assert_cmpuint(r2->n_ports, ==, 2);
        g_assert_cmpstr(request_port_host_ip(&r2->ports[0]), ==, "127.0.0.1");
        g_assert_cmpstr(r2->ports[0].protocol, ==, "tcp");
        g_assert_cmpstr(r2->ports[1].protocol, ==, "udp");
        /* High ports on loopback: not privileged. */
        g_assert_false(container_request_is_privileged(r2, NULL));

        /* A low port, or any address but loopback, is. */
        g_assert_cmpint(parse("{\"name\":\"web\",\"owner\":1000," CFG ",\"ports\":[{\"host_port\":80,"
                              "\"container_port\":80}]}",
                              &r3, &err),
                        ==, 0);
        g_assert_true(container_request_is_privileged(r3, &what));
        g_assert_cmpstr(what, ==, "host port below 1024");
        r3 = container_request_free(r3);
        what = mfree(what);
        g_assert_cmpint(parse("{\"name\":\"web\",\"owner\":1000," CFG ",\"ports\":[{\"host_port\":8080,"
                              "\"container_port\":80,\"host_ip\":\"0.0.0.0\"}]}",
                              &r3, &err),
                        ==, 0);
        g_assert_true(container_request_is_privileged(r3, &what));
        g_assert_cmpstr(what, ==, "port on a non-loopback address");
}

static void test_bad(void) {
        static const char *const cases[] = {
                "",
                "[]",
                "{\"owner\":1," CFG "}",                            /* no name */
                "{\"name\":\"x\"," CFG "}",                         /* no owner */
                "{\"name\":\"x\",\"owner\":1}",                     /* no image config */
                "{\"name\":\"x\",\"owner\":1," CFG ",\"bogus\":1}", /* unknown field */
                "{\"name\":\"-x\",\"owner\":1," CFG "}",            /* bad name */
                "{\"name\":\"a/b\",\"owner\":1," CFG "}",
                "{\"name\":\"x\",\"owner\":4294967295," CFG "}", /* (uid_t) -1 */
                "{\"name\":\"x\",\"owner\":-1," CFG "}",
                "{\"name\":\"x\",\"owner\":1,\"image_config\":\"sha256:abc\"}",
                "{\"name\":\"x\",\"owner\":1,\"image_config\":\"md5:0123456789abcdef0123456789abcdef\"}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"env\":[\"NOEQUALS\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"env\":[\"=v\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"env\":[\"HOME=/x\\nroot::0:0::/:/bin/sh\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"env\":[\"A=\\r\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"workdir\":\"rel\"}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"workdir\":\"/a/../b\"}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"hostname\":\"a b\"}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"memory\":1}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"cpu_quota_milli\":5}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"pids_limit\":99999999}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"cap_add\":[\"CAP_NOPE\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"cap_add\":[\"12\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"seccomp\":\"off\"}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"net\":\"a b\"}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"net\":true}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"net\":\"none\",\"ports\":[{\"host_port\":8080,"
                "\"container_port\":80}]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"ports\":[{\"host_port\":0,\"container_port\":80}]}",
                "{\"name\":\"x\",\"owner\":1," CFG
                ",\"ports\":[{\"host_port\":70000,\"container_port\":80}]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"ports\":[{\"host_port\":80,\"container_port\":80,"
                "\"protocol\":\"sctp\"}]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"ports\":[{\"host_port\":80,\"container_port\":80,"
                "\"host_ip\":\"localhost\"}]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"ports\":[{\"host_port\":8080,\"container_port\":80},"
                "{\"host_port\":8080,\"container_port\":81}]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"dns\":[\"8.8.8.8 x\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"add_hosts\":[\"db\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"add_hosts\":[\"db:1.2.3.4\\nevil 5.6.7.8\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"add_hosts\":[\"a b:1.2.3.4\"]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"tty\":\"yes\"}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"mounts\":[{\"source_fd\":1,\"destination\":\"/d\"}]}",
                "{\"name\":\"x\",\"owner\":1," CFG
                ",\"mounts\":[{\"source_fd\":0,\"destination\":\"/proc/x\"}]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"mounts\":[{\"source_fd\":0,\"destination\":\"/\"}]}",
                "{\"name\":\"x\",\"owner\":1," CFG
                ",\"mounts\":[{\"source_fd\":0,\"destination\":\"/d\",\"x\":1}]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"mounts\":[{\"source_fd\":0,\"destination\":\"/d\"},"
                "{\"source_fd\":1,\"destination\":\"/d\"}]}",
                "{\"name\":\"x\",\"owner\":1," CFG ",\"user\":\"a\\u0001b\"}",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_(container_request_freep) ContainerRequest *r = NULL;
                _cleanup_free_ char *err = NULL;

                g_test_message("bad request: %s", cases[i]);
                g_assert_cmpint(parse(cases[i], &r, &err), <, 0);
                g_assert_null(r);
                g_assert_nonnull(err);
                g_test_message("  → %s", err);
        }
}

static void test_caps(void) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        g_assert_cmpint(capability_normalise("chown", &a), ==, 0);
        g_assert_cmpstr(a, ==, "CAP_CHOWN");
        g_assert_cmpint(capability_normalise("Cap_Net_Raw", &b), ==, 0);
        g_assert_cmpstr(b, ==, "CAP_NET_RAW");
        g_assert_cmpint(capability_normalise("All", &c), ==, 0);
        g_assert_cmpstr(c, ==, "ALL");
        g_assert_cmpint(capability_from_name("CAP_0"), <, 0);
}

static void test_size_cap(void) {
        g_autoptr(GString) s = g_string_new("{\"name\":\"x\",\"owner\":1," CFG ",\"env\":[");
        _cleanup_(container_request_freep) ContainerRequest *r = NULL;
        _cleanup_free_ char *err = NULL;

        while (s->len < REQUEST_SIZE_MAX + 10)
                g_string_append(s, "\"A=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",");
        g_string_append(s, "\"B=1\"]}");
        g_assert_cmpint(parse(s->str, &r, &err), ==, -EFBIG);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/request/minimal", test_minimal);
        g_test_add_func("/request/full", test_full);
        g_test_add_func("/request/bad", test_bad);
        g_test_add_func("/request/network", test_network);
        g_test_add_func("/request/caps", test_caps);
        g_test_add_func("/request/size-cap", test_size_cap);
        return g_test_run();
}
