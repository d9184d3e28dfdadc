/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* bus_polkit_check_async() against a private dbus-daemon and a stand-in polkit authority: a connection
 * of this process owns org.freedesktop.PolicyKit1, records every CheckAuthorization it receives and
 * answers as told. A service connection calls the helper from a method handler. The callers are forked
 * children: one as nobody (the polkit path), one as root (never asks polkit). They drive the authority
 * themselves over the same bus (SetMode, LastCall), so all the checks run in the children, and the
 * parent only runs the event loop until they exit. Needs root (to become nobody) and dbus-daemon;
 * skips otherwise. */

#include <glib.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-names.h"
#include "bus-polkit.h"
#include "bus-util.h"
#include "macro.h"

#define SERVICE "org.example.Service"
#define AUTHORITY "org.freedesktop.PolicyKit1"
#define AUTHORITY_PATH "/org/freedesktop/PolicyKit1/Authority"
#define AUTHORITY_IFACE "org.freedesktop.PolicyKit1.Authority"
#define ACTION "org.example.frobnicate"

/* ---- the stand-in authority ----------------------------------------------------------------------- */

typedef struct Authority {
        char mode[32]; /* allow, deny, challenge, error, malformed */
        unsigned calls;
        char *subject_kind, *subject_name, *action, *details;
        uint32_t flags;
} Authority;

static int authority_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Authority *a = userdata;
        g_autoptr(GString) details = g_string_new(NULL);
        const char *kind, *key, *value, *action, *cancel;
        int r;

        /* (sa{sv}) subject */
        r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
        g_assert_cmpint(r, >, 0);
        g_assert_cmpint(sd_bus_message_read(m, "s", &kind), >, 0);
        g_free(a->subject_kind);
        a->subject_kind = g_strdup(kind);
        g_clear_pointer(&a->subject_name, g_free);
        g_assert_cmpint(sd_bus_message_enter_container(m, 'a', "{sv}"), >, 0);
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                g_assert_cmpint(sd_bus_message_read(m, "s", &key), >, 0);
                if (streq(key, "name")) {
                        g_assert_cmpint(sd_bus_message_read(m, "v", "s", &value), >, 0);
                        a->subject_name = g_strdup(value);
                } else
                        g_assert_cmpint(sd_bus_message_skip(m, "v"), >=, 0);
                g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);
        }
        g_assert_cmpint(r, ==, 0);
        g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);
        g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);

        g_assert_cmpint(sd_bus_message_read(m, "s", &action), >, 0);
        g_free(a->action);
        a->action = g_strdup(action);
        g_assert_cmpint(sd_bus_message_enter_container(m, 'a', "{ss}"), >, 0);
        while ((r = sd_bus_message_read(m, "{ss}", &key, &value)) > 0)
                g_string_append_printf(details, "%s=%s;", key, value);
        g_assert_cmpint(r, ==, 0);
        g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);
        g_free(a->details);
        a->details = g_strdup(details->str);
        g_assert_cmpint(sd_bus_message_read(m, "us", &a->flags, &cancel), >, 0);
        a->calls++;

        if (streq(a->mode, "error"))
                return sd_bus_reply_method_errorf(m, "org.freedesktop.PolicyKit1.Error.Failed",
                                                  "authority broken");
        if (streq(a->mode, "malformed"))
                return sd_bus_reply_method_return(m, "s", "not what polkit sends");
        return sd_bus_reply_method_return(m, "(bba{ss})", streq(a->mode, "allow"),
                                          streq(a->mode, "challenge"), 0);
}

static int authority_set_mode(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Authority *a = userdata;
        const char *mode;
        int r;

        r = sd_bus_message_read(m, "s", &mode);
        if (r < 0)
                return r;
        g_strlcpy(a->mode, mode, sizeof(a->mode));
        return sd_bus_reply_method_return(m, "");
}

static int authority_last_call(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Authority *a = userdata;

        return sd_bus_reply_method_return(m, "ussssu", a->calls, a->subject_kind ?: "",
                                          a->subject_name ?: "", a->action ?: "", a->details ?: "",
                                          a->flags);
}

/* A plain object callback rather than a vtable, so that the "malformed" mode can send a reply of the
 * wrong type (a vtable would check the reply's signature). */
