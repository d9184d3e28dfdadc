/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Events as stored in the event rings (event-record.h). */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event-record.h"
#include "macro.h"

/* type, action, id, name, owner, then the attributes. */
#define FIXED_FIELDS 5U
#define FIELDS_MAX (FIXED_FIELDS + 2U * BERTH_EVENT_ATTRS_MAX)

BerthEvent *berth_event_free(BerthEvent *e) {
        if (!e)
                return NULL;
        free(e->type);
        free(e->action);
        free(e->id);
        free(e->name);
        strv_free(e->attrs);
        free(e);
        return NULL;
}

bool berth_event_type_valid(const char *type) {
        return type && (streq(type, "container") || streq(type, "image"));
}

bool berth_event_action_valid(const char *action) {
        size_t n = action ? strlen(action) : 0;

        if (n == 0 || n > BERTH_EVENT_ACTION_MAX)
                return false;
        for (const char *p = action; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
                        return false;
        return true;
}

bool berth_event_field_valid(const char *s) {
        return s && strlen(s) <= BERTH_EVENT_FIELD_MAX && g_utf8_validate(s, -1, NULL);
}

int berth_event_new(uint64_t time_usec, const char *type, const char *action, const char *id,
                    const char *name, uint32_t owner, const char *const *attrs, BerthEvent **ret) {
        BerthEvent *e;
        size_t n = 0;

        for (const char *const *a = attrs; a && a[0] && a[1] && n < BERTH_EVENT_ATTRS_MAX; a += 2)
                n++;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->time_usec = time_usec;
        e->owner = owner;
        e->type = strdup(type ?: "");
        e->action = strdup(action ?: "");
        e->id = strdup(id ?: "");
        e->name = strdup(name ?: "");
        e->attrs = calloc(2 * n + 1, sizeof(char *));
        for (size_t i = 0; e->attrs && i < 2 * n; i++)
                if (!(e->attrs[i] = strdup(attrs[i]))) {
                        e->attrs = strv_free(e->attrs);
                        break;
                }
        if (!e->type || !e->action || !e->id || !e->name || !e->attrs) {
                berth_event_free(e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

static int put(uint8_t *buf, size_t size, size_t *at, const char *s) {
        size_t n;

        if (!berth_event_field_valid(s))
                return -EINVAL;
        n = strlen(s) + 1;
        if (n > size - *at)
                return -EMSGSIZE;
        memcpy(buf + *at, s, n);
        *at += n;
        return 0;
}

int berth_event_encode(const BerthEvent *e, uint8_t *buf, size_t size, size_t *ret_len) {
        char owner[16];
        size_t at = 0;
        int r;

        if (!berth_event_type_valid(e->type) || !berth_event_action_valid(e->action))
                return -EINVAL;
        snprintf(owner, sizeof(owner), "%" PRIu32, e->owner);
        r = put(buf, size, &at, e->type);
        if (r >= 0)
                r = put(buf, size, &at, e->action);
        if (r >= 0)
                r = put(buf, size, &at, e->id);
        if (r >= 0)
                r = put(buf, size, &at, e->name);
        if (r >= 0)
                r = put(buf, size, &at, owner);
        for (size_t i = 0; r >= 0 && e->attrs && e->attrs[i] && e->attrs[i + 1]; i += 2) {
                if (i >= 2 * BERTH_EVENT_ATTRS_MAX)
                        return -EINVAL;
                r = put(buf, size, &at, e->attrs[i]);
                if (r >= 0)
                        r = put(buf, size, &at, e->attrs[i + 1]);
        }
        if (r < 0)
                return r;
        *ret_len = at;
        return 0;
}

static int parse_owner(const char *s, uint32_t *ret) {
        uint64_t v = 0;

        if (!*s || strlen(s) > 10 || (s[0] == '0' && s[1]))
                return -EBADMSG;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EBADMSG;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        if (v > UINT32_MAX)
                return -EBADMSG;
        *ret = (uint32_t) v;
        return 0;
}

int berth_event_decode(const uint8_t *buf, size_t len, BerthEvent **ret) {
        const char *fields[FIELDS_MAX + 1];
        size_t n = 0, at = 0;
        uint32_t owner;
        int r;

        /* SECURITY: bytes read back from disk. Every field is NUL-terminated inside buf, within the field
         * limit and valid UTF-8; their number is fixed by the format. */
        if (!buf || len == 0 || buf[len - 1] != 0)
                return -EBADMSG;
        while (at < len) {
                const char *s = (const char *) buf + at;
                size_t l = strnlen(s, len - at);

                if (n >= FIELDS_MAX || l > BERTH_EVENT_FIELD_MAX || !g_utf8_validate(s, (gssize) l, NULL))
                        return -EBADMSG;
                fields[n++] = s;
                at += l + 1;
        }
        if (n < FIXED_FIELDS || (n - FIXED_FIELDS) % 2 != 0 || !berth_event_type_valid(fields[0]) ||
            !berth_event_action_valid(fields[1]) || parse_owner(fields[4], &owner) < 0)
                return -EBADMSG;
        fields[n] = NULL;
        r = berth_event_new(0, fields[0], fields[1], fields[2], fields[3], owner,
                            n > FIXED_FIELDS ? fields + FIXED_FIELDS : NULL, ret);
        return r;
}
