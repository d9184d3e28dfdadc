/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdio.h>

#include "berth-limits.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "digest.h"
#include "log.h"
#include "snapshot-census.h"
#include "supervisor-client.h"
#include "transfer.h"
#include "unpacker-client.h"

static void snap_free(gpointer p) {
        Snap *s = p;

        free(s->chain_id);
        free(s->parent);
        free(s->diff_id);
        free(s);
}

void snap_call_free(SnapCall *c) {
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

SnapCall *snap_call_new(Manager *m, sd_bus_message *request) {
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
SnapCall *snap_call_new_one(Manager *m, sd_bus_message *request, const char *id) {
        SnapCall *c = snap_call_new(m, request);

        if (c && id) {
                c->ids = g_new0(char *, 2);
                c->ids[0] = g_strdup(id);
        }
        return c;
}

void snap_call_fail(SnapCall *c, const char *name, const char *format, ...) {
        _cleanup_free_ char *msg = format_varargs(format);
        if (c->request)
                (void) sd_bus_reply_method_errorf(c->request, name, "%s", msg ?: "failed");
        else
                c->gc_done(c->gc_userdata, -EIO, c->freed, c->removed, msg ?: "failed");
        snap_call_free(c);
}

void snap_call_fail_bus(SnapCall *c, const sd_bus_error *e, const char *what) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;

        (void) bus_error_set_internal(&error, e, what);
        snap_call_fail(c, error.name, "%s", error.message);
}

void snap_call_fail_unreachable(SnapCall *c, const InternalService *s, int r) {
        snap_call_fail(c, BERTH_ERROR_SERVICE_UNAVAILABLE, "Cannot reach the berth %s: %s", s->name,
                       strerror(-r));
}

/* ---- who uses what ---------------------------------------------------------------------------------- */

bool image_uses_chain(const Image *i, const char *chain_id) {
        for (size_t k = 0; k < i->n_platforms; k++)
                STRV_FOREACH(c, i->platforms[k].chain_ids)
        if (streq(*c, chain_id))
                return true;
        return false;
}

/* Names of the images whose chains contain chain_id (borrowed strings, sorted by image name). */
GPtrArray *snap_images_using(Manager *m, const char *chain_id) {
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
GHashTable *snap_compute_keep(SnapCall *c) {
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

unsigned snap_depth(SnapCall *c, const Snap *s) {
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
int snap_collect(SnapCall *c, SnapContinuation next, sd_bus_error *error) {
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

Snap **snap_sorted(SnapCall *c, size_t *ret_n) {
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
