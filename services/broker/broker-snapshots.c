/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "berth-limits.h"
#include "broker.h"
#include "snapshot-census.h"
#include "bus-names.h"
#include "bus-error.h"
#include "bus-util.h"
#include "digest.h"
#include "image-store.h"
#include "json-util.h"
#include "log.h"
#include "oci-ref.h"
#include "oci-types.h"
#include "supervisor-client.h"
#include "transfer.h"
#include "unpacker-client.h"

/* The snapshot half of org.berth.Broker1.Manager. The unpacker owns the snapshots, the supervisor knows
 * which are mounted as image views, the broker knows which images and running pulls need them: listing,
 * removal and usage are decided here from all three (snapshot-census.c), and done by the unpacker; garbage
 * collection is in broker-gc.c. Image views
 * (MountImage/UnmountImage) are made by the supervisor onto a directory fd the caller opened. */

/* ---- ListSnapshots ---------------------------------------------------------------------------------- */

static void list_snapshots_reply(SnapCall *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Snap **l = NULL;
        size_t n = 0;
        int r;

        l = snap_sorted(c, &n);
        r = l ? sd_bus_message_new_method_return(c->request, &reply) : -ENOMEM;
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssstuas)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                g_autoptr(GPtrArray) users = snap_images_using(c->manager, l[i]->chain_id);

                r = sd_bus_message_open_container(reply, 'r', "ssstuas");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ssstu", l[i]->chain_id, l[i]->parent,
                                                  l[i]->diff_id, l[i]->size, l[i]->entries);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "s");
                for (guint k = 0; r >= 0 && k < users->len; k++)
                        r = sd_bus_message_append(reply, "s", (const char *) users->pdata[k]);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        broker_send_built_reply(c->request, reply, r, "list snapshots");
        snap_call_free(c);
}

static int list_snapshots_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        SnapCall *c = snap_call_new(manager, m);

        if (!c)
                return -ENOMEM;
        return snap_collect(c, list_snapshots_reply, error);
}

int method_list_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, list_snapshots_authorized, userdata, NULL, 0, NULL, error);
}

/* ---- SnapshotInfo ----------------------------------------------------------------------------------- */

static int validate_chain_id(const char *s, sd_bus_error *error) {
        DigestAlgorithm alg;

        if (strlen(s) > BUS_STRING_MAX || digest_validate(s, &alg) < 0 || alg != DIGEST_SHA256)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid snapshot id '%.80s': expected sha256:<64 hex digits>.", s);
        return 0;
}

static void snapshot_info_reply(SnapCall *c) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *text = NULL;
        g_autoptr(GPtrArray) users = NULL;
        _cleanup_free_ Snap **l = NULL;
        const char *id = c->ids[0];
        Snap *s = g_hash_table_lookup(c->snaps, id);
        size_t n = 0;

        if (!s) {
                snap_call_fail(c, BERTH_ERROR_NOT_FOUND, "No snapshot '%s'.", id);
                return;
        }
        users = snap_images_using(c->manager, id);
        l = snap_sorted(c, &n);
        if (!l) {
                snap_call_fail(c, BERTH_ERROR_IO, "Out of memory.");
                return;
        }
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "chain_id");
        json_builder_add_string_value(b, s->chain_id);
        json_builder_set_member_name(b, "parent");
        json_builder_add_string_value(b, s->parent);
        json_builder_set_member_name(b, "diff_id");
        json_builder_add_string_value(b, s->diff_id);
        json_builder_set_member_name(b, "size");
        json_builder_add_int_value(b, (gint64) s->size);
        json_builder_set_member_name(b, "entries");
        json_builder_add_int_value(b, s->entries);
        json_builder_set_member_name(b, "depth");
        json_builder_add_int_value(b, snap_depth(c, s) + 1);
        json_builder_set_member_name(b, "mounted");
        json_builder_add_boolean_value(b, g_hash_table_contains(c->mounted, id));
        json_builder_set_member_name(b, "images");
        json_builder_begin_array(b);
        for (guint k = 0; k < users->len; k++)
                json_builder_add_string_value(b, users->pdata[k]);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "children");
        json_builder_begin_array(b);
        for (size_t i = 0; i < n; i++)
                if (streq(l[i]->parent, id))
                        json_builder_add_string_value(b, l[i]->chain_id);
        json_builder_end_array(b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        text = json_to_string_compact(root);
        if (!text) {
                snap_call_fail(c, BERTH_ERROR_IO, "Out of memory.");
                return;
        }
        (void) sd_bus_reply_method_return(c->request, "s", text);
        snap_call_free(c);
}

