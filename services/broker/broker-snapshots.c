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
 * removal and garbage collection are decided here from all three, and done by the unpacker. Image views
 * (MountImage/UnmountImage) are made by the supervisor onto a directory fd the caller opened. */

/* Removal deletes whole trees at the unpacker: more than a quick call. */
#define SNAPSHOT_REMOVE_TIMEOUT_USEC (BUS_INTERNAL_TIMEOUT_USEC * 4)

typedef struct Snap {
        char *chain_id, *parent, *diff_id;
        uint64_t size;
        uint32_t entries;
} Snap;

typedef struct SnapCall SnapCall;
typedef void (*SnapContinuation)(SnapCall *c);

struct SnapCall {
        Manager *manager;
        sd_bus_message *request; /* NULL for garbage collection started by PruneContent */
        GHashTable *snaps;       /* chain id → Snap* (owned) */
        GHashTable *mounted;     /* chain id → NULL */
        bool need_mounted;       /* removal: the supervisor must answer */
        SnapContinuation next;
        char **ids; /* RemoveSnapshots' arguments, SnapshotInfo's argument */
        uint64_t freed;
        unsigned removed;
        GPtrArray *doomed; /* gc: chain ids to remove, children before parents */
        guint doomed_next;
        BrokerGcDone gc_done;
        void *gc_userdata;
};

static void snap_free(gpointer p) {
        Snap *s = p;

        free(s->chain_id);
        free(s->parent);
        free(s->diff_id);
        free(s);
}

static void snap_call_free(SnapCall *c) {
        if (!c)
                return;
        sd_bus_message_unref(c->request);
        if (c->snaps)
                g_hash_table_destroy(c->snaps);
        if (c->mounted)
                g_hash_table_destroy(c->mounted);
        g_strfreev(c->ids);
        if (c->doomed)
                g_ptr_array_unref(c->doomed);
        free(c);
}

static SnapCall *snap_call_new(Manager *m, sd_bus_message *request) {
        SnapCall *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->manager = m;
        c->request = sd_bus_message_ref(request);
        c->snaps = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, snap_free);
        c->mounted = g_hash_table_new_full(g_str_hash, g_str_equal, free, NULL);
        return c;
}

/* Ends a call with an error: to the D-Bus caller, or to the garbage collector's continuation. */
static void snap_call_fail(SnapCall *c, const char *name, const char *format, ...) _printf_(3, 4);
static void snap_call_fail(SnapCall *c, const char *name, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (c->request)
                (void) sd_bus_reply_method_errorf(c->request, name, "%s", msg ?: "failed");
        else
                c->gc_done(c->gc_userdata, -EIO, c->freed, c->removed, msg ?: "failed");
        snap_call_free(c);
}

static void snap_call_fail_bus(SnapCall *c, const sd_bus_error *e, const char *what) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;

        (void) bus_error_set_internal(&error, e, what);
        snap_call_fail(c, error.name, "%s", error.message);
}

static void snap_call_fail_unreachable(SnapCall *c, const InternalService *s, int r) {
        snap_call_fail(c, BERTH_ERROR_SERVICE_UNAVAILABLE, "Cannot reach the berth %s: %s", s->name,
                       strerror(-r));
}

/* ---- who uses what ---------------------------------------------------------------------------------- */

static bool image_uses_chain(const Image *i, const char *chain_id) {
        for (size_t k = 0; k < i->n_platforms; k++)
                STRV_FOREACH(c, i->platforms[k].chain_ids)
        if (streq(*c, chain_id))
                return true;
        return false;
}

/* Names of the images whose chains contain chain_id (borrowed strings, sorted by image name). */
static GPtrArray *images_using(Manager *m, const char *chain_id) {
        _cleanup_free_ Image **l = NULL;
        GPtrArray *names = g_ptr_array_new();
        size_t n = 0;

        if (image_store_list(m->images, &l, &n) < 0)
                return names;
        for (size_t i = 0; i < n; i++)
                if (image_uses_chain(l[i], chain_id))
                        g_ptr_array_add(names, l[i]->name);
        return names;
}

/* Adds chain_id and all its ancestors (as the unpacker recorded them) to keep. */
static void keep_with_ancestors(SnapCall *c, GHashTable *keep, const char *chain_id) {
        unsigned depth = 0;

        while (!isempty(chain_id) && depth++ <= LAYERS_MAX + 1) {
                Snap *s;

                if (!g_hash_table_add(keep, (gpointer) chain_id))
                        return; /* seen: its ancestors are in already */
                s = g_hash_table_lookup(c->snaps, chain_id);
                if (!s)
                        return;
                chain_id = s->parent;
        }
}

