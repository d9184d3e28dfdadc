/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spec builder: golden config.json for given requests (GOLDEN_DIR; UPDATE_GOLDEN=1 rewrites them),
 * plus the checks that make a request fail. */
#include <glib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "spec-build.h"

#define ID "0123456789abcdef0123456789abcdef"
#define CFG                                                                                                 \
        "\"image_config\":\"sha256:"                                                                        \
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""

static char *image_env[] = { "PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL };
static char *image_cmd[] = { "sh", NULL };
static char *image_entrypoint[] = { "/entry", "--flag", NULL };

static const char *netns_path, *etc_dir; /* test_network's */

static int build(const char *request, OciImageConfig *img, const UserIds *user, char **ret_json,
                 char **ret_err) {
        _cleanup_(container_request_freep) ContainerRequest *req = NULL;
        g_autoptr(JsonNode) spec = NULL;
        int fds[REQUEST_MOUNTS_MAX];
        int r;

        for (size_t i = 0; i < REQUEST_MOUNTS_MAX; i++)
                fds[i] = 10 + (int) i;
        r = container_request_parse(request, strlen(request), &req, ret_err);
        g_assert_cmpint(r, ==, 0);
        SpecInput in = {
                .id = ID,
                .rootfs_path = "/run/berth/containers/" ID "/rootfs",
                .cgroup_path = "/berth/" ID,
                .request = req,
                .image = img,
                .user = user,
                .mount_fds = fds,
                .netns_path = netns_path,
                .etc_dir = etc_dir,
        };
        r = spec_build(&in, &spec, ret_err);
        if (r < 0)
                return r;
        g_autoptr(JsonGenerator) gen = json_generator_new();
        json_generator_set_pretty(gen, true);
        json_generator_set_root(gen, spec);
        *ret_json = json_generator_to_data(gen, NULL);
        return 0;
}

static void check_golden(const char *name, const char *json) {
        g_autofree char *path = g_build_filename(g_getenv("GOLDEN_DIR") ?: ".", name, NULL);
        g_autofree char *want = NULL;
        g_autofree char *got = g_strconcat(json, "\n", NULL);

        if (g_getenv("UPDATE_GOLDEN")) {
                g_assert_true(g_file_set_contents(path, got, -1, NULL));
                return;
        }
        g_assert_true(g_file_get_contents(path, &want, NULL, NULL));
        g_assert_cmpstr(got, ==, want);
}

/* A CNI network: the init joins the namespace file, and the three /etc files are bound read-only. */
static void test_network(void) {
        OciImageConfig img = { .env = image_env, .cmd = image_cmd };
        UserIds user = { .uid = 0, .gid = 0, .home = "/root" };
        g_autofree char *json = NULL;
        _cleanup_free_ char *err = NULL;

        netns_path = "/run/berth/netns/" ID;
        etc_dir = "/run/berth/containers/" ID;
        g_assert_cmpint(build("{\"name\":\"web\",\"owner\":1000," CFG "}", &img, &user, &json, &err), ==, 0);
        netns_path = etc_dir = NULL;
        g_assert_nonnull(
                strstr(json, "\"type\" : \"network\",\n        \"path\" : \"/run/berth/netns/" ID "\""));
        static const char *const files[] = { "resolv.conf", "hosts", "hostname" };
        for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
                g_autofree char *want = g_strdup_printf(
                        "\"destination\" : \"/etc/%s\",\n      \"type\" : \"bind\",\n      \"source\" : "
                        "\"/run/berth/containers/" ID
                        "/%s\",\n      \"options\" : [\n        \"bind\",\n        "
                        "\"ro\",",
                        files[i], files[i]);
                g_assert_nonnull(strstr(json, want));
        }
}

static void test_default(void) {
        OciImageConfig img = { .env = image_env, .cmd = image_cmd };
        UserIds user = { .uid = 0, .gid = 0, .groups = { 0, 10 }, .n_groups = 2, .home = "/root" };
        g_autofree char *json = NULL;
        _cleanup_free_ char *err = NULL;

        g_assert_cmpint(build("{\"name\":\"web\",\"owner\":1000," CFG "}", &img, &user, &json, &err), ==, 0);
        check_golden("default.json", json);
}

static void test_options(void) {
        OciImageConfig img = {
                .env = image_env, .cmd = image_cmd, .entrypoint = image_entrypoint, .working_dir = "/app"
        };
        UserIds user = {
                .uid = 1000, .gid = 1000, .groups = { 1000, 50 }, .n_groups = 2, .home = "/home/a"
        };
        g_autofree char *json = NULL;
        _cleanup_free_ char *err = NULL;

        g_assert_cmpint(build("{\"name\":\"opts\",\"owner\":0," CFG
                              ",\"cmd\":[\"run\",\"x\"],\"env\":[\"LANG=de\",\"X=1\"],"
                              "\"workdir\":\"/w\",\"hostname\":\"box\",\"tty\":true,\"read_only\":true,"
                              "\"memory\":67108864,\"cpu_quota_milli\":1500,\"pids_limit\":64,\"cap_drop\":["
                              "\"chown\"],"
                              "\"cap_add\":[\"net_raw\"],\"net\":\"host\",\"seccomp\":\"unconfined\","
                              "\"mounts\":[{\"source_fd\":0,\"destination\":\"/data\",\"readonly\":true}]}",
                              &img, &user, &json, &err),
                        ==, 0);
        check_golden("options.json", json);
}