typedef struct SnapshotInfoArgs {
        const char *id;
} SnapshotInfoArgs;

static int snapshot_info_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        SnapshotInfoArgs *a = args;
        SnapCall *c;
        int r;

        r = validate_chain_id(a->id, error);
        if (r < 0)
                return r;
        c = snap_call_new_one(manager, m, a->id);
        if (!c)
                return -ENOMEM;
        return snap_collect(c, snapshot_info_reply, error);
}

int method_snapshot_info(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SnapshotInfoArgs a = {};
        int r;

        r = sd_bus_message_read(m, "s", &a.id);
        if (r < 0)
                return r;
        return broker_authorize(m, NULL, snapshot_info_authorized, userdata, &a, sizeof(a), NULL, error);
}

/* ---- RemoveSnapshots -------------------------------------------------------------------------------- */

static int on_remove_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SnapCall *c = userdata;
        uint64_t freed = 0;

        if (sd_bus_message_is_method_error(m, NULL)) {
                snap_call_fail_bus(c, sd_bus_message_get_error(m), "Removing snapshots");
                return 0;
        }
        if (sd_bus_message_read(m, "t", &freed) < 0) {
                snap_call_fail(c, BERTH_ERROR_SERVICE_UNAVAILABLE, "Malformed reply from the unpacker.");
                return 0;
        }
        log_info("Removed %u snapshot(s), %" PRIu64 " bytes freed.", g_strv_length(c->ids), freed);
        (void) sd_bus_reply_method_return(c->request, "t", freed);
        snap_call_free(c);
        return 0;
}

static void remove_snapshots_decide(SnapCall *c) {
        for (char **id = c->ids; *id; id++) {
                g_autoptr(GPtrArray) users = NULL;

                if (!g_hash_table_contains(c->snaps, *id)) {
                        snap_call_fail(c, BERTH_ERROR_NOT_FOUND, "No snapshot '%s'.", *id);
                        return;
                }
                users = snap_images_using(c->manager, *id);
                if (users->len > 0) {
                        snap_call_fail(c, BERTH_ERROR_BUSY,
                                       "Snapshot '%s' is used by image '%s'%s; remove the image first.", *id,
                                       (const char *) users->pdata[0], users->len > 1 ? " and others" : "");
                        return;
                }
                if (g_hash_table_contains(c->mounted, *id)) {
                        snap_call_fail(c, BERTH_ERROR_BUSY,
                                       "Snapshot '%s' is used by a mounted image view; unmount it first.",
                                       *id);
                        return;
                }
                if (manager_chain_in_running_transfer(c->manager, *id)) {
                        snap_call_fail(c, BERTH_ERROR_BUSY, "Snapshot '%s' is used by a running pull.", *id);
                        return;
                }
        }
        /* The unpacker refuses removing a parent without its children (and mounted snapshots) itself. */
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r = unpacker_new_call(c->manager, &call, "RemoveSnapshots");
        if (r >= 0)
                r = sd_bus_message_append_strv(call, c->ids);
        if (r >= 0)
                r = internal_call_send(c->manager, call, NULL, SNAPSHOT_REMOVE_TIMEOUT_USEC, on_remove_reply,
                                       c);
        if (r < 0)
                snap_call_fail_unreachable(c, &internal_unpacker, r);
}

typedef struct RemoveSnapshotsArgs {
        char **ids; /* owned */
        uint64_t flags;
} RemoveSnapshotsArgs;

static void remove_snapshots_args_done(void *args) {
        RemoveSnapshotsArgs *a = args;

        strv_free(a->ids);
}

static int remove_snapshots_authorized(sd_bus_message *m, Manager *manager, void *args,
                                       sd_bus_error *error) {
        RemoveSnapshotsArgs *a = args;
        SnapCall *c;
        size_t n;
        int r;

        r = bus_check_flags(a->flags, 0, error);
        if (r < 0)
                return r;
        n = a->ids ? g_strv_length(a->ids) : 0;
        if (n == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "No snapshot given.");
        if (n > BUS_ARRAY_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "At most %u snapshots per call.",
                                         BUS_ARRAY_MAX);
        for (size_t i = 0; i < n; i++) {
                r = validate_chain_id(a->ids[i], error);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (streq(a->ids[k], a->ids[i]))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Duplicate snapshot '%s'.", a->ids[i]);
        }
        c = snap_call_new(manager, m);
        if (!c)
                return -ENOMEM;
        c->need_mounted = true;
        c->ids = TAKE_PTR(a->ids);
        return snap_collect(c, remove_snapshots_decide, error);
}

