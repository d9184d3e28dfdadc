/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The transfer state machine, published on a real sd-bus connection (a socketpair, the broker's end a
 * D-Bus server, the test's end a client that reads properties, receives the signals and calls Cancel as
 * root):
 * states and rows as a pull drives them, the owner ops (cancel, free, uses_chain), Finished once. */

#include <glib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "bus-names.h"
#include "bus-util.h"
#include "transfer.h"

typedef struct Fixture {
        sd_event *event;
        sd_bus *server, *client;
        Manager manager;
} Fixture;

typedef struct FakeOwner {
        unsigned cancelled, freed;
        const char *chain;
} FakeOwner;

static void owner_cancel(void *owner) {
        ((FakeOwner *) owner)->cancelled++;
}
static void owner_free(void *owner) {
        ((FakeOwner *) owner)->freed++;
}
static bool owner_uses_chain(void *owner, const char *chain_id) {
        return streq_ptr(((FakeOwner *) owner)->chain, chain_id);
}
static const TransferOwnerOps fake_ops = {
        .cancel = owner_cancel,
        .free = owner_free,
        .uses_chain = owner_uses_chain,
};

static void fixture_setup(Fixture *f, gconstpointer data) {
        int fds[2];
        sd_id128_t id;

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(sd_id128_randomize(&id), >=, 0);

        g_assert_cmpint(sd_bus_new(&f->server), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(f->server, fds[0], fds[0]), >=, 0);
        g_assert_cmpint(sd_bus_set_server(f->server, 1, id), >=, 0);
        g_assert_cmpint(sd_bus_negotiate_creds(f->server, 1, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(f->server, f->event, 0), >=, 0);
        g_assert_cmpint(sd_bus_start(f->server), >=, 0);

        g_assert_cmpint(sd_bus_new(&f->client), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(f->client, fds[1], fds[1]), >=, 0);
        g_assert_cmpint(sd_bus_attach_event(f->client, f->event, 0), >=, 0);
        g_assert_cmpint(sd_bus_start(f->client), >=, 0);

        f->manager = (Manager){
                .bus = f->server,
                .event = f->event,
                .transfers = g_hash_table_new(g_direct_hash, g_direct_equal),
        };
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        manager_free_transfers(&f->manager);
        sd_bus_flush_close_unref(f->client);
        sd_bus_flush_close_unref(f->server);
        sd_event_unref(f->event);
}

/* Runs the loop until *done; bounded in iterations, not in time. */
static void run_until(Fixture *f, const bool *done) {
        for (unsigned i = 0; !*done && i < 10000; i++)
                g_assert_cmpint(sd_event_run(f->event, UINT64_MAX), >=, 0);
        g_assert_true(*done);
}

typedef struct Call {
        bool done;
        sd_bus_message *reply;
} Call;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Call *c = userdata;

        c->reply = sd_bus_message_ref(m);
        c->done = true;
        return 0;
}

static char *get_state(Fixture *f, Transfer *t) {
        Call c = {};
        const char *s;

        g_assert_cmpint(sd_bus_call_method_async(f->client, NULL, NULL, t->path,
                                                 "org.freedesktop.DBus.Properties", "Get", on_reply, &c,
                                                 "ss", BERTH_BROKER_TRANSFER_IFACE, "State"),
                        >=, 0);
        run_until(f, &c.done);
        g_assert_false(sd_bus_message_is_method_error(c.reply, NULL));
        g_assert_cmpint(sd_bus_message_read(c.reply, "v", "s", &s), >, 0);
        char *ret = g_strdup(s);
        sd_bus_message_unref(c.reply);
        return ret;
}

typedef struct Finished {
        unsigned count;
        char *result, *error;
} Finished;

static int on_finished(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Finished *fin = userdata;
        const char *result, *msg;

        g_assert_cmpint(sd_bus_message_read(m, "ss", &result, &msg), >, 0);
        fin->count++;
        g_free(fin->result);
        g_free(fin->error);
        fin->result = g_strdup(result);
        fin->error = g_strdup(msg);
        return 0;
}

