/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "berth-limits.h"
#include "log.h"
#include "unpack-config.h"

static int get_u64(GKeyFile *kf, const char *path, const char *key, uint64_t min, uint64_t max,
                   uint64_t *v) {
        g_autoptr(GError) error = NULL;
        g_autofree char *s = NULL;
        guint64 n;

        s = g_key_file_get_value(kf, "unpacker", key, NULL);
        if (!s)
                return 0;
        if (!g_ascii_string_to_unsigned(g_strstrip(s), 10, min, max, &n, &error))
                return log_error_errno(EINVAL, "%s: [unpacker] %s: %s", path, key, error->message);
        *v = n;
        return 0;
}

int unpacker_settings_load(const char *config_dir, UnpackerSettings *ret) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *path = g_build_filename(config_dir, "unpacker.conf", NULL);
        uint64_t parallel = UNPACK_PARALLEL_DEFAULT;
        int r;

        *ret = (UnpackerSettings){
                .limits = { LAYER_UNCOMPRESSED_MAX_DEFAULT, LAYER_ENTRIES_MAX_DEFAULT },
                .parallel = UNPACK_PARALLEL_DEFAULT,
        };

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error)) {
                if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return 0;
                return log_error_errno(EINVAL, "Failed to read '%s': %s", path, error->message);
        }

        r = get_u64(kf, path, "max-uncompressed-bytes", 1, UINT64_MAX, &ret->limits.max_uncompressed_bytes);
        if (r < 0)
                return r;
        r = get_u64(kf, path, "max-entries", 1, UINT32_MAX, &ret->limits.max_entries);
        if (r < 0)
                return r;
        r = get_u64(kf, path, "max-parallel", 1, UNPACK_PARALLEL_MAX, &parallel);
        if (r < 0)
                return r;
        ret->parallel = (unsigned) parallel;
        return 0;
}
