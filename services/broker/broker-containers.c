/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Manager.CreateContainer and ListContainers, and the broker's mirror of the supervisor's containers.
 *
 * The broker keeps what only it knows (name, image, owner, the user's options, --rm) in its records;
 * the supervisor is the truth for the running state. The mirror follows the supervisor's
 * ContainerChanged signals and is re-read with its ListContainers whenever the broker starts, the
 * supervisor comes back (NameOwnerChanged) and a caller lists containers. */
#include <glib.h>
#include <stdio.h>
#include <time.h>

#include "broker-containers.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-polkit.h"
#include "bus-util.h"
#include "json-util.h"
#include "log.h"
#include "request.h"
#include "supervisor-client.h"
#include "container-event-feed.h"
#include "container-events.h"
#include "restart-parse.h"

static void message_unref_notify(void *p) {
        sd_bus_message_unref(p);
}

#define SUPERVISOR_DELETE_FLAG_FORCE (UINT64_C(1) << 0)
#define CREATE_FDS_MAX (3U + REQUEST_MOUNTS_MAX)

static bool str_in(const char *s, const char *a, const char *b, const char *c) {
        return streq(s, a) || streq(s, b) || (c && streq(s, c));
}

static uint64_t now_realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

/* ---- what the container objects (container-object.c) show -------------------------------------- */

char *container_object_path(const char *id) {
        char *p;

        return asprintf_safe(&p, "%s/%s", BERTH_BROKER_CONTAINER_PREFIX, id) < 0 ? NULL : p;
}

/* Wait(EXIT_ONLY) callers: the exit is known, whatever removal follows. */
static void reply_exit_waiters(ContainerRecord *c) {
        g_autoptr(GPtrArray) waiters = TAKE_PTR(c->exit_waiters);

        for (guint i = 0; waiters && i < waiters->len; i++)
                (void) sd_bus_reply_method_return(waiters->pdata[i], "is", c->exit_code, c->reason);
}

void container_reply_waiters(ContainerRecord *c) {
        g_autoptr(GPtrArray) waiters = TAKE_PTR(c->waiters);
        g_autoptr(GPtrArray) stoppers = TAKE_PTR(c->stop_waiters);

        reply_exit_waiters(c);
        for (guint i = 0; waiters && i < waiters->len; i++)
                (void) sd_bus_reply_method_return(waiters->pdata[i], "is", c->exit_code, c->reason);
        for (guint i = 0; stoppers && i < stoppers->len; i++)
                (void) sd_bus_reply_method_return(stoppers->pdata[i], "");
}

/* container_emit_changed() is in container-properties.c: signals go to the owner only. */

/* ---- CreateContainer ------------------------------------------------------------------------------ */

typedef struct CreateCall {
        Manager *manager;
        sd_bus_message *request; /* the public call */
        char *id;
} CreateCall;

static void create_call_free(CreateCall *cc) {
        if (!cc)
                return;
        sd_bus_message_unref(cc->request);
        free(cc->id);
        free(cc);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(CreateCall *, create_call_free);

static int create_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(create_call_freep) CreateCall *cc = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *out = NULL;
        ContainerManager *cm = cc->manager->containers;
        _cleanup_free_ char *path = NULL;
        ContainerRecord *c;
        int r;

        c = container_store_get(cm->store, cc->id);
        if (!c || !c->creating) {
                /* Cannot happen: nothing else removes a record that is being created. */
                (void) sd_bus_reply_method_errorf(cc->request, BERTH_ERROR_IO, "Container vanished.");
                return 0;
        }
        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                log_info("Creating container %s ('%s') failed: %s", c->id, c->name,
                         strna(e ? e->message : NULL));
                (void) container_store_remove(cm->store, cc->id);
                (void) bus_reply_internal_error(cc->request, e, "Creating the container");
                return 0;
        }

        c->creating = false;
        free(c->status);
        c->status = strdup("created");
        if (!c->status)
                goto fail_oom;
        r = container_store_save(cm->store, c);
        if (r < 0) {
                log_error_errno(r, "Failed to write the record of container %s: %m", c->id);
                /* Nothing may be left behind: the supervisor's container goes too. */
                (void) supervisor_call(cc->manager, NULL, 0, NULL, NULL, "DeleteContainer", "st", c->id,
                                       SUPERVISOR_DELETE_FLAG_FORCE);
                (void) container_store_remove(cm->store, cc->id);
                (void) sd_bus_reply_method_errorf(cc->request, BERTH_ERROR_IO,
                                                  "Cannot write the container record: %s", strerror(-r));
                return 0;
        }
        log_info("Created container %s ('%s', image '%s') for uid %u.", c->id, c->name, c->image,
                 (unsigned) c->owner);
        container_event_created(cc->manager, c);

        path = container_object_path(c->id);
        if (!path)
                goto fail_oom;
        r = sd_bus_message_new_method_return(cc->request, &out);
        if (r >= 0)
                r = sd_bus_message_append(out, "o", path);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "h");
        if (r >= 0)
                r = sd_bus_message_open_container(out, 'a', "h");
        while (r >= 0) {
                int fd;

                r = sd_bus_message_read(reply, "h", &fd);
                if (r <= 0)
                        break;
                r = sd_bus_message_append(out, "h", fd);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(out);
        if (r >= 0)
                r = sd_bus_send(NULL, out, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to answer CreateContainer for %s: %m", c->id);
        return 0;

fail_oom:
        (void) sd_bus_reply_method_errno(cc->request, ENOMEM, NULL);
        return 0;
}

/* Copies the caller's a{sh} to the supervisor's call, checking each key: "stdin", "stdout", "stderr" and
 * "mount<N>" only. */
static int copy_fds(sd_bus_message *from, sd_bus_message *to, sd_bus_error *error) {
        unsigned n = 0;
        int r;

        r = sd_bus_message_enter_container(from, 'a', "{sh}");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(to, 'a', "{sh}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key;
                int fd;

                r = sd_bus_message_read(from, "{sh}", &key, &fd);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (++n > CREATE_FDS_MAX)
                        return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many file descriptors.");
                if (!str_in(key, "stdin", "stdout", "stderr")) {
                        const char *p = g_str_has_prefix(key, "mount") ? key + 5 : NULL;

                        if (!p || !*p || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p))
                                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                                         "Unknown file descriptor name '%s'.", key);
                }
                r = sd_bus_message_append(to, "{sh}", key, fd);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_exit_container(from);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(to);
}

