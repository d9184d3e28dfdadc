/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <glib/gstdio.h>

#include "berth-limits.h"
#include "hosts.h"

static char *tmpdir_with(const char *conf) {
        char *dir = g_dir_make_tmp("berth-hosts-XXXXXX", NULL);
        g_autofree char *p = g_build_filename(dir, "registries.conf", NULL);

        if (conf)
                g_assert_true(g_file_set_contents(p, conf, -1, NULL));
        return dir;
}

static void rm_rf(const char *dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        g_assert_cmpint(system(cmd), ==, 0);
}

static void test_defaults(void) {
        g_autofree char *dir = tmpdir_with(NULL);
        HostsConfig *c = NULL;
        RegistryEndpoint *e = NULL;
        size_t n = 0;

        g_assert_cmpint(hosts_config_load(dir, &c, NULL), ==, 0);
        g_assert_cmpuint(c->settings.max_concurrent, ==, FETCH_PARALLEL_DEFAULT);
        g_assert_cmpuint(c->settings.retries, ==, FETCH_RETRIES_DEFAULT);
        g_assert_cmpuint(c->settings.stall_timeout_sec, ==, FETCH_STALL_TIMEOUT_SEC_DEFAULT);

        g_assert_cmpint(hosts_config_endpoints(c, "docker.io", &e, &n, NULL), ==, 0);
        g_assert_cmpuint(n, ==, 1);
        g_assert_cmpstr(e[0].base_url, ==, "https://registry-1.docker.io");
        g_assert_false(e[0].http_fallback);
        g_assert_false(e[0].skip_verify);
        registry_endpoints_free(e, n);

        /* Loopback: https with plain-http fallback, like containerd for localhost. */
        g_assert_cmpint(hosts_config_endpoints(c, "127.0.0.1:5000", &e, &n, NULL), ==, 0);
        g_assert_cmpstr(e[0].base_url, ==, "https://127.0.0.1:5000");
        g_assert_true(e[0].http_fallback);
        registry_endpoints_free(e, n);
        g_assert_cmpint(hosts_config_endpoints(c, "localhost:5000", &e, &n, NULL), ==, 0);
        g_assert_true(e[0].http_fallback);
        registry_endpoints_free(e, n);
        g_assert_cmpint(hosts_config_endpoints(c, "127.evil.com:5000", &e, &n, NULL), ==, 0);
        g_assert_false(e[0].http_fallback);
        registry_endpoints_free(e, n);

        g_assert_cmpint(hosts_config_endpoints(c, "a/b", &e, &n, NULL), ==, -EINVAL);
        g_assert_cmpint(hosts_config_endpoints(c, "a@b", &e, &n, NULL), ==, -EINVAL);
        hosts_config_free(c);
        rm_rf(dir);
}

static void test_full(void) {
        g_autofree char *dir = tmpdir_with(
                "[fetcher]\nmax-concurrent-downloads=5\nretries=1\nstall-timeout-sec=10\n"
                "[registry "
                "\"r.example:5000\"]\nplain-http=true\nmirrors=https://m1.example;http://127.0.0.1:6000\n"
                "[registry \"m1.example\"]\nskip-verify=true\nca=/etc/ssl/m1.crt\n");
        g_autofree char *certs = g_build_filename(dir, "certs.d", "r2.example", NULL);
        g_autofree char *ca = g_build_filename(certs, "ca.crt", NULL);
        HostsConfig *c = NULL;
        RegistryEndpoint *e = NULL;
        size_t n = 0;

        g_assert_cmpint(g_mkdir_with_parents(certs, 0700), ==, 0);
        g_assert_true(g_file_set_contents(ca, "x", -1, NULL));

        g_assert_cmpint(hosts_config_load(dir, &c, NULL), ==, 0);
        g_assert_cmpuint(c->settings.max_concurrent, ==, 5);
        g_assert_cmpuint(c->settings.retries, ==, 1);
        g_assert_cmpuint(c->settings.stall_timeout_sec, ==, 10);

        g_assert_cmpint(hosts_config_endpoints(c, "r.example:5000", &e, &n, NULL), ==, 0);
        g_assert_cmpuint(n, ==, 3);
        g_assert_cmpstr(e[0].base_url, ==, "https://m1.example");
        g_assert_true(e[0].mirror);
        g_assert_false(e[0].resolve);
        g_assert_true(e[0].skip_verify);
        g_assert_cmpstr(e[0].ca_file, ==, "/etc/ssl/m1.crt");
        g_assert_cmpstr(e[1].base_url, ==, "http://127.0.0.1:6000");
        g_assert_true(e[1].mirror);
        g_assert_cmpstr(e[2].base_url, ==, "http://r.example:5000");
        g_assert_false(e[2].mirror);
        g_assert_true(e[2].resolve);
        registry_endpoints_free(e, n);

        /* certs.d discovery. */
        g_assert_cmpint(hosts_config_endpoints(c, "r2.example", &e, &n, NULL), ==, 0);
        g_assert_cmpstr(e[0].ca_file, ==, ca);
        g_assert_null(e[0].client_cert);
        registry_endpoints_free(e, n);
        hosts_config_free(c);
        rm_rf(dir);
}

static void test_bad(void) {
        static const char *const bad[] = {
                "[fetcher]\nmax-concurrent-downloads=0\n",
                "[fetcher]\nmax-concurrent-downloads=1000\n",
                "[fetcher]\nretries=abc\n",
                "[fetcher]\nstall-timeout-sec=1\n",
                "this is not a key file",
        };
        HostsConfig *c = NULL;

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *dir = tmpdir_with(bad[i]);
                g_autofree char *msg = NULL;

                g_assert_cmpint(hosts_config_load(dir, &c, &msg), ==, -EBADMSG);
                g_assert_nonnull(msg);
                rm_rf(dir);
        }

        static const char *const bad_mirrors[] = {
                "[registry \"r\"]\nmirrors=ftp://x\n",        "[registry \"r\"]\nmirrors=https://x/path\n",
                "[registry \"r\"]\nmirrors=https://user@x\n", "[registry \"r\"]\nca=relative.crt\n",
                "[registry \"r\"]\nclient-cert=/a.cert\n",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(bad_mirrors); i++) {
                g_autofree char *dir = tmpdir_with(bad_mirrors[i]);
                g_autofree char *msg = NULL;
                RegistryEndpoint *e = NULL;
                size_t n = 0;

                g_assert_cmpint(hosts_config_load(dir, &c, NULL), ==, 0);
                g_assert_cmpint(hosts_config_endpoints(c, "r", &e, &n, &msg), <, 0);
                g_assert_nonnull(msg);
                hosts_config_free(c);
                rm_rf(dir);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/hosts/defaults", test_defaults);
        g_test_add_func("/hosts/full", test_full);
        g_test_add_func("/hosts/bad", test_bad);
        return g_test_run();
}