static int authority_dispatch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        if (sd_bus_message_is_method_call(m, AUTHORITY_IFACE, "CheckAuthorization"))
                return authority_check(m, userdata, error);
        if (sd_bus_message_is_method_call(m, AUTHORITY_IFACE, "SetMode"))
                return authority_set_mode(m, userdata, error);
        if (sd_bus_message_is_method_call(m, AUTHORITY_IFACE, "LastCall"))
                return authority_last_call(m, userdata, error);
        return 0;
}

/* ---- the service ------------------------------------------------------------------------------------ */

static int frobnicate_authorised(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        unsigned *ran = userdata;

        (*ran)++;
        return sd_bus_reply_method_return(m, "s", "frobnicated");
}

static int method_frobnicate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        static const char *const details[] = { "reference", "example.org/busybox:latest", "flags", "0",
                                               NULL };

        return bus_polkit_check_async(m, ACTION, details, frobnicate_authorised, userdata, error);
}

static const sd_bus_vtable service_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Frobnicate", "", "s", method_frobnicate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- the callers (forked children) ------------------------------------------------------------------ */

static sd_bus *connect_to(const char *address) {
        sd_bus *bus = NULL;

        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_address(bus, address), >=, 0);
        g_assert_cmpint(sd_bus_set_bus_client(bus, true), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        return bus;
}

static void set_mode(sd_bus *bus, const char *mode) {
        g_assert_cmpint(sd_bus_call_method(bus, AUTHORITY, AUTHORITY_PATH, AUTHORITY_IFACE, "SetMode", NULL,
                                           NULL, "s", mode),
                        >=, 0);
}

/* Calls Frobnicate; returns the error name, or NULL on success (then checks the reply). */
static char *frobnicate(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *s;
        int r;

        r = sd_bus_call_method(bus, SERVICE, "/", SERVICE, "Frobnicate", &error, &reply, "");
        if (r < 0) {
                g_assert_nonnull(error.name);
                /* Whatever the reason, a refusal names the action or says why it could not ask. */
                g_assert_nonnull(error.message);
                return g_strdup_printf("%s: %s", error.name, error.message);
        }
        g_assert_cmpint(sd_bus_message_read(reply, "s", &s), >, 0);
        g_assert_cmpstr(s, ==, "frobnicated");
        return NULL;
}

static unsigned last_call(sd_bus *bus, char **kind, char **name, char **action, char **details,
                          uint32_t *flags) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *k, *n, *a, *d;
        unsigned calls;

        g_assert_cmpint(sd_bus_call_method(bus, AUTHORITY, AUTHORITY_PATH, AUTHORITY_IFACE, "LastCall", NULL,
                                           &reply, ""),
                        >=, 0);
        g_assert_cmpint(sd_bus_message_read(reply, "ussssu", &calls, &k, &n, &a, &d, flags), >, 0);
        *kind = g_strdup(k);
        *name = g_strdup(n);
        *action = g_strdup(a);
        *details = g_strdup(d);
        return calls;
}

