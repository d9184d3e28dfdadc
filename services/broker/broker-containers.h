/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "broker.h"
#include "container-store.h"

/* The broker's containers: records (container-store.c), the Manager methods CreateContainer and
 * ListContainers and the mirror of the supervisor's state (broker-containers.c), and one object per
 * container, /org/berth/Broker1/container/<id> (container-object.c). */

/* Flags of Manager.CreateContainer. */
#define CREATE_CONTAINER_FLAG_AUTO_REMOVE (UINT64_C(1) << 0) /* --rm */
/* Flags of Manager.ListContainers. */
#define LIST_CONTAINERS_FLAG_ALL_USERS (UINT64_C(1) << 0) /* everyone's (container-manage-any) */
/* Flags of Container.Kill. */
#define KILL_CONTAINER_FLAG_ALL (UINT64_C(1) << 0)
/* Flags of Container.Remove. */
#define REMOVE_CONTAINER_FLAG_FORCE (UINT64_C(1) << 0)

#define CONTAINER_WAITERS_MAX 64U

/* What is left of a removed container: enough to answer a Wait that polkit delayed past the removal of a
 * --rm container (a foreground `run --rm` sends Wait before Start, but each goes through polkit on its
 * own). The last TOMBSTONES_MAX removals, in memory only. */
#define TOMBSTONES_MAX 256U
typedef struct Tombstone {
        uid_t owner;
        int32_t exit_code;
        char *reason;
} Tombstone;

struct ContainerManager {
        Manager *manager;
        ContainerStore *store;
        sd_bus_slot *changed_match; /* the supervisor's ContainerChanged */
        sd_bus_slot *owner_match;   /* NameOwnerChanged of org.berth.Supervisor1 */
        sd_bus_slot *owner_query;   /* GetNameOwner at start */
        char *supervisor_owner;     /* its unique name, NULL while unknown or gone */
        sd_bus_slot *vtable_slot, *enumerator_slot;
        sd_bus_slot *sync_slot;     /* ListContainers in flight at the supervisor */
        bool sync_again;            /* something changed while it was in flight */
        bool synced_once;           /* the first sync after start (cleans the supervisor's orphans) */
        GPtrArray *sync_waiters;    /* ListContainers calls answered after the sync */
        GHashTable *tombstones;     /* id → Tombstone* */
        GPtrArray *tombstone_order; /* ids (borrowed from tombstones' keys), oldest first */
        /* container-properties.c: the filter in front of Properties calls on container objects */
        sd_bus_slot *properties_filter;
};
typedef struct ContainerManager ContainerManager;

/* broker-containers.c */
int container_manager_setup(Manager *m);
void container_manager_free(Manager *m);
int method_create_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_containers(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_get_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* Asks the supervisor for its containers and mirrors them (coalesced); request (optional) is a
 * ListContainers call to answer afterwards. */
int containers_sync(Manager *m, sd_bus_message *request);
/* Called when c reached "stopped": --rm removal, then Wait/Stop callers. */
void container_on_stopped(Manager *m, ContainerRecord *c);
/* Starts DeleteContainer at the supervisor for c (force: kill first). Remove callers wait in
 * c->remove_waiters; the record goes once the supervisor answered. */
int container_begin_remove(Manager *m, ContainerRecord *c, bool force);

void container_tombstone_add(Manager *m, const ContainerRecord *c);
const Tombstone *container_tombstone_get(Manager *m, const char *id);

/* container-spec.c: Container.GetSpec after authorisation */
int container_get_spec_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error);

/* container-object.c */
/* Appends the value of property of c (its D-Bus type, as in the vtable); -ENOENT for an unknown one. */
int container_property_append(const ContainerRecord *c, const char *property, sd_bus_message *reply);
extern const sd_bus_vtable broker_container_vtable[];
int container_objects_register(Manager *m);
/* The container an object path names (NULL: none, or one still being created). */
ContainerRecord *container_from_path(Manager *m, const char *path);
/* Reads a container method's only argument, its flags, from the start; refused if any is not in known. */
int container_read_flags(sd_bus_message *m, uint64_t known, uint64_t *ret_flags, sd_bus_error *error);
/* container-exec.c: the bodies of Container.Exec, Attach and Top (authorised by container-object.c). */
int container_exec_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error);
/* Manager.ExecContainer: Container.Exec on the container a name, id or id prefix names (GetContainer's
 * lookup), with Exec's authorisation, in one call. */
int method_exec_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int container_attach_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error);
int container_top_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error);
/* container-io.c */
int container_resize_terminal_body(sd_bus_message *m, Manager *manager, ContainerRecord *c,
                                   sd_bus_error *error);
int container_kill_exec_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error);
/* Sends call (to the supervisor) and answers request with its reply, body and fds as they came, or
 * with an error naming what. 1, or what internal_reply_unreachable() answers. */
int container_forward_call(Manager *manager, sd_bus_message *request, sd_bus_message *call,
                           const char *what);
/* container-life.c: the bodies of Container.Pause/Unpause (by member name) and OpenLogStreams. */
int container_pause_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error);
int container_open_log_streams_body(sd_bus_message *m, Manager *manager, ContainerRecord *c,
                                    sd_bus_error *error);
char *container_object_path(const char *id);
/* PropertiesChanged for the state properties, to the owner's (and root's) subscribed connections only
 * (container-properties.c). */
void container_emit_changed(Manager *m, ContainerRecord *c);
/* container-properties.c: Properties Get/GetAll on container objects by anyone but the owner and root go
 * through polkit (container-manage-any); readers are subscribed to the owner's signals. */
int container_properties_register(Manager *m);
/* Answers Wait and Stop callers of a stopped container. */
void container_reply_waiters(ContainerRecord *c);
