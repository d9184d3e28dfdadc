/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

/* The supervisor's containers: one Container per /run/berth/containers/<id>/, which holds
 *   state       our record (JSON): who asked for it, and whether creation completed
 *   config.json the OCI runtime spec the engine ran
 *   rootfs/     the overlay mount point (mounted in the host mount namespace)
 *   shim.sock   berth-shim's socket; exit: its exit record; log, log.1: detached output
 * The directory is the truth: a restarted supervisor rebuilds everything from it. */

#define CONTAINER_ID_LEN 32
#define CONTAINERS_MAX 4096U
#define CONTAINER_STATE_FILE "state"
#define CONTAINER_STATE_MAX (64U * 1024U)
#define CONTAINER_SPEC_MAX (4U * 1024U * 1024U) /* our own config.json, read back for clean-up */

typedef enum ContainerStatus {
        CONTAINER_CREATING, /* not visible on the bus yet */
        CONTAINER_CREATED,
        CONTAINER_RUNNING,
        CONTAINER_STOPPED,
} ContainerStatus;

typedef struct Manager Manager;

typedef struct Container {
        Manager *manager;
        char *id;
        char *name;
        uint32_t owner;
        char *image_config;
        bool detach, tty;
        ContainerStatus status;
        uint32_t pid;
        int exit_code;
        char *reason;
        uint64_t created_at, started_at, finished_at;
        int state_dir_fd;

        int shim_fd; /* long-lived connection: the shim's events */
        sd_event_source *shim_source;
        GPtrArray *waiters;              /* WaitContainer calls, sd_bus_message* */
        sd_bus_message *pending_delete;  /* DeleteContainer(force) waiting for the exit */
        sd_event_source *cleanup_source; /* the removal child of container_cleanup_async() */

        /* Creation in flight. */
        sd_bus_message *create_msg;
        pid_t creator_pid;
        int creator_fd;
        sd_event_source *creator_source;
        int pty_fd;
        bool creator_reported;

        /* Living containers (issue 9). */
        bool paused;                  /* cgroup frozen (freezer.c): status "paused" */
        struct RestartState *restart; /* restart-policy.c; NULL: no record, policy "no" */
} Container;

struct Manager {
        sd_bus *bus;
        sd_event *event;
        char *state_path;      /* /var/lib/berth */
        char *snapshots_path;  /* the unpacker's store: read here; we only add active/ */
        char *containers_path; /* /run/berth/containers */
        char *shim_path;
        int shim_exe_fd; /* sealed memfd copy of shim_path (exec.h: shim_exe_seal), or -1 */
        int snapshots_fd;
        int content_fd;
        int containers_fd;
        GHashTable *containers; /* id → Container* */
};

bool container_id_is_valid(const char *id);
const char *container_status_to_string(ContainerStatus s);

Container *container_new(Manager *m, const char *id);
void container_free(Container *c);
Container *manager_find(Manager *m, const char *id);
bool manager_name_in_use(Manager *m, const char *name);

/* The state record. */
int container_write_state(Container *c, bool complete);
int container_read_state(Container *c, bool *ret_complete);
/* The shim's exit record → exit_code, reason, started_at, finished_at. */
int container_read_exit(Container *c);

/* Unmounts the rootfs, removes the active snapshot, the cgroup and the state directory (in a child in
 * the host mount namespace). Idempotent. */
int container_cleanup(Manager *m, const char *id);
/* Removes a stopped container as container_cleanup() does, in a child the event loop watches; then
 * answers c->pending_delete (if set) and drops c from m->containers. c may be freed on return. */
void container_delete_async(Container *c);

/* Subscribes to the shim's events (status changes, exit). */
int container_watch_shim(Container *c);
/* Marks the container stopped (from the shim's event or exit record), answers waiters, emits. */
void container_set_stopped(Container *c);
int container_emit_changed(Container *c);

/* Start-up: adopt every container whose shim lives, record exits missed, clean half-made ones. */
int manager_adopt_containers(Manager *m);

/* container-create.c */
int container_create_begin(Manager *m, sd_bus_message *msg, sd_bus_error *error);

/* What a method needs of the container it names: present in any state (even while created, before it is
 * on the bus), visible on the bus (not CONTAINER_CREATING), running, or created or running. */
typedef enum ContainerNeed {
        CONTAINER_NEED_ANY,
        CONTAINER_NEED_VISIBLE,
        CONTAINER_NEED_RUNNING,
        CONTAINER_NEED_CREATED_OR_RUNNING,
} ContainerNeed;

/* containers-bus.c: a broker-given id checked and looked up: InvalidArgs for a malformed id, NotFound,
 * InvalidArgs "not running" when the state does not fit. */
int container_bus_find(Manager *m, const char *id, ContainerNeed need, Container **ret, sd_bus_error *error);

/* containers-bus.c: the method handlers, and their common start: the caller is the broker, then "s" (a
 * container id, which must exist) and, with ret_flags, "t" (flags within known). */
int container_bus_read_id_flags(sd_bus_message *msg, Manager *m, uint64_t known, Container **ret_c,
                                uint64_t *ret_flags, sd_bus_error *error);
int method_create_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_start_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_kill_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_delete_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_containers(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_wait_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_open_log(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_get_container_spec(sd_bus_message *m, void *userdata,
                              sd_bus_error *error); /* container-spec-bus.c */