/* The user's options (a JSON object of the request's user fields) become the supervisor's request: the
 * broker adds name, owner and image_config, and validates the whole with the supervisor's own parser,
 * so a bad option is refused here with the field named, before anything exists. */
static int build_request(const char *options, const char *name, uid_t owner, const char *config_digest,
                         char **ret_request, ContainerRequest **ret_parsed, sd_bus_error *error) {
        _cleanup_(container_request_freep) ContainerRequest *parsed = NULL;
        _cleanup_json_node_ JsonNode *node = NULL;
        _cleanup_free_ char *msg = NULL, *text = NULL;
        JsonObject *o;
        int r;

        r = json_parse_bounded(options, strlen(options), REQUEST_SIZE_MAX, &node, &msg);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid options: %s", strna(msg));
        if (!JSON_NODE_HOLDS_OBJECT(node))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                         "Invalid options: not a JSON object.");
        o = json_node_get_object(node);
        /* SECURITY: these three are the broker's to set: the owner is the caller's uid, the config is
         * the one of the image the caller named, the name is checked for uniqueness here. */
        if (json_object_has_member(o, "name") || json_object_has_member(o, "owner") ||
            json_object_has_member(o, "image_config"))
                return sd_bus_error_setf(
                        error, BERTH_ERROR_INVALID_ARGS,
                        "Invalid options: 'name', 'owner' and 'image_config' are not options.");
        json_object_set_string_member(o, "name", name);
        json_object_set_int_member(o, "owner", owner);
        json_object_set_string_member(o, "image_config", config_digest);
        text = json_to_string_compact(node);
        if (!text)
                return -ENOMEM;
        r = container_request_parse(text, strlen(text), &parsed, &msg);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid options: %s", strna(msg));
        *ret_request = TAKE_PTR(text);
        *ret_parsed = TAKE_PTR(parsed);
        return 0;
}

static int pick_name(ContainerStore *store, const char *wanted, char **ret, sd_bus_error *error) {
        if (!isempty(wanted)) {
                if (!container_name_valid(wanted))
                        return sd_bus_error_setf(
                                error, BERTH_ERROR_INVALID_ARGS,
                                "Invalid container name '%s': use [a-zA-Z0-9][a-zA-Z0-9_.-]*, "
                                "at most %u characters.",
                                wanted, CONTAINER_NAME_MAX);
                if (container_store_by_name(store, wanted))
                        return sd_bus_error_setf(error, BERTH_ERROR_EXISTS,
                                                 "A container named '%s' exists already.", wanted);
                *ret = strdup(wanted);
                return *ret ? 0 : -ENOMEM;
        }
        for (unsigned i = 0; i < 64; i++) {
                _cleanup_free_ char *n = container_name_generate();

                if (!n)
                        return -ENOMEM;
                if (i >= 16) {
                        /* A crowded host: a numbered name. */
                        char *numbered = g_strdup_printf("%s_%u", n, g_random_int_range(0, 100000));

                        free(n);
                        n = numbered;
                }
                if (!container_store_by_name(store, n)) {
                        *ret = TAKE_PTR(n);
                        return 0;
                }
        }
        return sd_bus_error_setf(error, BERTH_ERROR_EXISTS, "Cannot find a free container name.");
}

