/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "oci-ref.h"
#include "oci-types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL, *again = NULL;
        _cleanup_free_ char *s = NULL, *error = NULL, *printed = NULL, *name = NULL, *perror = NULL;
        Platform p = {};
        int r;

        if (size > 8192)
                return 0;

        s = strndup((const char *) data, size);
        if (!s)
                return 0;

        r = image_reference_parse(s, &ref, &error);
        if (r < 0) {
                /* Every failure says why. */
                if (!error)
                        abort();
        } else {
                if (error || !ref->registry || !ref->repository || (!ref->tag && !ref->digest))
                        abort();

                printed = image_reference_to_string(ref);
                name = image_reference_name(ref);
                if (!printed || !name || !image_reference_api_host(ref))
                        abort();

                /* Normalisation is idempotent: the printed form parses back to the same reference. */
                if (image_reference_parse(printed, &again, NULL) < 0)
                        abort();
                if (strcmp(again->registry, ref->registry) != 0 ||
                    strcmp(again->repository, ref->repository) != 0 || !streq_ptr(again->tag, ref->tag) ||
                    !streq_ptr(again->digest, ref->digest))
                        abort();
        }

        /* Platform strings are user input of the same kind. */
        if (platform_parse(s, &p, &perror) >= 0) {
                _cleanup_free_ char *ps = platform_to_string(&p);
                if (!ps || !platform_matches(&p, &p))
                        abort();
        } else if (!perror)
                abort();
        platform_done(&p);

        return 0;
}
