/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A persisted, bounded ring of records (docs/architecture/events.md): one file, a header and a fixed
 * number of fixed-size slots. Record number seq (1, 2, …) lives in slot seq % slots, so the file never
 * grows (a chatty writer overwrites its own oldest records, nothing else), no seq can be stored twice, and
 * the order is the seq order. Each slot carries its seq, a time, an aux number for the caller and an
 * opaque payload, with a hash over all of it.
 *
 * SECURITY: the file is read back as hostile input (the supervisor, root, reads its own ring; a damaged
 * or edited file must not become anything but skipped records): the size of every read is fixed, a slot
 * whose magic, length, position or hash does not check out is dropped, and a header that does not is
 * replaced by a new, empty ring (with a new id, which tells readers that the history restarted).
 *
 * Writes are pwrite()s of one slot at a time without fsync: a killed process loses nothing it wrote;
 * a power cut may cost the last records, which the hash then drops. */

#define EVENT_RING_SLOT_HEADER 40U
#define EVENT_RING_SLOT_SIZE_MIN 128U
#define EVENT_RING_SLOT_SIZE_MAX (64U * 1024U)
#define EVENT_RING_SLOTS_MAX 65536U
#define EVENT_RING_ID_LEN 16U
#define EVENT_RING_ID_STRING_LEN (2U * EVENT_RING_ID_LEN)

typedef struct EventRing EventRing;

typedef struct EventRingRecord {
        uint64_t seq; /* 0: empty */
        uint64_t time_usec;
        uint64_t aux;
        size_t len;
        uint8_t *payload;
} EventRingRecord;

/* Opens (creating or, when it is not a ring of this shape, replacing) dir_fd/name with the given number of
 * slots of slot_size bytes (a multiple of 8; a record's payload is at most slot_size -
 * EVENT_RING_SLOT_HEADER), mode 0600, and loads every valid record. A slot takes on disk what its largest
 * record wrote: the file is at most (slots + 1) * slot_size bytes. */
int event_ring_open(int dir_fd, const char *name, unsigned slots, size_t slot_size, EventRing **ret);
EventRing *event_ring_free(EventRing *r);

/* The ring's random id, as 32 lowercase hex digits: it changes when the file is (re)created. */
const char *event_ring_id(const EventRing *r);
/* The seq of the newest record (0: none ever) and of the oldest one still held (0: none). */
uint64_t event_ring_last_seq(const EventRing *r);
uint64_t event_ring_first_seq(const EventRing *r);
/* Record seq, or NULL when it is not held (overwritten, never written, or dropped as invalid). */
const EventRingRecord *event_ring_get(const EventRing *r, uint64_t seq);

size_t event_ring_payload_max(const EventRing *r);

/* Stores a record as seq last+1 (returned in ret_seq). It is held in memory even when the write fails
 * (the error is returned: the caller logs it). */
int event_ring_append(EventRing *r, uint64_t time_usec, uint64_t aux, const void *payload, size_t len,
                      uint64_t *ret_seq);

/* A caller's mark kept in the header: an id (EVENT_RING_ID_STRING_LEN hex digits, or "") and a number.
 * The broker keeps its cursor into the supervisor's ring here. */
const char *event_ring_mark_id(const EventRing *r);
uint64_t event_ring_mark_value(const EventRing *r);
int event_ring_set_mark(EventRing *r, const char *id, uint64_t value);

bool event_ring_id_valid(const char *id);