static int create_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error);

/* CreateContainer calls that waited for a --rm container's name (see create_authorized()): the name is
 * free now, or the removal failed and they get Exists. They were authorised already. */
static void run_name_waiters(Manager *manager, GPtrArray *waiters) {
        for (guint i = 0; waiters && i < waiters->len; i++) {
                _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
                sd_bus_message *m = waiters->pdata[i];
                int r = create_authorized(m, manager, NULL, &error);

                if (r < 0)
                        (void) bus_reply_errno(m, r, &error);
        }
}

static int create_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        _cleanup_(container_request_freep) ContainerRequest *parsed = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(container_record_freep) ContainerRecord *c = NULL;
        _cleanup_(create_call_freep) CreateCall *cc = NULL;
        _cleanup_free_ char *name = NULL, *request = NULL;
        ContainerManager *cm = manager->containers;
        const char *image, *wanted_name, *options, *sender;
        char id[CONTAINER_ID_HEX_LEN + 1];
        const ImagePlatform *p;
        uint64_t flags;
        Image *img;
        uid_t uid;
        int r;

        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        sender = sd_bus_message_get_sender(m);
        if (!sender)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's bus name.");
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sss", &image, &wanted_name, &options);
        if (r < 0)
                return r;
        /* The fds come next; flags are read after them. */
        r = sd_bus_message_skip(m, "a{sh}");
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, CREATE_CONTAINER_FLAG_AUTO_REMOVE, error);
        if (r < 0)
                return r;

        r = broker_lookup_image(manager, image, &img, error);
        if (r < 0)
                return r;
        p = broker_image_platform(img, NULL);
        if (!p)
                return sd_bus_error_setf(error, BERTH_ERROR_IMAGE_NOT_RUNNABLE,
                                         "Image '%s' has no variant for this machine's platform.",
                                         img->name);
        if (!p->unpacked)
                return sd_bus_error_setf(
                        error, BERTH_ERROR_NOT_FOUND,
                        "Image '%s' is not unpacked: run 'berthctl images unpack %s' first.", img->name,
                        img->name);
        if (container_store_count(cm->store) >= BROKER_CONTAINERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many containers (%u).",
                                         BROKER_CONTAINERS_MAX);
        if (!isempty(wanted_name)) {
                ContainerRecord *holder = container_store_by_name(cm->store, wanted_name);

                /* The name of a --rm container that exited and is being removed is free in a moment (an
                 * attached `run --rm` returns at the exit): this call waits for it rather than failing
                 * with Exists, so `run --rm --name x` twice in a row works. */
                if (holder && holder->auto_remove && holder->removing && streq(holder->status, "stopped")) {
                        if (!holder->name_waiters)
                                holder->name_waiters = g_ptr_array_new_with_free_func(message_unref_notify);
                        if (holder->name_waiters->len >= CONTAINER_WAITERS_MAX)
                                return sd_bus_error_setf(error, BERTH_ERROR_EXISTS,
                                                         "A container named '%s' exists already.",
                                                         wanted_name);
                        g_ptr_array_add(holder->name_waiters, sd_bus_message_ref(m));
                        return 1;
                }
        }
        r = pick_name(cm->store, wanted_name, &name, error);
        if (r < 0)
                return r;
        r = build_request(isempty(options) ? "{}" : options, name, uid, p->config_digest, &request, &parsed,
                          error);
        if (r < 0)
                return r;
        {
                RestartPolicy rp;
                /* docker's rule: a container removed at its exit cannot be restarted. */
                if ((flags & CREATE_CONTAINER_FLAG_AUTO_REMOVE) &&
                    restart_policy_parse(parsed->restart, &rp) >= 0 && rp.mode != RESTART_NO)
                        return sd_bus_error_setf(
                                error, BERTH_ERROR_INVALID_ARGS,
                                "Invalid options: a restart policy and --rm cannot be combined.");
        }
        r = container_id_generate(id);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->id = strdup(id);
        c->name = TAKE_PTR(name);
        c->image = strdup(img->name);
        c->image_digest = strdup(img->target_digest ?: "");
        c->config_digest = strdup(p->config_digest);
        c->platform = strdup(p->platform ?: "");
        c->owner = uid;
        c->auto_remove = flags & CREATE_CONTAINER_FLAG_AUTO_REMOVE;
        c->tty = parsed->tty;
        c->detach = parsed->detach;
        c->options = strdup(isempty(options) ? "{}" : options);
        c->status = strdup("creating");
        c->reason = strdup("");
        c->created_at = now_realtime_usec();
        c->creating = true;
        if (!c->id || !c->image || !c->image_digest || !c->config_digest || !c->platform || !c->options ||
            !c->status || !c->reason)
                return -ENOMEM;

        /* The supervisor's call: id, request, the caller's fds, the caller's bus name (the supervisor asks
         * polkit about privileged options itself, with this subject). */
        r = supervisor_new_call(manager, &call, "CreateContainer");
        if (r < 0)
                return internal_error_unreachable(&internal_supervisor, r, error);
        r = sd_bus_message_append(call, "ss", id, request);
        if (r < 0)
                return r;
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_skip(m, "sss");
        if (r < 0)
                return r;
        r = copy_fds(m, call, error);
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "st", sender, UINT64_C(0));
        if (r < 0)
                return r;

        cc = calloc(1, sizeof(*cc));
        if (!cc)
                return -ENOMEM;
        cc->manager = manager;
        cc->request = sd_bus_message_ref(m);
        cc->id = strdup(id);
        if (!cc->id)
                return -ENOMEM;
        r = container_store_add(cm->store, &c);
        if (r == -EEXIST)
                return sd_bus_error_setf(error, BERTH_ERROR_EXISTS,
                                         "A container with that name or id exists.");
        if (r < 0)
                return r;
        /* A creation that polkit may have to ask about takes long: no internal timeout beyond the
         * supervisor's own. */
        r = internal_call_send(manager, call, NULL, UINT64_C(300) * UINT64_C(1000000), create_reply, cc);
        if (r < 0) {
                (void) container_store_remove(cm->store, id);
                return internal_error_unreachable(&internal_supervisor, r, error);
        }
        TAKE_PTR(cc);
        return 1;
}

