/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <sys/stat.h>

#include "berth-limits.h"
#include "digest.h"
#include "fs-util.h"
#include "image-verify.h"
#include "json-util.h"

/* A pull and an import verify what the fetcher hands over the same way: the same re-hash, the same
 * checks, so an archive can smuggle in nothing a registry could not. */

/* Reads a small blob from the fd the fetcher passed (positional reads: the file description may be
 * shared), checks it is a regular file of the announced size, and verifies its digest ourselves. */
int image_read_verified(int fd, const char *digest, uint64_t size, uint64_t max, char **ret,
                        char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        char actual[DIGEST_STRING_MAX];
        DigestAlgorithm alg;
        struct stat st;
        ssize_t got;
        int r;

        if (digest_validate(digest, &alg) < 0)
                return json_set_error(ret_error, EBADMSG, "invalid digest '%.80s'", digest);
        if (size > max) {
                return json_set_error(ret_error, EFBIG,
                                      "'%s' is %" PRIu64 " bytes, more than the limit of %" PRIu64, digest,
                                      size, max);
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size != size) {
                return json_set_error(ret_error, EBADMSG,
                                      "the fetcher returned '%s' with %" PRIu64 " bytes, expected %" PRIu64,
                                      digest, (uint64_t) st.st_size, size);
        }
        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        got = pread_full(fd, buf, size, 0);
        if (got < 0)
                return (int) got;
        if ((uint64_t) got != size) {
                return json_set_error(ret_error, EBADMSG, "'%s' is shorter than its %" PRIu64 " bytes",
                                      digest, size);
        }
        buf[size] = 0;
        r = digest_buffer(alg, buf, size, actual);
        if (r < 0)
                return r;
        /* SECURITY: the broker never trusts the fetcher's word for what the bytes are. */
        if (!digest_equal(actual, digest)) {
                return json_set_error(ret_error, EBADMSG,
                                      "digest mismatch: expected '%s', content hashes to '%s'", digest,
                                      actual);
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

int image_check_manifest(const OciManifest *mf, const char *digest, char **ret_error) {
        if (mf->n_layers > LAYERS_MAX)
                return json_set_error(ret_error, E2BIG,
                                      "Manifest '%s' has %zu layers, more than the limit of %u", digest,
                                      mf->n_layers, LAYERS_MAX);
        if (media_type_kind(mf->config.media_type) != MEDIA_KIND_CONFIG)
                return json_set_error(ret_error, EMEDIUMTYPE,
                                      "Unsupported config media type '%s' in '%s' (not a container image?)",
                                      mf->config.media_type, digest);
        if (mf->config.size > CONFIG_SIZE_MAX)
                return json_set_error(ret_error, EFBIG,
                                      "Config '%s' is %" PRIu64 " bytes, more than the limit of %u",
                                      mf->config.digest, mf->config.size, CONFIG_SIZE_MAX);
        return 0;
}

int image_check_config(const OciManifest *mf, const char *digest, const OciImageConfig *c,
                       char **ret_error) {
        if (c->n_diff_ids != mf->n_layers)
                return json_set_error(
                        ret_error, EBADMSG,
                        "Image config '%s' lists %zu layer diff_ids but the manifest has %zu layers",
                        mf->config.digest, c->n_diff_ids, mf->n_layers);
        for (size_t l = 0; l < mf->n_layers; l++) {
                const Descriptor *d = &mf->layers[l];

                if (media_type_kind(d->media_type) != MEDIA_KIND_LAYER)
                        return json_set_error(ret_error, EMEDIUMTYPE,
                                              "Unsupported layer media type '%s' in '%s'", d->media_type,
                                              digest);
                if (d->size > BLOB_SIZE_MAX)
                        return json_set_error(ret_error, EFBIG,
                                              "Layer '%s' claims %" PRIu64 " bytes, more than the limit",
                                              d->digest, d->size);
        }
        return 0;
}
