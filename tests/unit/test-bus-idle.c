/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-idle.h"
#include "macro.h"

#define TEST_NAME "org.berth.IdleTest1"

static char *write_conf(const char *text) {
        char *dir = g_dir_make_tmp("berth-idle-XXXXXX", NULL);
        g_autofree char *path = NULL;

        g_assert_nonnull(dir);
        if (text) {
                path = g_build_filename(dir, "svc.conf", NULL);
                g_assert_true(g_file_set_contents(path, text, -1, NULL));
        }
        return dir;
}

static void remove_conf(char *dir) {
        g_autofree char *path = g_build_filename(dir, "svc.conf", NULL);

        (void) g_unlink(path);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
        g_free(dir);
}

static int load(const char *text, uint64_t *usec, char **err) {
        char *dir = write_conf(text);
        int r = bus_idle_timeout_load(dir, "svc.conf", "svc", usec, err);

        remove_conf(dir);
        return r;
}

static void test_timeout_load(void) {
        uint64_t usec = 1;
        char *err = NULL;

        /* No file, no group, no key: the default. */
        g_assert_cmpint(load(NULL, &usec, &err), ==, 0);
        g_assert_cmpuint(usec, ==, BUS_IDLE_EXIT_SEC_DEFAULT * 1000000ULL);
        g_assert_cmpint(load("[other]\nidle-exit-sec=5\n", &usec, &err), ==, 0);
        g_assert_cmpuint(usec, ==, BUS_IDLE_EXIT_SEC_DEFAULT * 1000000ULL);
        g_assert_cmpint(load("[svc]\nmax-parallel=2\n", &usec, &err), ==, 0);
        g_assert_cmpuint(usec, ==, BUS_IDLE_EXIT_SEC_DEFAULT * 1000000ULL);

        g_assert_cmpint(load("[svc]\nidle-exit-sec=7\n", &usec, &err), ==, 0);
        g_assert_cmpuint(usec, ==, 7000000ULL);
        g_assert_cmpint(load("[svc]\nidle-exit-sec=0\n", &usec, &err), ==, 0);
        g_assert_cmpuint(usec, ==, 0);

        /* Malformed or out of range: an error naming the file and key, never a silent default. */
        g_assert_cmpint(load("[svc]\nidle-exit-sec=soon\n", &usec, &err), ==, -EINVAL);
        g_assert_nonnull(strstr(err, "idle-exit-sec"));
        g_free(g_steal_pointer(&err));
        g_assert_cmpint(load("[svc]\nidle-exit-sec=-1\n", &usec, &err), ==, -EINVAL);
        g_free(g_steal_pointer(&err));
        g_assert_cmpint(load("[svc]\nidle-exit-sec=86401\n", &usec, &err), ==, -EINVAL);
        g_free(g_steal_pointer(&err));
        g_assert_cmpint(load("not a key file", &usec, &err), ==, -EINVAL);
        g_assert_nonnull(strstr(err, "svc.conf"));
        g_free(g_steal_pointer(&err));
}

/* A private session dbus-daemon for the loop tests. */
typedef struct PrivateBus {
        GPid pid;
        char *address;
} PrivateBus;

static void die_with_parent(gpointer userdata) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static bool private_bus_start(PrivateBus *b) {
        const char *argv[] = { "dbus-daemon", "--session",         "--nofork",
                               "--nopidfile", "--print-address=1", NULL };
        g_autoptr(GError) error = NULL;
        char buf[512];
        int out = -1;
        ssize_t n;

        /* Its stderr is not ours (the test harness waits for every holder of our pipes), and it dies
         * with us even when an assertion aborts the test. */
        if (!g_spawn_async_with_pipes(NULL, (char **) argv, NULL,
                                      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                              G_SPAWN_STDERR_TO_DEV_NULL,
                                      die_with_parent, NULL, &b->pid, NULL, &out, NULL, &error))
                return false;
        n = read(out, buf, sizeof(buf) - 1);
        close(out);
        g_assert_cmpint(n, >, 0);
        buf[n] = '\0';
        b->address = g_strdup(g_strstrip(buf));
        return true;
}

static void private_bus_stop(PrivateBus *b) {
        kill(b->pid, SIGTERM);
        (void) waitpid(b->pid, NULL, 0);
        g_free(b->address);
}

static sd_bus *connect_to(const char *address) {
        sd_bus *bus = NULL;

        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_address(bus, address), >=, 0);
        g_assert_cmpint(sd_bus_set_bus_client(bus, true), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        return bus;
}