int method_create_container(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *image, *name;
        int r;

        r = sd_bus_message_read(m, "ss", &image, &name);
        if (r < 0)
                return r;
        const char *details[] = { "image", image, "name", name, NULL };
        return broker_authorize(m, details, create_authorized, userdata, NULL, 0, NULL, error);
}

/* ---- ListContainers ------------------------------------------------------------------------------- */

static int append_record(sd_bus_message *reply, const ContainerRecord *c) {
        _cleanup_free_ char *path = container_object_path(c->id);

        if (!path)
                return -ENOMEM;
        return sd_bus_message_append(reply, "(ssssuisuttto)", c->id, c->name, c->image, c->status, c->pid,
                                     c->exit_code, c->reason, (uint32_t) c->owner, c->created_at,
                                     c->started_at, c->finished_at, path);
}

static int reply_list(Manager *manager, sd_bus_message *m) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ ContainerRecord **list = NULL;
        uint64_t flags = 0;
        size_t n = 0;
        uid_t uid;
        int r;

        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_reply_method_errorf(m, BERTH_ERROR_ACCESS_DENIED,
                                                  "Cannot establish the caller's identity.");
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "t", &flags);
        if (r >= 0)
                r = container_store_list(manager->containers->store, &list, &n);
        if (r >= 0)
                r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssssuisuttto)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                /* SECURITY: a member sees their own containers; root, and a caller polkit allowed
                 * container-manage-any (the ALL_USERS flag), everyone's. */
                if (list[i]->creating ||
                    (uid != 0 && !(flags & LIST_CONTAINERS_FLAG_ALL_USERS) && list[i]->owner != uid))
                        continue;
                r = append_record(reply, list[i]);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return sd_bus_reply_method_errno(m, -r, NULL);
        return 1;
}

static int list_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        uint64_t flags;
        int r;

        /* After polkit, as every method: a caller not allowed to list learns nothing more. */
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, LIST_CONTAINERS_FLAG_ALL_USERS, error);
        if (r < 0)
                return r;
        /* The supervisor is the truth: re-read it first, then answer from the mirror. */
        r = containers_sync(manager, m);
        if (r < 0)
                return reply_list(manager, m);
        return 1;
}

static int list_all_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return list_authorized(m, userdata, NULL, error);
}

int method_list_containers(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        /* Unknown flags are refused once authorised (list_authorized). */
        if (flags & LIST_CONTAINERS_FLAG_ALL_USERS)
                /* SECURITY: everyone's containers: whoever may manage them all may see them all. */
                return bus_error_from_errno(
                        error, bus_polkit_check_async(m, BERTH_ACTION_CONTAINER_MANAGE_ANY, NULL,
                                                      list_all_authorized, userdata, error));
        return broker_authorize(m, NULL, list_authorized, userdata, NULL, 0, NULL, error);
}

/* ---- GetContainer ---------------------------------------------------------------------------------- */

static int get_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        const char *name;
        ContainerRecord *c;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        c = container_store_lookup(manager->containers->store, name);
        if (!c || c->creating)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No container '%s'.", name);
        path = container_object_path(c->id);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "o", path);
}

int method_get_container(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, get_authorized, userdata, NULL, 0, NULL, error);
}

/* ---- the mirror of the supervisor's state --------------------------------------------------------- */

