/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Issue 12 finding 9, secrets in memory: lib/erase-util.h wipes what it frees, and every call that
 * carries a secret (Login, built by bus_message_new_method_callv() in berthctl and in the broker's
 * forward to the fetcher) is marked sensitive before the secret is appended. sd-bus has no getter for
 * that mark, so this test interposes sd_bus_message_sensitive() (the executable's definition wins over
 * libsystemd's for the code linked into it) and records which messages were marked. Freed memory cannot
 * be inspected portably; erase_buffer() is checked on live memory, the rest is by construction. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>
#include <glib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bus-util.h"
#include "erase-util.h"

static GPtrArray *marked; /* members of the messages marked sensitive */

int sd_bus_message_sensitive(sd_bus_message *m) {
        int (*real)(sd_bus_message *) =
                (int (*)(sd_bus_message *)) dlsym(RTLD_NEXT, "sd_bus_message_sensitive");

        g_assert_nonnull(real);
        g_ptr_array_add(marked, g_strdup(sd_bus_message_get_member(m)));
        return real(m);
}

static int new_call(sd_bus *bus, sd_bus_message **m, const char *member, const char *types, ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = bus_message_new_method_callv(bus, m, "org.example.Peer", "/org/example/Peer", "org.example.Peer",
                                         member, types, ap);
        va_end(ap);
        return r;
}

static void test_hardening_f9_login_message_is_sensitive(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *login = NULL, *logout = NULL;
        int pair[2];

        marked = g_ptr_array_new_with_free_func(g_free);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(bus, pair[0], pair[0]), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);

        g_assert_cmpint(new_call(bus, &logout, "Logout", "s", "registry.example"), ==, 0);
        g_assert_cmpuint(marked->len, ==, 0);
        g_assert_cmpint(new_call(bus, &login, "Login", "sss", "registry.example", "user", "hunter2"), ==, 0);
        g_assert_cmpuint(marked->len, ==, 1);
        g_assert_cmpstr(marked->pdata[0], ==, "Login");
        g_assert_true(bus_member_carries_secret("Login"));
        g_assert_false(bus_member_carries_secret("Logout"));
        g_assert_false(bus_member_carries_secret(NULL));
        close(pair[1]);
        g_ptr_array_unref(marked);
}

static void test_hardening_f9_erase(void) {
        char buf[] = "Authorization: Basic dXNlcjpodW50ZXIy";
        char *s = strdup("hunter2");

        erase_buffer(buf, sizeof(buf) - 1);
        for (size_t i = 0; i < sizeof(buf) - 1; i++)
                g_assert_cmpint(buf[i], ==, 0);
        erase_buffer(NULL, 5); /* NULL and 0 are no-ops */
        erase_buffer(buf, 0);
        g_assert_null(erase_and_free(s));
        g_assert_null(erase_and_free(NULL));
        {
                _cleanup_erase_ char *t = strdup("token");
                g_assert_nonnull(t);
        }
}

static void test_hardening_f12_asprintf_safe(void) {
        char *s = NULL;
        int status, k;
        pid_t pid;

        /* A failing asprintf(): out of memory in a child whose address space is capped at 256 MiB and
         * asked for a 1 GiB string. The pointer must come back NULL, not garbage. (Not under ASan: its
         * shadow memory cannot be mapped below such a cap.) */
#if defined(__SANITIZE_ADDRESS__)
        g_test_skip("RLIMIT_AS cannot be capped under AddressSanitizer");
        return;
#endif
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                struct rlimit rl = { 256UL << 20, 256UL << 20 };
                volatile int width = 1 << 30;

                s = (char *) 0x1; /* garbage, as glibc may leave it */
                if (setrlimit(RLIMIT_AS, &rl) < 0)
                        _exit(2);
                k = asprintf_safe(&s, "%*s", width, "");
                _exit(k < 0 && s == NULL ? 0 : 3);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);

        k = asprintf_safe(&s, "%s-%d", "ok", 7);
        g_assert_cmpint(k, ==, 4);
        g_assert_cmpstr(s, ==, "ok-7");
        free(s);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/secrets/hardening-f9-login-message-is-sensitive",
                        test_hardening_f9_login_message_is_sensitive);
        g_test_add_func("/secrets/hardening-f9-erase", test_hardening_f9_erase);
        g_test_add_func("/secrets/hardening-f12-asprintf-safe", test_hardening_f12_asprintf_safe);
        return g_test_run();
}
