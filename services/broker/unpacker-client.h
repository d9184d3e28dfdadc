/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "internal-call.h"

/* Calls to the berth unpacker (org.berth.Unpacker1), asynchronous on the broker's loop; internal-call.h
 * says how slots, timeouts and errors work. For calls with arrays or fds: build with unpacker_new_call()
 * and sd_bus_message_append*(), send with internal_call_send(). */
int unpacker_call(Manager *m, sd_bus_slot **ret_slot, uint64_t timeout_usec, sd_bus_message_handler_t cb,
                  void *userdata, const char *member, const char *types, ...);
int unpacker_new_call(Manager *m, sd_bus_message **ret, const char *member);

/* One entry of ListSnapshots' a(ssstu); strings borrowed from the reply. */
typedef struct UnpackerSnapshot {
        const char *chain_id, *parent, *diff_id;
        uint64_t size;
        uint32_t entries;
} UnpackerSnapshot;

/* Reads ListSnapshots' reply into snaps (GArray of UnpackerSnapshot), checking every entry as if
 * hostile (the unpacker's word goes to users): a malformed entry fails the whole list (-EBADMSG). */
int unpacker_read_snapshot_list(sd_bus_message *reply, GArray *snaps);