static bool set_string(char **field, const char *value) {
        char *copy;

        if (streq_ptr(*field, value))
                return false;
        copy = strdup(value);
        if (!copy)
                return false;
        free(*field);
        *field = copy;
        return true;
}

/* SECURITY: the supervisor is another process; what it reports about a container is checked before the
 * broker keeps it or publishes it as properties. */
#define SUPERVISOR_REASON_MAX 1024U

static bool supervisor_state_valid(const char *id, const char *status, const char *reason) {
        if (!container_id_valid(id)) {
                log_warning("The supervisor reported an invalid container id: ignored.");
                return false;
        }
        if (!status || !container_status_known(status)) {
                log_warning("The supervisor reported an unknown status for %s: ignored.", id);
                return false;
        }
        if (reason && (strlen(reason) > SUPERVISOR_REASON_MAX || !g_utf8_validate(reason, -1, NULL))) {
                log_warning("The supervisor reported an invalid reason for %s: ignored.", id);
                return false;
        }
        return true;
}

/* Applies one of the supervisor's states to c; returns whether anything changed. */
static bool apply_state(ContainerRecord *c, const char *status, int32_t exit_code, const char *reason) {
        bool changed = false;

        if (!container_status_known(status))
                return false;
        changed |= set_string(&c->status, status);
        changed |= set_string(&c->reason, reason ?: "");
        if (c->exit_code != exit_code) {
                c->exit_code = exit_code;
                changed = true;
        }
        if (streq(status, "stopped")) {
                if (c->pid != 0)
                        changed = true;
                c->pid = 0;
                if (c->finished_at == 0) {
                        c->finished_at = now_realtime_usec();
                        changed = true;
                }
        }
        return changed;
}

static void apply_and_notify(Manager *manager, ContainerRecord *c, bool changed, bool was_stopped) {
        if (!changed)
                return;
        container_emit_changed(manager, c);
        container_event_state(manager, c);
        if (!was_stopped && streq(c->status, "stopped"))
                container_on_stopped(manager, c);
}

static int on_name_owner(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Manager *manager = userdata;
        const char *owner;

        manager->containers->owner_query = sd_bus_slot_unref(manager->containers->owner_query);
        /* NameOwnerChanged may have told us already (it is newer). */
        if (manager->containers->supervisor_owner || sd_bus_message_is_method_error(reply, NULL) ||
            sd_bus_message_read(reply, "s", &owner) < 0)
                return 0;
        manager->containers->supervisor_owner = strdup(owner);
        return 0;
}

static int on_container_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *manager = userdata;
        const char *id, *status, *reason;
        ContainerRecord *c;
        int32_t exit_code;
        bool was_stopped;
        int r;

        /* SECURITY: only the current owner of org.berth.Supervisor1 (a name only the supervisor's user may
         * own) speaks for the containers; while the owner is not known yet, the signal only prompts a
         * re-read of the supervisor's list. */
        if (!manager->containers->supervisor_owner ||
            !streq_ptr(sd_bus_message_get_sender(msg), manager->containers->supervisor_owner)) {
                (void) containers_sync(manager, NULL);
                return 0;
        }
        r = sd_bus_message_read(msg, "ssis", &id, &status, &exit_code, &reason);
        if (r < 0) {
                log_warning_errno(r, "Cannot parse the supervisor's ContainerChanged: %m");
                return 0;
        }
        if (!supervisor_state_valid(id, status, reason))
                return 0;
        c = container_store_get(manager->containers->store, id);
        if (!c || c->creating)
                return 0;
        was_stopped = streq(c->status, "stopped");
        apply_and_notify(manager, c, apply_state(c, status, exit_code, reason), was_stopped);
        /* The signal does not carry the pid and the times: re-read them. */
        if (streq(status, "running"))
                (void) containers_sync(manager, NULL);
        return 0;
}

static int on_supervisor_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *manager = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 ||
            !streq(name, BERTH_SUPERVISOR_NAME))
                return 0;
        free(manager->containers->supervisor_owner);
        manager->containers->supervisor_owner = isempty(new_owner) ? NULL : strdup(new_owner);
        /* A supervisor that (re)started re-adopted its shims and knows the exits it missed. */
        if (!isempty(new_owner)) {
                (void) containers_sync(manager, NULL);
                container_event_feed_read(manager); /* and recorded them in its journal */
        }
        return 0;
}

/* The fields of one entry of the supervisor's ListContainers. */
typedef struct SupervisorEntry {
        const char *status, *reason, *health;
        uint32_t pid;
        int32_t exit_code;
        uint64_t created_at, started_at, finished_at;
        uint32_t restart_count;
} SupervisorEntry;

