/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>

#include "berth-limits.h"
#include "broker.h"
#include "bus-names.h"
#include "bus-error.h"
#include "bus-util.h"
#include "digest.h"
#include "fetcher-client.h"
#include "image-store.h"
#include "log.h"
#include "pull.h"
#include "transfer.h"

/* ListContent: the fetcher owns the blobs, the broker knows which images reference them. (Removing them
 * is garbage collection: broker-gc.c.) */

/* Listing walks the whole store: more than a quick call. */
#define CONTENT_CALL_TIMEOUT_USEC (BUS_INTERNAL_TIMEOUT_USEC * 4)

/* ---- ListContent ----------------------------------------------------------------------------------- */

static int on_list_blobs_for_list(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(broker_request_freep) BrokerRequest *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GArray) blobs = g_array_new(false, false, sizeof(FetcherBlob));
        _cleanup_free_ Image **images = NULL;
        size_t n_images = 0;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                (void) bus_reply_internal_error(c->message, sd_bus_message_get_error(m),
                                                "Listing the content store");
                return 0;
        }
        r = fetcher_read_blob_list(m, blobs);
        if (r >= 0)
                r = image_store_list(c->manager->images, &images, &n_images);
        if (r >= 0)
                r = sd_bus_message_new_method_return(c->message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sttas)");
        for (guint i = 0; r >= 0 && i < blobs->len; i++) {
                FetcherBlob *b = &g_array_index(blobs, FetcherBlob, i);

                r = sd_bus_message_open_container(reply, 'r', "sttas");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "stt", b->digest, b->size, b->mtime);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "s");
                for (size_t k = 0; r >= 0 && k < n_images; k++)
                        if (image_references_blob(images[k], b->digest))
                                r = sd_bus_message_append(reply, "s", images[k]->name);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        broker_send_built_reply(c->message, reply, r, "list content");
        return 0;
}

static int list_content_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        _cleanup_(broker_request_freep) BrokerRequest *c = broker_request_new(manager, m);
        int r;

        if (!c)
                return -ENOMEM;
        r = fetcher_call(c->manager, NULL, CONTENT_CALL_TIMEOUT_USEC, on_list_blobs_for_list, c, "ListBlobs",
                         NULL);
        if (r < 0)
                return internal_error_unreachable(&internal_fetcher, r, error);
        TAKE_PTR(c); /* the callback frees it */
        return 1;
}

int method_list_content(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, list_content_authorized, userdata, NULL, 0, NULL, error);
}
