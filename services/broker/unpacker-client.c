/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "digest.h"
#include "unpacker-client.h"

DEFINE_INTERNAL_CLIENT(unpacker, internal_unpacker)

int unpacker_read_snapshot_list(sd_bus_message *reply, GArray *snaps) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(ssstu)");
        if (r < 0)
                return r;
        for (;;) {
                UnpackerSnapshot s;

                r = sd_bus_message_read(reply, "(ssstu)", &s.chain_id, &s.parent, &s.diff_id, &s.size,
                                        &s.entries);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (!digest_is_valid(s.chain_id) || (!isempty(s.parent) && !digest_is_valid(s.parent)) ||
                    !digest_is_valid(s.diff_id))
                        return -EBADMSG;
                g_array_append_val(snaps, s);
        }
        return sd_bus_message_exit_container(reply);
}