int method_remove_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        RemoveSnapshotsArgs a = {};
        int r;

        r = sd_bus_message_read_strv(m, &a.ids);
        if (r >= 0)
                r = sd_bus_message_read(m, "t", &a.flags);
        if (r < 0) {
                strv_free(a.ids);
                return r;
        }
        /* The args (and the ids they own) are broker_authorize()'s from here on. */
        return broker_authorize(m, NULL, remove_snapshots_authorized, userdata, &a, sizeof(a),
                                remove_snapshots_args_done, error);
}

/* ---- Usage ------------------------------------------------------------------------------------------ */

typedef struct Usage {
        uint64_t content, unpacked, unique;
} Usage;

static bool image_references_chain_or_blob(const Image *i, const char *id) {
        return image_references_blob(i, id) || image_uses_chain(i, id);
}

/* Adds `size` of object `id` to the image's totals, and to its unique bytes when no other image with a
 * different target references it (tags of one image share everything). */
static void usage_add(Image **l, size_t n, size_t self, const char *id, uint64_t size, bool snapshot,
                      Usage *u) {
        bool shared = false;

        if (snapshot)
                u->unpacked += size;
        else
                u->content += size;
        for (size_t k = 0; !shared && k < n; k++)
                shared = k != self && !streq(l[k]->target_digest, l[self]->target_digest) &&
                         image_references_chain_or_blob(l[k], id);
        if (!shared)
                u->unique += size;
}

static void usage_reply(SnapCall *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Image **l = NULL;
        const char *only = c->ids ? c->ids[0] : NULL;
        size_t n = 0;
        int r;

        r = image_store_list(c->manager->images, &l, &n);
        if (r >= 0)
                r = sd_bus_message_new_method_return(c->request, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sttttb)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
                const Image *img = l[i];
                bool unpacked = false;
                Usage u = {};

                if (only && !streq(img->name, only))
                        continue;
#define ADD(id, size, snap)                                                                                 \
        do {                                                                                                \
                if ((id) && g_hash_table_add(seen, (gpointer) (id)))                                        \
                        usage_add(l, n, i, (id), (size), (snap), &u);                                       \
        } while (0)
                ADD(img->target_digest, img->target_size, false);
                for (size_t k = 0; k < img->n_platforms; k++) {
                        const ImagePlatform *p = &img->platforms[k];

                        unpacked = unpacked || p->unpacked;
                        ADD(p->manifest_digest, p->manifest_size, false);
                        ADD(p->config_digest, p->config_size, false);
                        for (size_t x = 0; x < p->n_layers; x++)
                                ADD(p->layers[x].digest, p->layers[x].size, false);
                        STRV_FOREACH(ch, p->chain_ids) {
                                Snap *s = g_hash_table_lookup(c->snaps, *ch);
                                if (s)
                                        ADD(s->chain_id, s->size, true);
                        }
                }
#undef ADD
                r = sd_bus_message_append(reply, "(sttttb)", img->name, u.content, u.unpacked,
                                          u.content + u.unpacked - u.unique, u.unique, unpacked);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        broker_send_built_reply(c->request, reply, r, "compute usage");
        snap_call_free(c);
}

typedef struct UsageArgs {
        const char *reference;
} UsageArgs;

static int usage_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        UsageArgs *a = args;
        Image *i = NULL;
        SnapCall *c;
        int r;

        if (!isempty(a->reference)) {
                r = broker_lookup_image(manager, a->reference, &i, error);
                if (r < 0)
                        return r;
        }
        c = snap_call_new_one(manager, m, i ? i->name : NULL);
        if (!c)
                return -ENOMEM;
        return snap_collect(c, usage_reply, error);
}

int method_usage(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        UsageArgs a = {};
        int r;

        r = sd_bus_message_read(m, "s", &a.reference);
        if (r < 0)
                return r;
        return broker_authorize(m, NULL, usage_authorized, userdata, &a, sizeof(a), NULL, error);
}

/* ---- MountImage / UnmountImage ---------------------------------------------------------------------- */

static int on_mount_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *request = userdata;
        uint64_t id = 0;

        if (sd_bus_message_is_method_error(m, NULL))
                (void) bus_reply_internal_error(request, sd_bus_message_get_error(m), "The image view");
        else if (!streq_ptr(sd_bus_message_get_member(request), "MountImage"))
                (void) sd_bus_reply_method_return(request, "");
        else if (sd_bus_message_read(m, "t", &id) < 0)
                (void) sd_bus_reply_method_errorf(request, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                                  "Malformed reply from the supervisor.");
        else
                (void) sd_bus_reply_method_return(request, "t", id);
        return 0;
}

