/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <stdint.h>

#include "sender-uid-cache.h"

static GHashTable *cache; /* unique name (owned) → uid + 1 */
static sd_bus *cache_bus; /* not a reference: only compared, so a new connection starts afresh */

static bool cache_usable(sd_bus *bus, const char *unique_name) {
        /* Only unique names: a well-known name can change owners. */
        return bus && unique_name && unique_name[0] == ':';
}

bool sender_uid_cache_get(sd_bus *bus, const char *unique_name, uid_t *ret) {
        gpointer v;

        if (!cache || bus != cache_bus || !cache_usable(bus, unique_name))
                return false;
        v = g_hash_table_lookup(cache, unique_name);
        if (!v)
                return false;
        *ret = (uid_t) (GPOINTER_TO_SIZE(v) - 1);
        return true;
}

void sender_uid_cache_put(sd_bus *bus, const char *unique_name, uid_t uid) {
        if (!cache_usable(bus, unique_name))
                return;
        if (!cache)
                cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        if (bus != cache_bus || g_hash_table_size(cache) >= SENDER_UID_CACHE_MAX) {
                g_hash_table_remove_all(cache);
                cache_bus = bus;
        }
        g_hash_table_replace(cache, g_strdup(unique_name), GSIZE_TO_POINTER((gsize) uid + 1));
}
