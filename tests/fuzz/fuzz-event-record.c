/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An event ring record's payload as read back from disk (lib/event-record.h): decode never crashes, and
 * what it accepts encodes back to the same bytes. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event-record.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(berth_event_freep) BerthEvent *e = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;

        if (berth_event_decode(data, size, &e) < 0)
                return 0;
        buf = malloc(size);
        if (!buf)
                return 0;
        if (berth_event_encode(e, buf, size, &len) < 0 || len != size || memcmp(buf, data, size) != 0)
                abort();
        return 0;
}
