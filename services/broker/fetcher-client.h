/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "internal-call.h"

/* Calls to the berth fetcher (org.berth.Fetcher1), asynchronous on the broker's loop; internal-call.h
 * says how slots, timeouts and errors work. For calls with arrays or fds: build with fetcher_new_call()
 * and sd_bus_message_append*(), send with internal_call_send(). */
int fetcher_call(Manager *m, sd_bus_slot **ret_slot, uint64_t timeout_usec, sd_bus_message_handler_t cb,
                 void *userdata, const char *member, const char *types, ...);
int fetcher_new_call(Manager *m, sd_bus_message **ret, const char *member);

/* One entry of ListBlobs' a(stt); digest borrowed from the reply. */
typedef struct FetcherBlob {
        const char *digest;
        uint64_t size, mtime;
} FetcherBlob;

/* Reads ListBlobs' reply into blobs (GArray of FetcherBlob), checking every entry as if hostile: a
 * malformed entry fails the whole list (-EBADMSG). */
int fetcher_read_blob_list(sd_bus_message *reply, GArray *blobs);
