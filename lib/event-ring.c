/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The persisted event ring (event-ring.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event-ring.h"
#include "macro.h"

#define RING_MAGIC "BERTHEVR"
#define RING_VERSION 1U
#define SLOT_MAGIC UINT32_C(0x45565231) /* "EVR1" */

/* At offset 0, in a slot of its own. Every field has its natural alignment: no padding. */
typedef struct RingHeader {
        char magic[8];
        uint32_t version;
        uint32_t slot_size;
        uint32_t slots;
        uint32_t mark_set;
        uint8_t id[EVENT_RING_ID_LEN];
        uint8_t mark_id[EVENT_RING_ID_LEN];
        uint64_t mark_value;
        uint64_t hash;
} RingHeader;

typedef struct SlotHeader {
        uint32_t magic;
        uint32_t len;
        uint64_t seq;
        uint64_t time_usec;
        uint64_t aux;
        uint64_t hash;
} SlotHeader;

_Static_assert(sizeof(SlotHeader) == EVENT_RING_SLOT_HEADER, "slot header size");
_Static_assert(sizeof(RingHeader) <= EVENT_RING_SLOT_SIZE_MIN, "ring header size");

struct EventRing {
        int fd;
        unsigned slots;
        size_t slot_size;
        uint8_t *buf; /* one slot */
        RingHeader header;
        char id[EVENT_RING_ID_STRING_LEN + 1];
        char mark_id[EVENT_RING_ID_STRING_LEN + 1];
        uint64_t last_seq;
        EventRingRecord *records; /* slots of them, record seq at seq % slots */
};

/* FNV-1a: detects torn and stray writes, not forgery (whoever can write the file can write any record). */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)

static uint64_t header_hash(const RingHeader *h) {
        RingHeader copy = *h;

        copy.hash = 0;
        return fnv1a(FNV_OFFSET, &copy, sizeof(copy));
}

static uint64_t slot_hash(const SlotHeader *s, const uint8_t *payload) {
        SlotHeader copy = *s;

        copy.hash = 0;
        return fnv1a(fnv1a(FNV_OFFSET, &copy, sizeof(copy)), payload, s->len);
}

static void hex(char *out, const uint8_t *in, size_t n) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = 0;
}