static void as_nobody(const char *address) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        g_autofree char *kind = NULL, *name = NULL, *action = NULL, *details = NULL, *e = NULL;
        const char *me;
        uint32_t flags;
        unsigned calls;

        bus = connect_to(address);
        g_assert_cmpint(sd_bus_get_unique_name(bus, &me), >=, 0);

        /* Allowed: the service ran its continuation, and polkit was asked about us by bus name. */
        set_mode(bus, "allow");
        g_assert_null(frobnicate(bus));
        calls = last_call(bus, &kind, &name, &action, &details, &flags);
        g_assert_cmpuint(calls, ==, 1);
        /* SECURITY: the subject is the bus name, never a pid polkit would have to trust. */
        g_assert_cmpstr(kind, ==, "system-bus-name");
        g_assert_cmpstr(name, ==, me);
        g_assert_cmpstr(action, ==, ACTION);
        g_assert_cmpstr(details, ==, "reference=example.org/busybox:latest;flags=0;");
        g_assert_cmpuint(flags, ==, 0); /* the caller did not offer to answer a prompt */

        /* Denied: the specific refusal, naming the action. */
        set_mode(bus, "deny");
        e = frobnicate(bus);
        g_assert_cmpstr(
                e, ==, BERTH_ERROR_ACCESS_DENIED ": Not authorized: polkit action '" ACTION "' was denied.");
        g_clear_pointer(&e, g_free);

        /* A challenge to a caller that cannot answer one. */
        set_mode(bus, "challenge");
        e = frobnicate(bus);
        g_assert_true(g_str_has_prefix(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED ": "));
        g_assert_nonnull(strstr(e, ACTION));
        g_clear_pointer(&e, g_free);

        /* A caller that can answer a prompt: flag 1 (AllowUserInteraction) goes to polkit. */
        g_assert_cmpint(sd_bus_set_allow_interactive_authorization(bus, true), >=, 0);
        set_mode(bus, "allow");
        g_assert_null(frobnicate(bus));
        g_clear_pointer(&kind, g_free);
        g_clear_pointer(&name, g_free);
        g_clear_pointer(&action, g_free);
        g_clear_pointer(&details, g_free);
        g_assert_cmpuint(last_call(bus, &kind, &name, &action, &details, &flags), ==, 4);
        g_assert_cmpuint(flags, ==, 1);
        g_assert_cmpint(sd_bus_set_allow_interactive_authorization(bus, false), >=, 0);

        /* SECURITY: an authority that fails, or answers nonsense, means denied. */
        set_mode(bus, "error");
        e = frobnicate(bus);
        g_assert_cmpstr(
                e, ==,
                BERTH_ERROR_ACCESS_DENIED
                ": Authorization check for 'org.example.frobnicate' failed (polkit: authority broken).");
        g_clear_pointer(&e, g_free);
        set_mode(bus, "malformed");
        e = frobnicate(bus);
        g_assert_cmpstr(
                e, ==,
                BERTH_ERROR_ACCESS_DENIED
                ": Authorization check for 'org.example.frobnicate' failed (malformed polkit reply).");
}

static void as_root(const char *address) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        g_autofree char *kind = NULL, *name = NULL, *action = NULL, *details = NULL;
        uint32_t flags;
        unsigned before;

        bus = connect_to(address);
        set_mode(bus, "deny");
        before = last_call(bus, &kind, &name, &action, &details, &flags);
        /* Root is allowed without asking: polkit is not even called. */
        g_assert_null(frobnicate(bus));
        g_clear_pointer(&kind, g_free);
        g_clear_pointer(&name, g_free);
        g_clear_pointer(&action, g_free);
        g_clear_pointer(&details, g_free);
        g_assert_cmpuint(last_call(bus, &kind, &name, &action, &details, &flags), ==, before);
}

/* ---- the harness ------------------------------------------------------------------------------------- */

typedef struct Harness {
        GPid daemon;
        char *dir;
        char *address;
} Harness;

