/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "digest.h"
#include "fetcher-client.h"

DEFINE_INTERNAL_CLIENT(fetcher, internal_fetcher)

int fetcher_read_blob_list(sd_bus_message *reply, GArray *blobs) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(stt)");
        if (r < 0)
                return r;
        for (;;) {
                FetcherBlob b;

                r = sd_bus_message_read(reply, "(stt)", &b.digest, &b.size, &b.mtime);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (!digest_is_valid(b.digest))
                        return -EBADMSG;
                g_array_append_val(blobs, b);
        }
        return sd_bus_message_exit_container(reply);
}