static void test_life_cycle(Fixture *f, gconstpointer data) {
        const char *layer = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        const char *other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        FakeOwner owner = {
                .chain = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
        };
        g_autofree char *state = NULL;
        sd_bus_slot *match = NULL;
        Finished fin = {};
        TransferBlob *b = NULL;
        Transfer *t = NULL;

        g_assert_cmpint(transfer_new(&f->manager, 1000, "docker.io/library/busybox:latest", "", 0, &t), ==,
                        0);
        g_assert_cmpint(sd_bus_match_signal(f->client, &match, NULL, t->path, BERTH_BROKER_TRANSFER_IFACE,
                                            "Finished", on_finished, &fin),
                        >=, 0);
        transfer_set_owner(t, &fake_ops, &owner);
        /* Signals go to watchers only (issue 12 finding 7). On this direct connection the client has no
         * unique name, and sd-bus delivers whatever destination a message names. */
        g_assert_cmpint(transfer_add_watcher_name(t, 1000, ":1.42"), ==, 1);
        g_assert_cmpint(transfer_add_watcher_name(t, 1000, ":1.42"), ==, 0);
        g_assert_true(transfer_visible_to(t, 1000));
        g_assert_true(transfer_visible_to(t, 0));
        g_assert_false(transfer_visible_to(t, 1001));

        /* A new transfer resolves, and is found by what it pulls. */
        g_assert_true(transfer_is_running(t));
        state = get_state(f, t);
        g_assert_cmpstr(state, ==, "resolving");
        g_assert_true(transfer_find_running(&f->manager, "docker.io/library/busybox:latest", "", 0) == t);
        g_assert_null(transfer_find_running(&f->manager, "docker.io/library/busybox:latest", "", 1));
        g_assert_null(
                transfer_find_running(&f->manager, "docker.io/library/busybox:latest", "linux/arm64", 0));
        g_assert_cmpuint(transfer_count_running(&f->manager, false, 1000), ==, 1);
        g_assert_cmpuint(transfer_count_running(&f->manager, false, 1001), ==, 0);
        g_assert_cmpuint(transfer_count_running(&f->manager, true, 0), ==, 1);

        /* Rows: one per digest; done never passes the total we verified. */
        transfer_set_state(t, TRANSFER_DOWNLOADING);
        g_free(state);
        state = get_state(f, t);
        g_assert_cmpstr(state, ==, "downloading");
        g_assert_cmpint(transfer_add_blob(t, layer, "application/vnd.oci.image.layer.v1.tar+gzip", 100, &b),
                        ==, 1);
        g_assert_cmpint(
                transfer_add_blob(t, layer, "application/vnd.oci.image.layer.v1.tar+gzip", 100, NULL), ==,
                0);
        g_assert_true(transfer_find_blob(t, layer) == b);
        g_assert_cmpstr(b->state, ==, "waiting");
        transfer_blob_update(t, b, "downloading", 250, 999);
        g_assert_cmpuint(b->done, ==, 100);
        g_assert_cmpuint(b->total, ==, 100);
        g_assert_cmpstr(b->state, ==, "downloading");
        g_assert_cmpstr(transfer_blob_state_from_string("verifying"), ==, "verifying");
        g_assert_null(transfer_blob_state_from_string("bogus"));

        /* What garbage collection asks: the digests and chains of running transfers. */
        g_assert_true(manager_digest_in_running_transfer(&f->manager, layer, NULL));
        g_assert_false(manager_digest_in_running_transfer(&f->manager, layer, t));
        g_assert_false(manager_digest_in_running_transfer(&f->manager, other, NULL));
        g_assert_true(manager_chain_in_running_transfer(&f->manager, owner.chain));
        g_assert_false(manager_chain_in_running_transfer(&f->manager, other));

        /* Failing: unfinished rows fail, Finished goes out once, the transfer stays to be read. */
        transfer_finish(t, TRANSFER_FAILED, "registry said no");
        transfer_finish(t, TRANSFER_DONE, "");
        g_assert_false(transfer_is_running(t));
        g_assert_cmpint(t->state, ==, TRANSFER_FAILED);
        g_assert_cmpstr(b->state, ==, "failed");
        g_assert_cmpstr(t->error, ==, "registry said no");
        g_assert_nonnull(t->expire_timer);
        g_assert_false(manager_chain_in_running_transfer(&f->manager, owner.chain));
        g_assert_null(transfer_find_running(&f->manager, "docker.io/library/busybox:latest", "", 0));
        g_free(state);
        state = get_state(f, t); /* also lets the signals through */
        g_assert_cmpstr(state, ==, "failed");
        g_assert_cmpuint(fin.count, ==, 1);
        g_assert_cmpstr(fin.result, ==, "failed");
        g_assert_cmpstr(fin.error, ==, "registry said no");
        g_assert_cmpuint(owner.cancelled, ==, 0);

        /* Freeing the transfer frees its work. */
        transfer_free(t);
        g_assert_cmpuint(owner.freed, ==, 1);
        g_assert_cmpuint(transfer_count_running(&f->manager, true, 0), ==, 0);
        sd_bus_slot_unref(match);
        g_free(fin.result);
        g_free(fin.error);
}