static bool name_has_owner(sd_bus *watcher) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int has = 0;

        g_assert_cmpint(sd_bus_call_method(watcher, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s",
                                           TEST_NAME),
                        >=, 0);
        g_assert_cmpint(sd_bus_message_read(reply, "b", &has), >=, 0);
        return has;
}

typedef struct LoopTest {
        sd_bus *watcher; /* a second connection: the outside world's view of the name */
        bool busy;
        bool owned_while_busy;
        unsigned ticks;
} LoopTest;

static bool test_busy(void *userdata) {
        return ((LoopTest *) userdata)->busy;
}

/* A few quiet periods long, the service's own work: while it lasts the name must stay owned. */
static int on_work_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        LoopTest *t = userdata;

        t->owned_while_busy = t->owned_while_busy && name_has_owner(t->watcher);
        if (++t->ticks < 3)
                return sd_event_source_set_time_relative(s, 300 * 1000) < 0
                               ? -EIO
                               : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        t->busy = false;
        return 0;
}

static void test_loop_exits_when_idle_not_while_busy(void) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL, *watcher = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *tick = NULL;
        PrivateBus pb = {};
        LoopTest t = { .busy = true, .owned_while_busy = true };
        int r;

        if (!private_bus_start(&pb)) {
                g_test_skip("dbus-daemon not available");
                return;
        }
        bus = connect_to(pb.address);
        watcher = connect_to(pb.address);
        t.watcher = watcher;
        g_assert_cmpint(sd_event_new(&event), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL), >=, 0);
        g_assert_cmpint(sd_bus_request_name(bus, TEST_NAME, 0), >=, 0);
        g_assert_true(name_has_owner(watcher));

        /* Busy for three ticks of 300 ms with an idle period of 100 ms: exiting early would show as the
         * name missing at a tick, or as the loop returning while still busy. */
        g_assert_cmpint(
                sd_event_add_time_relative(event, &tick, CLOCK_MONOTONIC, 300 * 1000, 0, on_work_tick, &t),
                >=, 0);
        r = bus_event_loop_with_idle(event, bus, TEST_NAME, 100 * 1000, test_busy, &t);
        g_assert_cmpint(r, ==, 0);
        g_assert_false(t.busy);
        g_assert_cmpuint(t.ticks, ==, 3);
        g_assert_true(t.owned_while_busy);
        /* It left only after the bus confirmed the release. */
        g_assert_false(name_has_owner(watcher));

        private_bus_stop(&pb);
}

/* Idle all along but with a 0 period: the ticks see the name every time, and only the exit request
 * (as SIGTERM makes it) ends the loop. */
static int on_quiet_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        LoopTest *t = userdata;

        t->owned_while_busy = t->owned_while_busy && name_has_owner(t->watcher);
        if (++t->ticks < 3)
                return sd_event_source_set_time_relative(s, 300 * 1000) < 0
                               ? -EIO
                               : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return sd_event_exit(sd_event_source_get_event(s), 7);
}

static void test_loop_zero_never_exits_for_idleness(void) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL, *watcher = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *tick = NULL;
        PrivateBus pb = {};
        LoopTest t = { .owned_while_busy = true };
        int r;

        if (!private_bus_start(&pb)) {
                g_test_skip("dbus-daemon not available");
                return;
        }
        bus = connect_to(pb.address);
        watcher = connect_to(pb.address);
        t.watcher = watcher;
        g_assert_cmpint(sd_event_new(&event), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL), >=, 0);
        g_assert_cmpint(sd_bus_request_name(bus, TEST_NAME, 0), >=, 0);

        g_assert_cmpint(
                sd_event_add_time_relative(event, &tick, CLOCK_MONOTONIC, 300 * 1000, 0, on_quiet_tick, &t),
                >=, 0);
        r = bus_event_loop_with_idle(event, bus, TEST_NAME, 0, NULL, NULL);
        g_assert_cmpint(r, ==, 7);
        g_assert_cmpuint(t.ticks, ==, 3);
        /* Owned at every tick up to the exit request (leaving the loop then closes the connection). */
        g_assert_true(t.owned_while_busy);

        private_bus_stop(&pb);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bus-idle/timeout-load", test_timeout_load);
        g_test_add_func("/bus-idle/exits-when-idle-not-while-busy",
                        test_loop_exits_when_idle_not_while_busy);
        g_test_add_func("/bus-idle/zero-never-exits", test_loop_zero_never_exits_for_idleness);
        return g_test_run();
}