static void test_entrypoint_override(void) {
        OciImageConfig img = { .env = image_env, .cmd = image_cmd, .entrypoint = image_entrypoint };
        UserIds user = { .n_groups = 1, .home = "/" };
        g_autofree char *json = NULL;
        _cleanup_free_ char *err = NULL;

        /* A new entrypoint drops the image's cmd (docker's rule). */
        g_assert_cmpint(build("{\"name\":\"e\",\"owner\":0," CFG ",\"entrypoint\":[\"/bin/echo\"]}", &img,
                              &user, &json, &err),
                        ==, 0);
        g_assert_nonnull(strstr(json, "\"args\" : [\n      \"/bin/echo\"\n    ]"));
}

static void test_privileged(void) {
        OciImageConfig img = { .cmd = image_cmd };
        UserIds user = { .n_groups = 1, .home = "/" };
        g_autofree char *json = NULL;
        _cleanup_free_ char *err = NULL;

        g_assert_cmpint(
                build("{\"name\":\"p\",\"owner\":0," CFG ",\"privileged\":true}", &img, &user, &json, &err),
                ==, 0);
        g_assert_nonnull(strstr(json, "\"CAP_SYS_ADMIN\""));
        g_assert_null(strstr(json, "/proc/kcore"));
        g_assert_nonnull(strstr(json, "\"org.berth.seccomp\" : \"unconfined\""));
}

static void test_refused(void) {
        static char *bad_env[] = { "HOME=/x\nroot::0:0::/:/bin/sh", NULL };
        static char *no_cmd[] = { NULL };
        static const struct {
                const char *request;
                char **env, **cmd;
                const char *workdir;
        } cases[] = {
                { "{\"name\":\"x\",\"owner\":0," CFG "}", NULL, no_cmd, NULL }, /* no command */
                { "{\"name\":\"x\",\"owner\":0," CFG ",\"cmd\":[\"\"]}", NULL, NULL, NULL },
                { "{\"name\":\"x\",\"owner\":0," CFG ",\"workdir\":\"/proc/self/fd/3\"}", NULL, image_cmd,
                  NULL },
                { "{\"name\":\"x\",\"owner\":0," CFG "}", NULL, image_cmd, "/proc/self/cwd" },
                { "{\"name\":\"x\",\"owner\":0," CFG "}", NULL, image_cmd, "relative" },
                { "{\"name\":\"x\",\"owner\":0," CFG "}", bad_env, image_cmd, NULL },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                OciImageConfig img = { .env = cases[i].env,
                                       .cmd = cases[i].cmd,
                                       .working_dir = (char *) cases[i].workdir };
                UserIds user = { .n_groups = 1, .home = "/" };
                g_autofree char *json = NULL;
                _cleanup_free_ char *err = NULL;

                g_assert_cmpint(build(cases[i].request, &img, &user, &json, &err), <, 0);
                g_assert_nonnull(err);
                g_test_message("%zu → %s", i, err);
        }
}

static void test_caps_order(void) {
        static const struct {
                const char *request;
                const char *const want[4];
        } cases[] = {
                { "{\"name\":\"x\",\"owner\":0," CFG ",\"cap_drop\":[\"all\"],\"cap_add\":[\"chown\"]}",
                  { "CAP_CHOWN", NULL } },
                { "{\"name\":\"x\",\"owner\":0," CFG ",\"cap_drop\":[\"all\"]}", { NULL } },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_(container_request_freep) ContainerRequest *req = NULL;
                _cleanup_free_ char *err = NULL;
                g_auto(GStrv) caps = NULL;

                g_assert_cmpint(
                        container_request_parse(cases[i].request, strlen(cases[i].request), &req, &err), ==,
                        0);
                g_assert_cmpint(spec_capabilities(req, &caps), ==, 0);
                g_assert_true(g_strv_equal((const char *const *) caps, cases[i].want));
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/spec/default", test_default);
        g_test_add_func("/spec/network", test_network);
        g_test_add_func("/spec/options", test_options);
        g_test_add_func("/spec/entrypoint-override", test_entrypoint_override);
        g_test_add_func("/spec/privileged", test_privileged);
        g_test_add_func("/spec/refused", test_refused);
        g_test_add_func("/spec/caps-order", test_caps_order);
        return g_test_run();
}