static int read_entry(sd_bus_message *reply, SupervisorEntry *e) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "Status"))
                        r = sd_bus_message_read(reply, "v", "s", &e->status);
                else if (streq(key, "Reason"))
                        r = sd_bus_message_read(reply, "v", "s", &e->reason);
                else if (streq(key, "Pid"))
                        r = sd_bus_message_read(reply, "v", "u", &e->pid);
                else if (streq(key, "ExitCode"))
                        r = sd_bus_message_read(reply, "v", "i", &e->exit_code);
                else if (streq(key, "CreatedAt"))
                        r = sd_bus_message_read(reply, "v", "t", &e->created_at);
                else if (streq(key, "StartedAt"))
                        r = sd_bus_message_read(reply, "v", "t", &e->started_at);
                else if (streq(key, "FinishedAt"))
                        r = sd_bus_message_read(reply, "v", "t", &e->finished_at);
                else if (streq(key, "Health"))
                        r = sd_bus_message_read(reply, "v", "s", &e->health);
                else if (streq(key, "RestartCount"))
                        r = sd_bus_message_read(reply, "v", "u", &e->restart_count);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(reply);
}

static void finish_sync(Manager *manager) {
        ContainerManager *cm = manager->containers;
        g_autoptr(GPtrArray) waiters = TAKE_PTR(cm->sync_waiters);

        cm->sync_waiters = g_ptr_array_new_with_free_func(message_unref_notify);
        for (guint i = 0; waiters && i < waiters->len; i++)
                (void) reply_list(manager, waiters->pdata[i]);
        if (cm->sync_again) {
                cm->sync_again = false;
                (void) containers_sync(manager, NULL);
        }
}

static int sync_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Manager *manager = userdata;
        ContainerManager *cm = manager->containers;
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        _cleanup_free_ ContainerRecord **list = NULL;
        bool first = !cm->synced_once;
        size_t n = 0;
        int r;

        cm->sync_slot = sd_bus_slot_unref(cm->sync_slot);
        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                log_warning("Cannot read the supervisor's containers: %s", strna(e ? e->message : NULL));
                finish_sync(manager);
                return 0;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sa{sv})");
        while (r >= 0) {
                SupervisorEntry e = { .reason = "" };
                ContainerRecord *c;
                const char *id;
                bool changed, was_stopped;

                r = sd_bus_message_enter_container(reply, 'r', "sa{sv}");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &id);
                if (r >= 0)
                        r = read_entry(reply, &e);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0 || !e.status)
                        break;
                if (!container_id_valid(id)) {
                        log_warning("The supervisor listed an invalid container id: ignored.");
                        continue;
                }
                g_hash_table_add(seen, g_strdup(id));
                if (!supervisor_state_valid(id, e.status, e.reason))
                        continue;
                c = container_store_get(cm->store, id);
                if (!c) {
                        /* SECURITY: a container the broker has no record of cannot be reached by anyone
                         * (it has no owner here): the leftover of a broker that died mid-create. */
                        if (first) {
                                log_info("Removing container %s: the broker has no record of it.", id);
                                (void) supervisor_call(manager, NULL, 0, NULL, NULL, "DeleteContainer", "st",
                                                       id, SUPERVISOR_DELETE_FLAG_FORCE);
                        }
                        continue;
                }
                if (c->creating)
                        continue;
                was_stopped = streq(c->status, "stopped");
                changed = apply_state(c, e.status, e.exit_code, e.reason);
                if (c->pid != e.pid) {
                        c->pid = e.pid;
                        changed = true;
                }
                if (e.started_at && c->started_at != e.started_at) {
                        c->started_at = e.started_at;
                        changed = true;
                }
                if (e.finished_at && c->finished_at != e.finished_at) {
                        c->finished_at = e.finished_at;
                        changed = true;
                }
                /* Only the health states the supervisor knows (health.c), never its text as it came. */
                if ((!e.health || !*e.health || str_in(e.health, "starting", "healthy", "unhealthy")) &&
                    set_string(&c->health, e.health ?: "")) {
                        changed = true;
                        container_event_health(manager, c);
                }
                if (c->restart_count != e.restart_count) {
                        c->restart_count = e.restart_count;
                        changed = true;
                }
                apply_and_notify(manager, c, changed, was_stopped);
                /* A --rm container whose removal failed or was cut short (a service restarted): again. */
                if (c->auto_remove && !c->removing && streq(c->status, "stopped"))
                        (void) container_begin_remove(manager, c, true);
        }
        if (r < 0)
                log_warning_errno(r, "Cannot parse the supervisor's container list: %m");
        else {
                cm->synced_once = true;
                /* Records the supervisor no longer knows: their containers are gone (a reboot empties
                 * /run/berth). Kept as stopped, "lost", until removed; --rm ones go now. */
                r = container_store_list(cm->store, &list, &n);
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        ContainerRecord *c = list[i];
                        bool was_stopped;

                        if (c->creating || c->removing || g_hash_table_contains(seen, c->id))
                                continue;
                        was_stopped = streq(c->status, "stopped");
                        if (was_stopped && streq(c->reason, "lost"))
                                continue;
                        log_info("Container %s ('%s') is gone from the supervisor.", c->id, c->name);
                        apply_state(c, "stopped", c->exit_code, was_stopped ? c->reason : "lost");
                        container_emit_changed(manager, c);
                        container_event_state(manager, c);
                        if (!was_stopped)
                                container_on_stopped(manager, c);
                        else if (c->auto_remove)
                                (void) container_begin_remove(manager, c, true);
                }
        }
        finish_sync(manager);
        return 0;
}

