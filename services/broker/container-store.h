/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* The broker's container records: one JSON document per container under <statedir>/meta/containers/,
 * named <id>.json, written atomically (write_file_atomic_at). They hold what only the broker knows
 * (name, image, owner, the user's options, --rm); the supervisor is the truth for the running state,
 * which the broker mirrors here from its ContainerChanged signals and ListContainers. */

#define CONTAINER_ID_HEX_LEN 32
#define CONTAINER_NAME_MAX 128U
#define CONTAINER_RECORD_MAX (512U * 1024U)
#define BROKER_CONTAINERS_MAX 4096U

typedef struct ContainerRecord {
        char *id;            /* 32 lowercase hex */
        char *name;          /* unique, [a-zA-Z0-9][a-zA-Z0-9_.-]* */
        char *image;         /* the normalised reference the container was created from */
        char *image_digest;  /* the image's target (index or manifest) digest */
        char *config_digest; /* the config the supervisor ran */
        char *platform;
        uid_t owner;
        bool auto_remove; /* --rm: the broker removes it once it stopped */
        bool tty, detach;
        char *options; /* the validated user options (JSON), for inspect */
        char *status;  /* "creating" (memory only), "created", "running", "stopped" */
        uint32_t pid;
        int32_t exit_code;
        char *reason;
        uint64_t created_at, started_at, finished_at; /* µs since the epoch */

        /* Runtime only, never stored. */
        char *health;                /* the supervisor's: "", "starting", "healthy", "unhealthy" */
        uint32_t restart_count;      /* the supervisor's (restart policy), mirrored */
        char *event_status;          /* the status the last event told of (container-events.c) */
        bool creating;               /* CreateContainer in flight: not on the bus yet */
        bool removing;               /* DeleteContainer in flight */
        GPtrArray *waiters;          /* Wait calls (sd_bus_message*), answered once it stopped */
        GPtrArray *exit_waiters;     /* Wait(EXIT_ONLY) calls: answered at the exit, before a --rm removal */
        GPtrArray *name_waiters;     /* CreateContainer calls for this name, run again once it is removed */
        GPtrArray *stop_waiters;     /* Stop calls */
        GPtrArray *remove_waiters;   /* Remove calls */
        sd_event_source *stop_timer; /* Stop's SIGKILL after the timeout */
} ContainerRecord;

ContainerRecord *container_record_free(ContainerRecord *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ContainerRecord *, container_record_free);

JsonNode *container_record_to_json(const ContainerRecord *c);
int container_record_from_json(JsonNode *node, ContainerRecord **ret, char **ret_error);

bool container_id_valid(const char *id);
/* Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most CONTAINER_NAME_MAX bytes. */
bool container_name_valid(const char *name);
/* 32 hex chars from getrandom(). */
int container_id_generate(char ret[static CONTAINER_ID_HEX_LEN + 1]);
/* "adjective_noun" (malloc'd), docker-style; the caller checks uniqueness. */
char *container_name_generate(void);

typedef struct ContainerStore ContainerStore;

/* Opens (creating) <state_dir>/meta/containers and loads every record; bad ones are logged and skipped. */
int container_store_open(const char *state_dir, ContainerStore **ret);
ContainerStore *container_store_free(ContainerStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ContainerStore *, container_store_free);

ContainerRecord *container_store_get(ContainerStore *s, const char *id);
ContainerRecord *container_store_by_name(ContainerStore *s, const char *name);
/* Finds by full id, by name, or by an unambiguous id prefix (≥ 4 chars). NULL when none or ambiguous. */
ContainerRecord *container_store_lookup(ContainerStore *s, const char *what);
size_t container_store_count(ContainerStore *s);
/* Borrowed records sorted by creation time; the array is malloc'd. */
int container_store_list(ContainerStore *s, ContainerRecord ***ret, size_t *ret_n);
/* Takes ownership of *c, in memory only (a container being created). */
int container_store_add(ContainerStore *s, ContainerRecord **c);
/* Writes c's document (c must be in the store). */
int container_store_save(ContainerStore *s, const ContainerRecord *c);
/* Removes the document and frees the record. */
int container_store_remove(ContainerStore *s, const char *id);