static void test_cancel(Fixture *f, gconstpointer data) {
        const char *layer = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        const char *done = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
        FakeOwner owner = {};
        sd_bus_slot *match = NULL;
        TransferBlob *b = NULL, *d = NULL;
        Finished fin = {};
        Transfer *t = NULL;
        Call c = {};

        /* Root is authorised without polkit; anyone else needs a polkit subject, a unique bus name,
         * which a peer-to-peer connection has not. (The integration tests cancel as other users.) */
        if (getuid() != 0) {
                g_test_skip("Cancel over a peer-to-peer connection needs a root caller");
                return;
        }
        g_assert_cmpint(
                transfer_new(&f->manager, getuid(), "docker.io/library/debian:12", "linux/amd64", 0, &t), ==,
                0);
        g_assert_cmpint(sd_bus_match_signal(f->client, &match, NULL, t->path, BERTH_BROKER_TRANSFER_IFACE,
                                            "Finished", on_finished, &fin),
                        >=, 0);
        transfer_set_owner(t, &fake_ops, &owner);
        /* Signals go to watchers only (issue 12 finding 7). On this direct connection the client has no
         * unique name, and sd-bus delivers whatever destination a message names. */
        g_assert_cmpint(transfer_add_watcher_name(t, 1000, ":1.42"), ==, 1);
        g_assert_cmpint(transfer_add_watcher_name(t, 1000, ":1.42"), ==, 0);
        g_assert_true(transfer_visible_to(t, 1000));
        g_assert_true(transfer_visible_to(t, 0));
        g_assert_false(transfer_visible_to(t, 1001));
        transfer_set_state(t, TRANSFER_DOWNLOADING);
        g_assert_cmpint(transfer_add_blob(t, layer, "application/vnd.oci.image.layer.v1.tar", 10, &b), ==,
                        1);
        g_assert_cmpint(transfer_add_blob(t, done, "application/vnd.oci.image.layer.v1.tar", 10, &d), ==, 1);
        transfer_blob_update(t, b, "downloading", 5, 10);
        transfer_blob_update(t, d, "done", 10, 10);

        /* Cancel() over the bus, by the user who started it. */
        g_assert_cmpint(sd_bus_call_method_async(f->client, NULL, NULL, t->path, BERTH_BROKER_TRANSFER_IFACE,
                                                 "Cancel", on_reply, &c, ""),
                        >=, 0);
        run_until(f, &c.done);
        if (sd_bus_message_is_method_error(c.reply, NULL))
                g_error("Cancel failed: %s", sd_bus_message_get_error(c.reply)->message);
        sd_bus_message_unref(c.reply);

        /* The work was told to stop; rows not finished go back to waiting, finished ones stay. */
        g_assert_cmpuint(owner.cancelled, ==, 1);
        g_assert_cmpint(t->state, ==, TRANSFER_CANCELLED);
        g_assert_cmpstr(b->state, ==, "waiting");
        g_assert_cmpstr(d->state, ==, "done");
        c = (Call){};
        g_assert_cmpint(sd_bus_call_method_async(f->client, NULL, NULL, t->path, BERTH_BROKER_TRANSFER_IFACE,
                                                 "Cancel", on_reply, &c, ""),
                        >=, 0);
        run_until(f, &c.done);
        /* A second Cancel finds nothing left to stop. */
        g_assert_true(sd_bus_message_is_method_error(c.reply, BERTH_ERROR_NOT_FOUND));
        sd_bus_message_unref(c.reply);
        g_assert_cmpuint(owner.cancelled, ==, 1);
        g_assert_cmpuint(fin.count, ==, 1);
        g_assert_cmpstr(fin.result, ==, "cancelled");

        sd_bus_slot_unref(match);
        g_free(fin.result);
        g_free(fin.error);
        /* The manager frees what is left (teardown): the owner with it. */
        manager_free_transfers(&f->manager);
        g_assert_cmpuint(owner.freed, ==, 1);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/transfer/life-cycle", Fixture, NULL, fixture_setup, test_life_cycle, fixture_teardown);
        g_test_add("/transfer/cancel", Fixture, NULL, fixture_setup, test_cancel, fixture_teardown);
        return g_test_run();
}