int containers_sync(Manager *manager, sd_bus_message *request) {
        ContainerManager *cm = manager->containers;
        int r;

        if (request)
                g_ptr_array_add(cm->sync_waiters, sd_bus_message_ref(request));
        if (cm->sync_slot) {
                /* One in flight: it may predate what prompted this one; read again afterwards. */
                cm->sync_again = true;
                return 0;
        }
        r = supervisor_call(manager, &cm->sync_slot, 0, sync_reply, manager, "ListContainers", NULL);
        if (r < 0) {
                log_warning_errno(r, "Cannot ask the supervisor for its containers: %m");
                if (request)
                        g_ptr_array_remove(cm->sync_waiters, request);
                return r;
        }
        return 0;
}

/* ---- stop and removal ------------------------------------------------------------------------------ */

typedef struct RemoveCall {
        Manager *manager;
        char *id;
} RemoveCall;

static void finish_remove(Manager *manager, ContainerRecord *c) {
        g_autoptr(GPtrArray) removers = TAKE_PTR(c->remove_waiters);
        g_autoptr(GPtrArray) creators = TAKE_PTR(c->name_waiters);

        container_reply_waiters(c);
        for (guint i = 0; removers && i < removers->len; i++)
                (void) sd_bus_reply_method_return(removers->pdata[i], "");
        log_info("Removed container %s ('%s').", c->id, c->name);
        container_event_simple(manager, c, "destroy");
        container_tombstone_add(manager, c);
        (void) container_store_remove(manager->containers->store, c->id);
        run_name_waiters(manager, creators);
}

static int remove_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        RemoveCall *rc = userdata;
        Manager *manager = rc->manager;
        ContainerRecord *c = container_store_get(manager->containers->store, rc->id);

        free(rc->id);
        free(rc);
        if (!c)
                return 0;
        if (sd_bus_message_is_method_error(reply, NULL) &&
            !sd_bus_message_is_method_error(reply, BERTH_ERROR_NOT_FOUND)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                g_autoptr(GPtrArray) removers = TAKE_PTR(c->remove_waiters);
                g_autoptr(GPtrArray) creators = TAKE_PTR(c->name_waiters);

                log_warning("Removing container %s failed: %s", c->id, strna(e ? e->message : NULL));
                c->removing = false;
                run_name_waiters(manager, creators);
                for (guint i = 0; removers && i < removers->len; i++)
                        (void) bus_reply_internal_error(removers->pdata[i], e, "Removing the container");
                if (c->auto_remove && streq(c->status, "stopped"))
                        container_reply_waiters(c);
                return 0;
        }
        /* Removed, or the supervisor had forgotten it already. */
        if (!streq(c->status, "stopped"))
                apply_state(c, "stopped", c->exit_code, c->reason);
        finish_remove(manager, c);
        return 0;
}

int container_begin_remove(Manager *manager, ContainerRecord *c, bool force) {
        RemoveCall *rc;
        int r;

        if (c->removing)
                return 0;
        rc = calloc(1, sizeof(*rc));
        if (!rc)
                return -ENOMEM;
        rc->manager = manager;
        rc->id = strdup(c->id);
        if (!rc->id) {
                free(rc);
                return -ENOMEM;
        }
        /* Removal kills first when forced and waits for the exit: no timeout. */
        r = supervisor_call(manager, NULL, UINT64_MAX, remove_reply, rc, "DeleteContainer", "st", c->id,
                            force ? SUPERVISOR_DELETE_FLAG_FORCE : 0);
        if (r < 0) {
                free(rc->id);
                free(rc);
                return r;
        }
        c->removing = true;
        return 0;
}

void container_on_stopped(Manager *manager, ContainerRecord *c) {
        int r;

        c->stop_timer = sd_event_source_disable_unref(c->stop_timer);
        if (c->stop_waiters && c->stop_waiters->len > 0)
                container_event_simple(manager, c, "stop");
        /* A foreground `run --rm` needs the exit status, not the end of the removal (an overlay unmount
         * waits for an RCU grace period): it learns the exit now. The removal still always happens: the
         * record says auto_remove, and containers_sync() starts it again after a crash of either side. */
        reply_exit_waiters(c);
        if (c->auto_remove) {
                /* --rm: Wait callers learn the exit once the container is gone, so a `run --rm` that
                 * returned leaves nothing behind. */
                if (c->removing)
                        return;
                r = container_begin_remove(manager, c, true);
                if (r >= 0)
                        return;
                log_warning_errno(r, "Cannot remove container %s after its exit: %m", c->id);
        }
        container_reply_waiters(c);
}