bool event_ring_id_valid(const char *id) {
        if (!id || strlen(id) != EVENT_RING_ID_STRING_LEN)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static int unhex(const char *id, uint8_t *out) {
        if (!event_ring_id_valid(id))
                return -EINVAL;
        for (size_t i = 0; i < EVENT_RING_ID_LEN; i++) {
                unsigned v;

                if (sscanf(id + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                out[i] = (uint8_t) v;
        }
        return 0;
}

static off_t slot_offset(const EventRing *r, unsigned index) {
        return (off_t) r->slot_size * (off_t) (index + 1);
}

static off_t ring_size(const EventRing *r) {
        return slot_offset(r, r->slots);
}

static void record_clear(EventRingRecord *rec) {
        free(rec->payload);
        *rec = (EventRingRecord){};
}

static int write_header(EventRing *r) {
        ssize_t n;

        r->header.hash = header_hash(&r->header);
        n = pwrite(r->fd, &r->header, sizeof(r->header), 0);
        if (n < 0)
                return -errno;
        return n == (ssize_t) sizeof(r->header) ? 0 : -EIO;
}

static void sync_ids(EventRing *r) {
        hex(r->id, r->header.id, EVENT_RING_ID_LEN);
        if (r->header.mark_set)
                hex(r->mark_id, r->header.mark_id, EVENT_RING_ID_LEN);
        else
                r->mark_id[0] = 0;
}

/* A new, empty ring with a new id: the readers' cursors into the old one no longer apply. */
static int reset(EventRing *r) {
        ssize_t n;

        for (unsigned i = 0; i < r->slots; i++)
                record_clear(&r->records[i]);
        r->last_seq = 0;
        r->header = (RingHeader){ .version = RING_VERSION,
                                  .slot_size = (uint32_t) r->slot_size,
                                  .slots = r->slots };
        memcpy(r->header.magic, RING_MAGIC, sizeof(r->header.magic));
        n = getrandom(r->header.id, sizeof(r->header.id), 0);
        if (n != (ssize_t) sizeof(r->header.id))
                return n < 0 ? -errno : -EIO;
        sync_ids(r);
        if (ftruncate(r->fd, 0) < 0)
                return -errno;
        /* Sparse: slots never written read back as zeros, which are not records. */
        if (ftruncate(r->fd, ring_size(r)) < 0)
                return -errno;
        return write_header(r);
}

static bool header_valid(const RingHeader *h, const EventRing *r) {
        return memcmp(h->magic, RING_MAGIC, sizeof(h->magic)) == 0 && h->version == RING_VERSION &&
               h->slot_size == r->slot_size && h->slots == r->slots && h->mark_set <= 1 &&
               h->hash == header_hash(h);
}

/* Slot index, read back: kept only if everything about it checks out. */
static void load_slot(EventRing *r, unsigned index) {
        uint8_t *buf = r->buf;
        SlotHeader s;
        EventRingRecord *rec = &r->records[index];
        ssize_t n;

        /* A slot is written only as far as its record goes, and the last one may end the file: what
         * was read bounds the length. */
        n = pread(r->fd, buf, r->slot_size, slot_offset(r, index));
        if (n < (ssize_t) sizeof(s))
                return;
        memcpy(&s, buf, sizeof(s));
        if (s.magic != SLOT_MAGIC || s.len > (size_t) n - sizeof(s) || s.seq == 0 ||
            s.seq % r->slots != index || s.hash != slot_hash(&s, buf + sizeof(s)))
                return;
        rec->payload = malloc(s.len ?: 1);
        if (!rec->payload)
                return;
        memcpy(rec->payload, buf + sizeof(s), s.len);
        rec->seq = s.seq;
        rec->time_usec = s.time_usec;
        rec->aux = s.aux;
        rec->len = s.len;
}

static int load(EventRing *r) {
        for (unsigned i = 0; i < r->slots; i++) {
                load_slot(r, i);
                if (r->records[i].seq > r->last_seq)
                        r->last_seq = r->records[i].seq;
        }
        /* A seq this large was not counted up to: the file is not ours to trust. */
        if (r->last_seq > UINT64_MAX / 2)
                return reset(r);
        /* Left behind by a write that did not land (its slot still holds the previous round's record). */
        for (unsigned i = 0; i < r->slots; i++)
                if (r->records[i].seq != 0 && r->records[i].seq + r->slots <= r->last_seq)
                        record_clear(&r->records[i]);
        return 0;
}

int event_ring_open(int dir_fd, const char *name, unsigned slots, size_t slot_size, EventRing **ret) {
        EventRing *r;
        struct stat st;
        ssize_t n;
        int k;

        if (!name || !ret || slots == 0 || slots > EVENT_RING_SLOTS_MAX ||
            slot_size < EVENT_RING_SLOT_SIZE_MIN || slot_size > EVENT_RING_SLOT_SIZE_MAX ||
            slot_size % 8 != 0)
                return -EINVAL;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->slots = slots;
        r->slot_size = slot_size;
        r->fd = -EBADF;
        r->records = calloc(slots, sizeof(*r->records));
        r->buf = malloc(slot_size);
        if (!r->records || !r->buf) {
                event_ring_free(r);
                return -ENOMEM;
        }
        r->fd = openat(dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (r->fd < 0) {
                k = -errno;
                event_ring_free(r);
                return k;
        }
        if (fstat(r->fd, &st) < 0) {
                k = -errno;
                event_ring_free(r);
                return k;
        }
        if (!S_ISREG(st.st_mode)) {
                event_ring_free(r);
                return -EBADFD;
        }
        n = pread(r->fd, &r->header, sizeof(r->header), 0);
        if (n == (ssize_t) sizeof(r->header) && header_valid(&r->header, r) && st.st_size == ring_size(r)) {
                sync_ids(r);
                k = load(r);
        } else
                k = reset(r);
        if (k < 0) {
                event_ring_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

EventRing *event_ring_free(EventRing *r) {
        if (!r)
                return NULL;
        for (unsigned i = 0; r->records && i < r->slots; i++)
                record_clear(&r->records[i]);
        free(r->records);
        free(r->buf);
        if (r->fd >= 0)
                close(r->fd);
        free(r);
        return NULL;
}

const char *event_ring_id(const EventRing *r) {
        return r->id;
}

uint64_t event_ring_last_seq(const EventRing *r) {
        return r->last_seq;
}

uint64_t event_ring_first_seq(const EventRing *r) {
        uint64_t from = r->last_seq >= r->slots ? r->last_seq - r->slots + 1 : 1;

        for (uint64_t seq = from; seq != 0 && seq <= r->last_seq; seq++)
                if (event_ring_get(r, seq))
                        return seq;
        return 0;
}

const EventRingRecord *event_ring_get(const EventRing *r, uint64_t seq) {
        const EventRingRecord *rec;

        if (seq == 0 || seq > r->last_seq)
                return NULL;
        rec = &r->records[seq % r->slots];
        return rec->seq == seq ? rec : NULL;
}

size_t event_ring_payload_max(const EventRing *r) {
        return r->slot_size - EVENT_RING_SLOT_HEADER;
}

int event_ring_append(EventRing *r, uint64_t time_usec, uint64_t aux, const void *payload, size_t len,
                      uint64_t *ret_seq) {
        uint8_t *buf = r->buf;
        size_t size = sizeof(SlotHeader) + len;
        SlotHeader s = { .magic = SLOT_MAGIC, .len = (uint32_t) len, .time_usec = time_usec, .aux = aux };
        EventRingRecord *rec;
        uint8_t *copy;
        ssize_t n;

        if (len > event_ring_payload_max(r) || (len > 0 && !payload))
                return -EMSGSIZE;
        copy = malloc(len ?: 1);
        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, payload, len);
        s.seq = r->last_seq + 1;
        memcpy(buf + sizeof(s), copy, len);
        s.hash = slot_hash(&s, buf + sizeof(s));
        memcpy(buf, &s, sizeof(s));

        rec = &r->records[s.seq % r->slots];
        record_clear(rec);
        *rec = (EventRingRecord){
                .seq = s.seq, .time_usec = time_usec, .aux = aux, .len = len, .payload = copy
        };
        r->last_seq = s.seq;
        if (ret_seq)
                *ret_seq = s.seq;
        /* Only as far as the record goes: the hash covers exactly that. */
        n = pwrite(r->fd, buf, size, slot_offset(r, (unsigned) (s.seq % r->slots)));
        if (n < 0)
                return -errno;
        return n == (ssize_t) size ? 0 : -EIO;
}

const char *event_ring_mark_id(const EventRing *r) {
        return r->mark_id;
}

uint64_t event_ring_mark_value(const EventRing *r) {
        return r->header.mark_value;
}

int event_ring_set_mark(EventRing *r, const char *id, uint64_t value) {
        uint8_t raw[EVENT_RING_ID_LEN] = {};
        bool set = !(!id || !*id);

        if (set && unhex(id, raw) < 0)
                return -EINVAL;
        if ((uint32_t) set == r->header.mark_set && memcmp(raw, r->header.mark_id, sizeof(raw)) == 0 &&
            value == r->header.mark_value)
                return 0;
        r->header.mark_set = set;
        memcpy(r->header.mark_id, raw, sizeof(raw));
        r->header.mark_value = value;
        sync_ids(r);
        return write_header(r);
}