/* Everything that must stay: chains of images, of mounted views and of running pulls, with ancestors.
 * Keys are borrowed from c->snaps / images / c->mounted; valid within this turn of the event loop. */
static GHashTable *compute_keep(SnapCall *c) {
        GHashTable *keep = g_hash_table_new(g_str_hash, g_str_equal);
        _cleanup_free_ Image **l = NULL;
        GHashTableIter iter;
        gpointer key;
        size_t n = 0;

        if (image_store_list(c->manager->images, &l, &n) >= 0)
                for (size_t i = 0; i < n; i++)
                        for (size_t k = 0; k < l[i]->n_platforms; k++)
                                STRV_FOREACH(ch, l[i]->platforms[k].chain_ids)
        keep_with_ancestors(c, keep, *ch);
        g_hash_table_iter_init(&iter, c->mounted);
        while (g_hash_table_iter_next(&iter, &key, NULL))
                keep_with_ancestors(c, keep, key);
        g_hash_table_iter_init(&iter, c->snaps);
        while (g_hash_table_iter_next(&iter, &key, NULL))
                if (manager_chain_in_running_transfer(c->manager, key))
                        keep_with_ancestors(c, keep, key);
        return keep;
}

static unsigned snap_depth(SnapCall *c, const Snap *s) {
        unsigned d = 0;

        while (s && !isempty(s->parent) && d <= LAYERS_MAX + 1) {
                s = g_hash_table_lookup(c->snaps, s->parent);
                d++;
        }
        return d;
}

/* ---- collecting: the unpacker's snapshots, then the supervisor's mounted views ------------------------ */

static int on_list_mounted(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SnapCall *c = userdata;
        char **l = NULL;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                if (c->need_mounted) {
                        /* SECURITY/consistency: without knowing the mounted views, remove nothing. */
                        snap_call_fail_bus(c, sd_bus_message_get_error(m),
                                           "Listing the mounted image views");
                        return 0;
                }
                c->next(c);
                return 0;
        }
        r = sd_bus_message_read_strv(m, &l);
        if (r < 0) {
                snap_call_fail(c, BERTH_ERROR_SERVICE_UNAVAILABLE, "Malformed reply from the supervisor.");
                return 0;
        }
        /* An empty array reads as NULL. */
        for (char **i = l; i && *i; i++)
                if (digest_is_valid(*i))
                        (void) g_hash_table_add(c->mounted, strdup(*i));
        g_strfreev(l);
        c->next(c);
        return 0;
}

static int on_list_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        g_autoptr(GArray) list = g_array_new(false, false, sizeof(UnpackerSnapshot));
        SnapCall *c = userdata;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                snap_call_fail_bus(c, sd_bus_message_get_error(m), "Listing snapshots");
                return 0;
        }
        r = unpacker_read_snapshot_list(m, list);
        for (guint i = 0; r >= 0 && i < list->len; i++) {
                const UnpackerSnapshot *u = &g_array_index(list, UnpackerSnapshot, i);
                Snap *s = calloc(1, sizeof(*s));

                if (!s) {
                        r = -ENOMEM;
                        break;
                }
                *s = (Snap){ .chain_id = strdup(u->chain_id),
                             .parent = strdup(u->parent),
                             .diff_id = strdup(u->diff_id),
                             .size = u->size,
                             .entries = u->entries };
                if (!s->chain_id || !s->parent || !s->diff_id) {
                        snap_free(s);
                        r = -ENOMEM;
                        break;
                }
                g_hash_table_replace(c->snaps, s->chain_id, s);
        }
        if (r < 0) {
                snap_call_fail(c, BERTH_ERROR_SERVICE_UNAVAILABLE,
                               "Malformed snapshot list from the unpacker: %s", strerror(-r));
                return 0;
        }
        r = supervisor_call(c->manager, NULL, 0, on_list_mounted, c, "ListMountedSnapshots", NULL);
        if (r < 0) {
                if (c->need_mounted) {
                        snap_call_fail_unreachable(c, &internal_supervisor, r);
                        return 0;
                }
                c->next(c);
        }
        return 0;
}

/* Starts collecting; on failure to send, c is freed and an error set. */
static int snap_collect(SnapCall *c, SnapContinuation next, sd_bus_error *error) {
        int r;

        c->next = next;
        r = unpacker_call(c->manager, NULL, 0, on_list_snapshots, c, "ListSnapshots", NULL);
        if (r < 0) {
                snap_call_free(c);
                return internal_error_unreachable(&internal_unpacker, r, error);
        }
        return 1;
}

static int compare_snaps(const void *a, const void *b) {
        const Snap *x = *(Snap *const *) a, *y = *(Snap *const *) b;
        return strcmp(x->chain_id, y->chain_id);
}