/* ---- tombstones ------------------------------------------------------------------------------------- */

static void tombstone_free(void *p) {
        Tombstone *t = p;

        if (!t)
                return;
        free(t->reason);
        free(t);
}

void container_tombstone_add(Manager *manager, const ContainerRecord *c) {
        ContainerManager *cm = manager->containers;
        Tombstone *t;
        char *id;

        /* One per id: a replaced key would be freed while tombstone_order still points at it. */
        if (g_hash_table_contains(cm->tombstones, c->id))
                return;
        /* The oldest goes first: a Wait that comes later than TOMBSTONES_MAX removals is NotFound. */
        while (cm->tombstone_order->len >= TOMBSTONES_MAX) {
                g_hash_table_remove(cm->tombstones, cm->tombstone_order->pdata[0]);
                g_ptr_array_remove_index(cm->tombstone_order, 0);
        }
        t = calloc(1, sizeof(*t));
        id = strdup(c->id);
        if (!t || !id || !(t->reason = strdup(c->reason))) {
                tombstone_free(t);
                free(id);
                return;
        }
        t->owner = c->owner;
        t->exit_code = c->exit_code;
        g_hash_table_replace(cm->tombstones, id, t);
        g_ptr_array_add(cm->tombstone_order, id);
}

const Tombstone *container_tombstone_get(Manager *manager, const char *id) {
        return id ? g_hash_table_lookup(manager->containers->tombstones, id) : NULL;
}

/* ---- set-up ---------------------------------------------------------------------------------------- */

int container_manager_setup(Manager *m) {
        ContainerManager *cm;
        int r;

        cm = calloc(1, sizeof(*cm));
        if (!cm)
                return log_oom();
        m->containers = cm;
        cm->manager = m;
        cm->sync_waiters = g_ptr_array_new_with_free_func(message_unref_notify);
        cm->tombstones = g_hash_table_new_full(g_str_hash, g_str_equal, free, tombstone_free);
        cm->tombstone_order = g_ptr_array_new();
        r = container_store_open(m->state_dir, &cm->store);
        if (r < 0)
                return log_error_errno(r, "Failed to open the container records under '%s/meta': %m",
                                       m->state_dir);
        /* Any sender may emit a signal with this path and interface: on_container_changed() checks that it
         * is the owner of org.berth.Supervisor1, which NameOwnerChanged and GetNameOwner tell. */
        r = sd_bus_match_signal(m->bus, &cm->changed_match, NULL, BERTH_SUPERVISOR_PATH,
                                BERTH_SUPERVISOR_IFACE, "ContainerChanged", on_container_changed, m);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to the supervisor's ContainerChanged: %m");
        r = sd_bus_add_match(m->bus, &cm->owner_match,
                             "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                             "arg0='" BERTH_SUPERVISOR_NAME "'",
                             on_supervisor_owner_changed, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the supervisor's name: %m");
        r = sd_bus_call_method_async(m->bus, &cm->owner_query, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner",
                                     on_name_owner, m, "s", BERTH_SUPERVISOR_NAME);
        if (r < 0)
                return log_error_errno(r, "Failed to ask for the supervisor's bus name: %m");
        if (container_store_count(cm->store) > 0)
                /* The broker may have been restarted: what happened meanwhile is the supervisor's to say.
                 * Without records there is nothing to reconcile and no reason to start the supervisor. */
                (void) containers_sync(m, NULL);
        return 0;
}

void container_manager_free(Manager *m) {
        ContainerManager *cm = m->containers;

        if (!cm)
                return;
        cm->changed_match = sd_bus_slot_unref(cm->changed_match);
        cm->owner_match = sd_bus_slot_unref(cm->owner_match);
        cm->owner_query = sd_bus_slot_unref(cm->owner_query);
        free(cm->supervisor_owner);
        cm->vtable_slot = sd_bus_slot_unref(cm->vtable_slot);
        cm->enumerator_slot = sd_bus_slot_unref(cm->enumerator_slot);
        cm->properties_filter = sd_bus_slot_unref(cm->properties_filter);
        cm->sync_slot = sd_bus_slot_unref(cm->sync_slot);
        if (cm->sync_waiters)
                g_ptr_array_unref(cm->sync_waiters);
        cm->store = container_store_free(cm->store);
        if (cm->tombstones)
                g_hash_table_destroy(cm->tombstones);
        if (cm->tombstone_order)
                g_ptr_array_unref(cm->tombstone_order);
        free(cm);
        m->containers = NULL;
}