/* The daemon goes when the test goes, also when an assertion ends it early. */
static void daemon_setup(gpointer data) {
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void harness_start(Harness *h) {
        g_autofree char *config = NULL, *socket = NULL;
        g_autoptr(GError) error = NULL;
        const char *argv[] = { "dbus-daemon", "--nofork", "--print-address", NULL, NULL };
        g_autofree char *config_arg = NULL;
        char line[512] = "";
        int out_fd;
        FILE *f;

        h->dir = g_dir_make_tmp("test-bus-polkit-XXXXXX", &error);
        g_assert_no_error(error);
        g_assert_cmpint(g_chmod(h->dir, 0755), ==, 0);
        socket = g_build_filename(h->dir, "bus", NULL);
        config = g_build_filename(h->dir, "bus.conf", NULL);
        /* Anybody may connect, own names and call anything: the test's three parties are trusted. */
        f = fopen(config, "we");
        g_assert_nonnull(f);
        fprintf(f,
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig><type>system</type><listen>unix:path=%s</listen><auth>EXTERNAL</auth>\n"
                "<policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>"
                "<allow send_destination=\"*\" eavesdrop=\"true\"/><allow send_type=\"method_call\"/>"
                "<allow receive_sender=\"*\"/></policy></busconfig>\n",
                socket);
        fclose(f);
        config_arg = g_strdup_printf("--config-file=%s", config);
        argv[3] = config_arg;
        g_spawn_async_with_pipes(NULL, (char **) argv, NULL,
                                 G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                         G_SPAWN_STDERR_TO_DEV_NULL,
                                 daemon_setup, NULL, &h->daemon, NULL, &out_fd, NULL, &error);
        g_assert_no_error(error);
        f = fdopen(out_fd, "r");
        g_assert_nonnull(f);
        g_assert_nonnull(fgets(line, sizeof(line), f));
        fclose(f);
        g_strchomp(line);
        h->address = g_strdup(line);
}

static void harness_stop(Harness *h) {
        g_autofree char *socket = g_build_filename(h->dir, "bus", NULL),
                        *config = g_build_filename(h->dir, "bus.conf", NULL);

        kill(h->daemon, SIGTERM);
        (void) waitpid(h->daemon, NULL, 0);
        (void) g_unlink(socket);
        (void) g_unlink(config);
        (void) g_rmdir(h->dir);
        g_free(h->dir);
        g_free(h->address);
}

typedef struct Children {
        sd_event *event;
        const char *address;
        unsigned done;
        bool failed;
} Children;

static pid_t spawn_caller(Children *c, const char *address, bool nobody);

/* The callers run one after the other (they share the authority's mode): nobody first, then root. */
static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Children *c = userdata;

        if (si->si_code != CLD_EXITED || si->si_status != 0) {
                g_printerr("caller %d failed (code %d, status %d)\n", si->si_pid, si->si_code,
                           si->si_status);
                c->failed = true;
        }
        if (++c->done == 1 && !c->failed) {
                spawn_caller(c, c->address, false);
                return 0;
        }
        return sd_event_exit(c->event, 0);
}

static pid_t spawn_caller(Children *c, const char *address, bool nobody) {
        pid_t pid = fork();

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                if (nobody) {
                        struct passwd *pw = getpwnam("nobody");

                        if (!pw || setgroups(0, NULL) < 0 ||
                            setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
                            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
                                _exit(3);
                        as_nobody(address);
                } else
                        as_root(address);
                _exit(0);
        }
        g_assert_cmpint(sd_event_add_child(c->event, NULL, pid, WEXITED, on_child, c), >=, 0);
        return pid;
}

static void test_polkit_check(void) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *service = NULL, *authority = NULL;
        Authority a = { .mode = "deny" };
        Children children = {};
        unsigned ran = 0;
        Harness h = {};
        sigset_t mask;
        g_autofree char *dbus_daemon = g_find_program_in_path("dbus-daemon");

        if (geteuid() != 0 || !dbus_daemon) {
                g_test_skip("needs root and dbus-daemon");
                return;
        }
        harness_start(&h);

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        g_assert_cmpint(sigprocmask(SIG_BLOCK, &mask, NULL), ==, 0);
        g_assert_cmpint(sd_event_new(&event), >=, 0);
        children.event = event;

        authority = connect_to(h.address);
        g_assert_cmpint(sd_bus_add_object(authority, NULL, AUTHORITY_PATH, authority_dispatch, &a), >=, 0);
        g_assert_cmpint(sd_bus_request_name(authority, AUTHORITY, 0), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(authority, event, 0), >=, 0);
        service = connect_to(h.address);
        g_assert_cmpint(sd_bus_add_object_vtable(service, NULL, "/", SERVICE, service_vtable, &ran), >=, 0);
        g_assert_cmpint(sd_bus_request_name(service, SERVICE, 0), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(service, event, 0), >=, 0);

        children.address = h.address;
        spawn_caller(&children, h.address, true);
        g_assert_cmpint(sd_event_loop(event), >=, 0);
        g_assert_false(children.failed);
        g_assert_cmpuint(children.done, ==, 2);
        /* The continuation ran for the two allowed calls as nobody and the root call, nothing else;
         * polkit was asked six times, all for nobody. */
        g_assert_cmpuint(ran, ==, 3);
        g_assert_cmpuint(a.calls, ==, 6);

        g_free(a.subject_kind);
        g_free(a.subject_name);
        g_free(a.action);
        g_free(a.details);
        harness_stop(&h);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bus-polkit/check", test_polkit_check);
        return g_test_run();
}