static Snap **sorted_snaps(SnapCall *c, size_t *ret_n) {
        GHashTableIter iter;
        gpointer value;
        Snap **l;
        size_t n = 0;

        l = calloc(g_hash_table_size(c->snaps) + 1, sizeof(Snap *));
        if (!l)
                return NULL;
        g_hash_table_iter_init(&iter, c->snaps);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                l[n++] = value;
        qsort(l, n, sizeof(Snap *), compare_snaps);
        *ret_n = n;
        return l;
}

/* ---- ListSnapshots ---------------------------------------------------------------------------------- */

static void list_snapshots_reply(SnapCall *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Snap **l = NULL;
        size_t n = 0;
        int r;

        l = sorted_snaps(c, &n);
        r = l ? sd_bus_message_new_method_return(c->request, &reply) : -ENOMEM;
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssstuas)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                g_autoptr(GPtrArray) users = images_using(c->manager, l[i]->chain_id);

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
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to answer ListSnapshots: %m");
                (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_IO, "Failed to list snapshots: %s",
                                                  strerror(-r));
        }
        snap_call_free(c);
}

static int list_snapshots_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        SnapCall *c = snap_call_new(userdata, m);

        if (!c)
                return -ENOMEM;
        return snap_collect(c, list_snapshots_reply, error);
}

int method_list_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, list_snapshots_authorized, userdata, error);
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
        users = images_using(c->manager, id);
        l = sorted_snaps(c, &n);
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

static int snapshot_info_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *id;
        SnapCall *c;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        r = validate_chain_id(id, error);
        if (r < 0)
                return r;
        c = snap_call_new(userdata, m);
        if (!c)
                return -ENOMEM;
        c->ids = g_new0(char *, 2);
        c->ids[0] = g_strdup(id);
        return snap_collect(c, snapshot_info_reply, error);
}

int method_snapshot_info(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, snapshot_info_authorized, userdata, error);
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
                users = images_using(c->manager, *id);
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

static int remove_snapshots_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        g_auto(GStrv) ids = NULL;
        uint64_t flags;
        SnapCall *c;
        size_t n;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &ids);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        n = ids ? g_strv_length(ids) : 0;
        if (n == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "No snapshot given.");
        if (n > BUS_ARRAY_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "At most %u snapshots per call.",
                                         BUS_ARRAY_MAX);
        for (size_t i = 0; i < n; i++) {
                r = validate_chain_id(ids[i], error);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (streq(ids[k], ids[i]))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Duplicate snapshot '%s'.", ids[i]);
        }
        c = snap_call_new(userdata, m);
        if (!c)
                return -ENOMEM;
        c->need_mounted = true;
        c->ids = g_strdupv(ids);
        return snap_collect(c, remove_snapshots_decide, error);
}

int method_remove_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, remove_snapshots_authorized, userdata, error);
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
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to answer Usage: %m");
                (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_IO, "Failed to compute usage: %s",
                                                  strerror(-r));
        }
        snap_call_free(c);
}

static int usage_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        const char *reference;
        Image *i = NULL;
        SnapCall *c;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &reference);
        if (r < 0)
                return r;
        if (!isempty(reference)) {
                r = broker_lookup_image(manager, reference, &i, error);
                if (r < 0)
                        return r;
        }
        c = snap_call_new(manager, m);
        if (!c)
                return -ENOMEM;
        if (i) {
                c->ids = g_new0(char *, 2);
                c->ids[0] = g_strdup(i->name);
        }
        return snap_collect(c, usage_reply, error);
}

int method_usage(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, usage_authorized, userdata, error);
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

static int mount_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        const ImagePlatform *p;
        const char *reference, *name;
        uint64_t flags;
        size_t n;
        Image *i;
        int fd, r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sht", &reference, &fd, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = check_dir_fd(fd, error);
        if (r < 0)
                return r;
        r = broker_lookup_image(manager, reference, &i, error);
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
                            p->chain_ids[n - 1], fd, UINT64_C(0));
        if (r < 0) {
                sd_bus_message_unref(m);
                return internal_error_unreachable(&internal_supervisor, r, error);
        }
        log_info("Mounting a view of '%s' (%s).", name, p->chain_ids[n - 1]);
        return 1;
}

int method_mount_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *reference;
        int r;

        r = sd_bus_message_read(m, "s", &reference);
        if (r < 0)
                return r;
        const char *details[] = { "reference", strlen(reference) <= BUS_STRING_MAX ? reference : "", NULL };
        return broker_authorize(m, details, mount_image_authorized, userdata, error);
}

