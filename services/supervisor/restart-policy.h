/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "container.h"
#include "request.h"
#include "restart-parse.h"

/* Restart policies (--restart), kept by the supervisor next to the container so that they outlive the
 * supervisor and the broker: <state dir>/restart holds {policy, count, stopped_by_user, log_max}, written
 * atomically at every change. When the container stops and the policy says so, it runs again after a
 * back-off (RESTART_DELAY_FIRST_USEC, doubling up to RESTART_DELAY_MAX_USEC; back to the first delay
 * once a run lasted RESTART_RESET_USEC): the stored config.json is executed again by a fresh creating
 * process that becomes its new berth-shim, with the same rootfs (the container keeps its writable layer,
 * as `docker restart` does) and the output in its log.
 *
 * A stop or kill by a user (KillContainer flag 0x2, which the broker sets for Kill and Stop) is never a
 * failure: the container stays stopped, whatever its exit code. docker's rule for a supervisor start:
 * `always` also restarts a container a user stopped, `unless-stopped` does not.
 *
 * A health restart (--health-on-failure=restart, health.c) is podman's: the container is killed and
 * started again whatever its policy, through the same restart. The request is recorded ("health_restart")
 * before the kill, so a supervisor that dies meanwhile restarts it when it adopts it stopped; a user's
 * stop cancels it. Health restarts count in `count` (RestartCount) and in `health_restarts`; on-failure:N
 * limits only the others (count - health_restarts). */

#define RESTART_DELAY_FIRST_USEC (100U * 1000U)
#define RESTART_DELAY_MAX_USEC (60U * 1000U * 1000U)
#define RESTART_RESET_USEC (10U * 1000U * 1000U)
#define RESTART_FILE "restart"

typedef struct RestartState {
        RestartPolicy policy;
        uint32_t count;           /* restarts done */
        bool stopped_by_user;     /* since the last start */
        bool health_restart;      /* health.c asked for a restart of this run */
        uint32_t health_restarts; /* of count, those asked by health.c */
        uint64_t log_max;         /* the shim's --log-max; 0 = its default */
        unsigned step;            /* back-off: the next delay is FIRST << step */
        sd_event_source *timer;
        sd_event_source *creator_source;
        int creator_fd;
        bool in_flight; /* a creating process runs */
} RestartState;

/* CreateContainer: the record from the request (always written: it also carries log_max). */
int restart_state_create(Container *c, const ContainerRequest *req);
/* Adoption: read the record (none: policy "no"). */
int restart_state_load(Container *c);
void restart_state_free(RestartState *s);

/* The container stopped (adopted: found stopped when the supervisor started): restart it if its policy
 * says so. */
void restart_on_stopped(Container *c, bool adopted);
/* A kill or stop by a user: no restart for this run. */
void restart_note_user_stop(Container *c);
/* A restart is being set up (DeleteContainer waits for it to finish: Busy). */
bool restart_in_flight(const Container *c);
/* A restart is due (its back-off timer runs) or being set up: the supervisor must not exit for idleness,
 * or the restart would wait for the next activation. */
bool restart_pending(const Container *c);
uint32_t restart_count(const Container *c);
/* health.c: the container turned unhealthy with on_failure restart; it is about to be killed. -ECANCELED
 * when a user stopped it (a stop is never overridden), else recorded (a record made if there was none). */
int restart_request_health(Container *c);
/* The container runs again (or was adopted running): no health restart is due any more. */
void restart_health_done(Container *c);
/* --log-max for the shim, 0 for its default. */
uint64_t restart_log_max(const Container *c);
