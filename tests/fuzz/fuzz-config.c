/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <string.h>

#include "berth-limits.h"
#include "oci-types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(oci_image_config_freep) OciImageConfig *config = NULL;
        _cleanup_free_ char *error = NULL;
        char **chain = NULL;

        if (oci_image_config_parse((const char *) data, size, &config, &error) < 0) {
                if (!error || config)
                        abort();
                return 0;
        }

        if (!config->platform.os || !config->platform.architecture || config->n_diff_ids > LAYERS_MAX)
                abort();

        if (oci_chain_ids(config->diff_ids, config->n_diff_ids, &chain) < 0)
                abort();
        for (size_t i = 0; i < config->n_diff_ids; i++) {
                if (!digest_is_valid(chain[i]))
                        abort();
                free(chain[i]);
        }
        free(chain);

        return 0;
}
