/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One event (docs/api.md, "Events") as the broker and the supervisor store it in their event rings
 * (event-ring.h): the payload is type, action, id, name, owner (decimal) and the attribute keys and values,
 * each NUL-terminated. berth_event_decode() reads a payload back as hostile input: a fixed number of
 * fields, each bounded and valid UTF-8, the type and action from a fixed alphabet. */

#define BERTH_EVENT_ATTRS_MAX 8U
#define BERTH_EVENT_FIELD_MAX 4096U /* an image reference (REFERENCE_LENGTH_MAX) fits */
#define BERTH_EVENT_ACTION_MAX 32U

typedef struct BerthEvent {
        uint64_t time_usec;
        char *type, *action, *id, *name;
        uint32_t owner;
        char **attrs; /* key, value, …, NULL; at most BERTH_EVENT_ATTRS_MAX pairs */
} BerthEvent;

BerthEvent *berth_event_free(BerthEvent *e);
static inline void berth_event_freep(BerthEvent **e) {
        berth_event_free(*e);
}

/* A copy of the given fields (attrs: NULL or key, value, …, NULL; pairs beyond the maximum are dropped). */
int berth_event_new(uint64_t time_usec, const char *type, const char *action, const char *id,
                    const char *name, uint32_t owner, const char *const *attrs, BerthEvent **ret);

/* -EMSGSIZE when it does not fit in size bytes, -EINVAL when a field is not one decode would accept. */
int berth_event_encode(const BerthEvent *e, uint8_t *buf, size_t size, size_t *ret_len);
/* time_usec is the caller's to set (the ring keeps it beside the payload). -EBADMSG for anything else
 * than what berth_event_encode() writes. */
int berth_event_decode(const uint8_t *buf, size_t len, BerthEvent **ret);

/* "container" or "image"; an action of lowercase letters and '_'; a field of valid UTF-8 within the
 * limit. */
bool berth_event_type_valid(const char *type);
bool berth_event_action_valid(const char *action);
bool berth_event_field_valid(const char *s);