static int unmount_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        uint64_t flags;
        int fd, r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ht", &fd, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = check_dir_fd(fd, error);
        if (r < 0)
                return r;
        /* The supervisor refuses anything that is not the root of one of its views of this store. */
        r = supervisor_call(manager, NULL, 0, on_mount_reply, sd_bus_message_ref(m), "UnmountImage", "ht",
                            fd, UINT64_C(0));
        if (r < 0) {
                sd_bus_message_unref(m);
                return internal_error_unreachable(&internal_supervisor, r, error);
        }
        return 1;
}

int method_unmount_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, unmount_image_authorized, userdata, error);
}

/* ---- garbage collection (PruneContent) -------------------------------------------------------------- */

static void gc_next_batch(SnapCall *c);

static int on_clean_work(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SnapCall *c = userdata;
        uint64_t freed = 0;

        if (sd_bus_message_is_method_error(m, NULL))
                log_warning("CleanWork failed: %s", strna(sd_bus_message_get_error(m)->message));
        else if (sd_bus_message_read(m, "t", &freed) >= 0)
                c->freed += freed;
        log_info("Snapshot gc: %u snapshot(s) removed, %" PRIu64 " bytes freed.", c->removed, c->freed);
        c->gc_done(c->gc_userdata, 0, c->freed, c->removed, NULL);
        snap_call_free(c);
        return 0;
}

static int on_gc_remove(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SnapCall *c = userdata;
        uint64_t freed = 0;

        if (sd_bus_message_is_method_error(m, NULL)) {
                snap_call_fail_bus(c, sd_bus_message_get_error(m), "Removing snapshots");
                return 0;
        }
        if (sd_bus_message_read(m, "t", &freed) >= 0)
                c->freed += freed;
        gc_next_batch(c);
        return 0;
}

static void gc_next_batch(SnapCall *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        g_autoptr(GHashTable) keep = NULL;
        unsigned in_batch = 0;
        int r;

        if (c->doomed_next >= c->doomed->len) {
                r = unpacker_call(c->manager, NULL, 0, on_clean_work, c, "CleanWork", NULL);
                if (r < 0)
                        snap_call_fail_unreachable(c, &internal_unpacker, r);
                return;
        }
        /* Decided again for every batch, within this turn of the loop: a pull that started since needs
         * its chains (its ListSnapshots reaches the unpacker after this RemoveSnapshots, so it sees the
         * removal and unpacks again what it needs). */
        keep = compute_keep(c);
        r = unpacker_new_call(c->manager, &call, "RemoveSnapshots");
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "s");
        while (r >= 0 && c->doomed_next < c->doomed->len && in_batch < BUS_ARRAY_MAX) {
                const char *id = c->doomed->pdata[c->doomed_next++];

                if (g_hash_table_contains(keep, id))
                        continue;
                r = sd_bus_message_append(call, "s", id);
                in_batch++;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r >= 0 && in_batch == 0) {
                gc_next_batch(c);
                return;
        }
        if (r >= 0)
                r = internal_call_send(c->manager, call, NULL, SNAPSHOT_REMOVE_TIMEOUT_USEC, on_gc_remove,
                                       c);
        if (r < 0) {
                snap_call_fail_unreachable(c, &internal_unpacker, r);
                return;
        }
        c->removed += in_batch;
}

static int compare_depth_desc(gconstpointer a, gconstpointer b, gpointer userdata) {
        SnapCall *c = userdata;
        const Snap *x = g_hash_table_lookup(c->snaps, *(const char *const *) a);
        const Snap *y = g_hash_table_lookup(c->snaps, *(const char *const *) b);
        unsigned dx = snap_depth(c, x), dy = snap_depth(c, y);

        return dx > dy ? -1 : dx < dy;
}

static void gc_decide(SnapCall *c) {
        g_autoptr(GHashTable) keep = compute_keep(c);
        GHashTableIter iter;
        gpointer key;

        c->doomed = g_ptr_array_new();
        g_hash_table_iter_init(&iter, c->snaps);
        while (g_hash_table_iter_next(&iter, &key, NULL))
                if (!g_hash_table_contains(keep, key))
                        g_ptr_array_add(c->doomed, key);
        /* Children before parents, so that every batch the unpacker sees leaves no orphan behind. */
        g_ptr_array_sort_with_data(c->doomed, compare_depth_desc, c);
        gc_next_batch(c);
}

int broker_snapshot_gc(Manager *m, BrokerGcDone done, void *userdata) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        SnapCall *c = snap_call_new(m, NULL);
        int r;

        if (!c)
                return -ENOMEM;
        c->need_mounted = true;
        c->gc_done = done;
        c->gc_userdata = userdata;
        r = snap_collect(c, gc_decide, &error);
        return r < 0 ? r : 0;
}