/* SECURITY: the directory is the caller's own fd (opened by the caller with its own permissions, O_PATH
 * is enough); we only check that it is a directory and pass it on. The supervisor refuses anything it
 * would not mount onto, and never learns a path from us. */
static int check_dir_fd(int fd, sd_bus_error *error) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Cannot stat the directory: %m");
        if (!S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The mount point must be a directory.");
        return 0;
}

/* SECURITY: fusermount's rule. An fd proves only that the caller could open the directory, and O_PATH
 * needs no permission on it at all: without this, whoever holds the mount action could cover
 * /etc/sudoers.d or /etc/pam.d with an image's files (root-owned, as the image has them) and so become
 * root. A non-root caller may mount only onto a directory it owns and may write; root onto any. The
 * owner and mode are those of the very inode the supervisor will mount onto (the same fd). */
static int check_mount_target(sd_bus_message *m, int fd, sd_bus_error *error) {
        struct stat st;
        uid_t uid;

        if (bus_message_sender_uid(m, &uid) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        if (uid == 0)
                return 0;
        if (fstat(fd, &st) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Cannot stat the directory: %m");
        if (st.st_uid != uid)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "The mount point is not owned by the caller (uid %u).",
                                         (unsigned) uid);
        if (!(st.st_mode & S_IWUSR))
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "The caller may not write to the mount point.");
        return 0;
}

typedef struct MountImageArgs {
        const char *reference;
        int fd;
        uint64_t flags;
} MountImageArgs;

static int mount_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        MountImageArgs *a = args;
        const ImagePlatform *p;
        const char *name;
        size_t n;
        Image *i;
        int r;

        r = bus_check_flags(a->flags, 0, error);
        if (r < 0)
                return r;
        r = check_dir_fd(a->fd, error);
        if (r < 0)
                return r;
        r = check_mount_target(m, a->fd, error);
        if (r < 0)
                return r;
        r = broker_lookup_image(manager, a->reference, &i, error);
        if (r < 0)
                return r;
        name = i->name;
        p = broker_image_platform(i, NULL);
        if (!p)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND,
                                         "Image '%s' has no platform this machine runs.", name);
        n = p->chain_ids ? g_strv_length(p->chain_ids) : 0;
        if (n == 0)
                return sd_bus_error_setf(error, BERTH_ERROR_UNSUPPORTED, "Image '%s' has no layers.", name);
        if (!p->unpacked)
                return sd_bus_error_setf(
                        error, BERTH_ERROR_NOT_FOUND,
                        "Image '%s' is not unpacked for %s; pull it again (without --no-unpack).", name,
                        p->platform);

        r = supervisor_call(manager, NULL, 0, on_mount_reply, sd_bus_message_ref(m), "MountImage", "sht",
                            p->chain_ids[n - 1], a->fd, UINT64_C(0));
        if (r < 0) {
                sd_bus_message_unref(m);
                return internal_error_unreachable(&internal_supervisor, r, error);
        }
        log_info("Mounting a view of '%s' (%s).", name, p->chain_ids[n - 1]);
        return 1;
}

int method_mount_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        MountImageArgs a = {};
        int r;

        r = sd_bus_message_read(m, "sht", &a.reference, &a.fd, &a.flags);
        if (r < 0)
                return r;
        const char *details[] = { "reference", broker_detail(a.reference), NULL };
        return broker_authorize(m, details, mount_image_authorized, userdata, &a, sizeof(a), NULL, error);
}

typedef struct UnmountImageArgs {
        int fd;
        uint64_t flags;
} UnmountImageArgs;

static int unmount_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        UnmountImageArgs *a = args;
        int r;

        r = bus_check_flags(a->flags, 0, error);
        if (r < 0)
                return r;
        r = check_dir_fd(a->fd, error);
        if (r < 0)
                return r;
        /* The supervisor refuses anything that is not the root of one of its views of this store. */
        r = supervisor_call(manager, NULL, 0, on_mount_reply, sd_bus_message_ref(m), "UnmountImage", "ht",
                            a->fd, UINT64_C(0));
        if (r < 0) {
                sd_bus_message_unref(m);
                return internal_error_unreachable(&internal_supervisor, r, error);
        }
        return 1;
}

int method_unmount_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        UnmountImageArgs a = {};
        int r;

        r = sd_bus_message_read(m, "ht", &a.fd, &a.flags);
        if (r < 0)
                return r;
        return broker_authorize(m, NULL, unmount_image_authorized, userdata, &a, sizeof(a), NULL, error);
}
