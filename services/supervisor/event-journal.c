/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The supervisor's event journal (event-journal.h). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-names.h"
#include "bus-util.h"
#include "containers-life.h"
#include "event-journal.h"
#include "event-record.h"
#include "event-ring.h"
#include "fs-util.h"
#include "health.h"
#include "log.h"
#include "macro.h"

/* One supervisor per process, as health.c's checks. */
static EventRing *ring;
static Manager *manager;

int event_journal_open(Manager *m) {
        g_autofree char *dir = g_strdup_printf("%s/containers", m->state_path);
        _cleanup_close_ int dir_fd = -EBADF;
        int r;

        manager = m;
        if (ring)
                return 0;
        /* Root only (tmpfiles.d and the unit say 0700): the journal tells of every user's containers. */
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return log_warning_errno(errno, "Cannot create '%s' for the event journal: %m", dir);
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return log_warning_errno(errno, "Cannot open '%s' for the event journal: %m", dir);
        r = event_ring_open(dir_fd, EVENT_JOURNAL_FILE, EVENT_JOURNAL_SLOTS, EVENT_JOURNAL_SLOT_SIZE, &ring);
        if (r < 0)
                return log_warning_errno(r, "Cannot open the event journal '%s/%s': %m", dir,
                                         EVENT_JOURNAL_FILE);
        log_debug("Event journal %s: events %" PRIu64 " to %" PRIu64 ".", event_ring_id(ring),
                  event_ring_first_seq(ring), event_ring_last_seq(ring));
        return 0;
}

void event_journal_close(void) {
        ring = event_ring_free(ring);
        manager = NULL;
}

/* ---- the last state told, per container ---------------------------------------------------------- */

static bool status_known(const char *s) {
        return g_strv_contains((const char *const[]){ "created", "running", "paused", "stopped", NULL }, s);
}

static bool health_known(const char *s) {
        return g_strv_contains((const char *const[]){ "-", "starting", "healthy", "unhealthy", NULL }, s);
}

/* SECURITY: read back from a directory only we write, still bounded and checked word by word. */
static int state_read(Container *c, char status[static 16], char health[static 16]) {
        _cleanup_close_ int fd = -EBADF;
        char buf[64] = {};
        ssize_t n;

        if (c->state_dir_fd < 0)
                return -EBADF;
        fd = openat(c->state_dir_fd, EVENT_JOURNAL_STATE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        if (sscanf(buf, "%15s %15s", status, health) != 2 || !status_known(status) || !health_known(health))
                return -EBADMSG;
        return 0;
}

static void state_write(Container *c, const char *status, const char *health) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%s %s\n", status, isempty(health) ? "-" : health);
        int r;

        if (c->state_dir_fd < 0)
                return;
        r = write_file_atomic_at(c->state_dir_fd, EVENT_JOURNAL_STATE_FILE, line, (size_t) n, 0600);
        if (r < 0)
                log_warning_errno(r, "Cannot save the event state of container %s: %m", c->id);
}

/* ---- recording ------------------------------------------------------------------------------------- */

