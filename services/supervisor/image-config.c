/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>

#include "berth-limits.h"
#include "digest.h"
#include "fs-util.h"
#include "image-config.h"
#include "json-util.h"

void image_info_done(ImageInfo *i) {
        oci_image_config_free(i->config);
        g_strfreev(i->chain_hexes);
        *i = (ImageInfo){};
}

int image_info_load(int content_fd, int snapshots_fd, const char *digest, ImageInfo *ret, char **ret_error) {
        _cleanup_(oci_image_config_freep) OciImageConfig *config = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        g_autofree char *rel = NULL;
        char actual[DIGEST_STRING_MAX];
        char **chain = NULL;
        Platform here = {};
        size_t size;
        int r;

        if (!digest_is_valid(digest) || strncmp(digest, "sha256:", 7) != 0)
                return json_set_error(ret_error, EINVAL, "invalid image config digest");
        rel = g_strdup_printf("blobs/sha256/%s", digest_hex(digest));
        fd = openat(content_fd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return json_set_error(ret_error, errno == ENOENT ? ENOENT : errno,
                                      "image config %s is not in the content store", digest);
        r = read_regular_file_fd(fd, CONFIG_SIZE_MAX, &data, &size);
        if (r < 0)
                return json_set_error(ret_error, r == -ENOMEM ? ENOMEM : EBADMSG,
                                      "cannot read image config %s: %s", digest, strerror(-r));
        /* SECURITY: the fetcher (unprivileged) wrote this file; only its hash makes it the config the
         * broker named. */
        r = digest_buffer(DIGEST_SHA256, data, size, actual);
        if (r < 0)
                return r;
        if (!digest_equal(actual, digest))
                return json_set_error(ret_error, EBADMSG, "image config %s does not match its digest",
                                      digest);
        r = oci_image_config_parse(data, size, &config, ret_error);
        if (r < 0)
                return r;

        r = platform_default(&here);
        if (r < 0)
                return r;
        if (!config->platform.os || !platform_matches(&here, &config->platform)) {
                g_autofree char *want = platform_to_string(&here);
                g_autofree char *have = config->platform.os ? platform_to_string(&config->platform) : NULL;
                platform_done(&here);
                return json_set_error(ret_error, EMEDIUMTYPE, "the image is for %s, this machine is %s",
                                      have ?: "an unknown platform", want ?: "?");
        }
        platform_done(&here);

        if (config->n_diff_ids == 0)
                return json_set_error(ret_error, EBADMSG, "the image has no layers");
        r = oci_chain_ids(config->diff_ids, config->n_diff_ids, &chain);
        if (r < 0)
                return json_set_error(ret_error, r, "cannot derive the chain ids");
        /* Top layer first, as overlayfs wants its lower directories. */
        ret->chain_hexes = g_new0(char *, config->n_diff_ids + 1);
        for (size_t i = 0; i < config->n_diff_ids; i++) {
                const char *hex = digest_hex(chain[config->n_diff_ids - 1 - i]);
                g_autofree char *rec = g_strdup_printf("%s/snapshot.json", hex);
                struct stat st;

                ret->chain_hexes[i] = g_strdup(hex);
                if (r >= 0 && fstatat(snapshots_fd, rec, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        r = json_set_error(ret_error, ENOENT,
                                           "layer %zu of the image (snapshot sha256:%s) is not unpacked",
                                           config->n_diff_ids - 1 - i, hex);
        }
        for (size_t i = 0; i < config->n_diff_ids; i++)
                free(chain[i]);
        free(chain);
        if (r < 0) {
                g_strfreev(ret->chain_hexes);
                ret->chain_hexes = NULL;
                return r;
        }
        ret->n_layers = config->n_diff_ids;
        ret->config = TAKE_PTR(config);
        return 0;
}