static int append_attrs(sd_bus_message *m, char **attrs) {
        int r = sd_bus_message_open_container(m, 'a', "{ss}");

        for (char **a = attrs; r >= 0 && a && a[0] && a[1]; a += 2)
                r = sd_bus_message_append(m, "{ss}", a[0], a[1]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int send_event(Manager *m, uint64_t seq, const BerthEvent *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        int r;

        /* SECURITY: unicast to the broker, as ContainerChanged (container.c); a broker that is not running
         * is not started by it: it reads what it missed with ReadEvents when it starts. */
        r = sd_bus_message_new_signal(m->bus, &sig, BERTH_SUPERVISOR_PATH, BERTH_SUPERVISOR_IFACE, "Event");
        if (r >= 0)
                r = sd_bus_message_set_destination(sig, BERTH_BROKER_NAME);
        if (r >= 0)
                r = sd_bus_message_set_auto_start(sig, false);
        if (r >= 0)
                r = sd_bus_message_append(sig, "sttsssu", event_ring_id(ring), seq, e->time_usec, e->action,
                                          e->id, e->name, e->owner);
        if (r >= 0)
                r = append_attrs(sig, e->attrs);
        if (r >= 0)
                r = sd_bus_send(m->bus, sig, NULL);
        return r;
}

static void record(Container *c, const char *action, const char *const *attrs) {
        _cleanup_(berth_event_freep) BerthEvent *e = NULL;
        uint8_t buf[EVENT_JOURNAL_SLOT_SIZE - EVENT_RING_SLOT_HEADER];
        uint64_t seq;
        size_t len;
        int r;

        if (!ring && manager && event_journal_open(manager) < 0)
                return;
        if (!ring)
                return;
        r = berth_event_new((uint64_t) g_get_real_time(), "container", action, c->id, c->name ?: "",
                            c->owner, attrs, &e);
        if (r >= 0)
                r = berth_event_encode(e, buf, sizeof(buf), &len);
        if (r < 0) {
                log_warning_errno(r, "Cannot record the %s event of container %s: %m", action, c->id);
                return;
        }
        r = event_ring_append(ring, e->time_usec, 0, buf, len, &seq);
        if (r < 0)
                /* Kept in memory: the broker still gets it from this process. */
                log_warning_errno(r, "Cannot write the %s event of container %s to the journal: %m", action,
                                  c->id);
        r = send_event(c->manager, seq, e);
        if (r < 0)
                log_debug_errno(r, "Cannot send the %s event of container %s: %m", action, c->id);
}

void event_journal_note(Container *c) {
        char was[16] = "", was_health[16] = "-";
        const char *status, *health;
        bool known;

        if (c->status == CONTAINER_CREATING)
                return;
        status = container_status_string(c);
        health = health_status(c);
        if (isempty(health))
                health = "-";
        if (!status_known(status) || !health_known(health))
                return;
        known = state_read(c, was, was_health) >= 0;
        if (known && streq(was, status) && streq(was_health, health))
                return;
        /* Not seen before: a new container (the broker tells its creation), or one from before the journal.
         */
        if (known && !streq(was, status)) {
                if (streq(status, "running"))
                        record(c, streq(was, "paused") ? "unpause" : "start", NULL);
                else if (streq(status, "paused")) {
                        if (!streq(was, "running"))
                                record(c, "start", NULL);
                        record(c, "pause", NULL);
                } else if (streq(status, "stopped")) {
                        char code[16];

                        snprintf(code, sizeof(code), "%d", c->exit_code);
                        if (streq_ptr(c->reason, "oom"))
                                record(c, "oom", NULL);
                        record(c, "die",
                               (const char *const[]){ "exitCode", code, "reason", c->reason ?: "", NULL });
                }
                /* "created": a restart on its way; its start follows. */
        }
        if (known && !streq(was_health, health) && !streq(health, "-"))
                record(c, "health_status", (const char *const[]){ "healthStatus", health, NULL });
        state_write(c, status, health);
}

/* ---- ReadEvents ------------------------------------------------------------------------------------ */

int method_read_events(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *ring_id;
        uint64_t after, flags, from;
        int r;

        /* SECURITY: every user's container events: the broker only, which filters them per caller. */
        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "stt", &ring_id, &after, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (!isempty(ring_id) && !event_ring_id_valid(ring_id))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid event ring id.");
        if (!ring && event_journal_open(userdata) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "The event journal is not available.");

        /* Another ring than the caller read (a new file): all of this one. */
        from = streq(ring_id, event_ring_id(ring)) && after < UINT64_MAX ? after + 1 : 1;
        if (from < event_ring_first_seq(ring))
                from = event_ring_first_seq(ring);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", event_ring_id(ring));
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ttsssua{ss})");
        for (uint64_t seq = from; r >= 0 && seq != 0 && seq <= event_ring_last_seq(ring); seq++) {
                const EventRingRecord *rec = event_ring_get(ring, seq);
                _cleanup_(berth_event_freep) BerthEvent *e = NULL;

                /* A record that does not decode is not sent: the broker sees a gap, never bytes we
                 * did not check. */
                if (!rec || berth_event_decode(rec->payload, rec->len, &e) < 0 ||
                    !streq(e->type, "container"))
                        continue;
                r = sd_bus_message_open_container(reply, 'r', "ttsssua{ss}");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ttsssu", seq, rec->time_usec, e->action, e->id,
                                                  e->name, e->owner);
                if (r >= 0)
                        r = append_attrs(reply, e->attrs);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
