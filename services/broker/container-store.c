/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "container-store.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"

#define RECORD_SCHEMA 1

struct ContainerStore {
        int dir_fd;
        GHashTable *by_id; /* id → ContainerRecord* (owned) */
};

ContainerRecord *container_record_free(ContainerRecord *c) {
        if (!c)
                return NULL;
        free(c->id);
        free(c->event_status);
        free(c->name);
        free(c->image);
        free(c->image_digest);
        free(c->config_digest);
        free(c->platform);
        free(c->options);
        free(c->status);
        free(c->reason);
        free(c->health);
        if (c->waiters)
                g_ptr_array_unref(c->waiters);
        if (c->exit_waiters)
                g_ptr_array_unref(c->exit_waiters);
        if (c->name_waiters)
                g_ptr_array_unref(c->name_waiters);
        if (c->stop_waiters)
                g_ptr_array_unref(c->stop_waiters);
        if (c->remove_waiters)
                g_ptr_array_unref(c->remove_waiters);
        sd_event_source_disable_unref(c->stop_timer);
        return mfree(c);
}

static void record_free_notify(void *p) {
        container_record_free(p);
}

bool container_id_valid(const char *id) {
        if (!id || strlen(id) != CONTAINER_ID_HEX_LEN)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

bool container_name_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > CONTAINER_NAME_MAX || !g_ascii_isalnum(name[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!g_ascii_isalnum(name[i]) && !strchr("_.-", name[i]))
                        return false;
        return true;
}

int container_id_generate(char ret[static CONTAINER_ID_HEX_LEN + 1]) {
        uint8_t b[CONTAINER_ID_HEX_LEN / 2];
        ssize_t n;

        n = getrandom(b, sizeof(b), 0);
        if (n < 0)
                return -errno;
        if ((size_t) n != sizeof(b))
                return -EIO;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(ret + 2 * i, 3, "%02x", b[i]);
        return 0;
}

char *container_name_generate(void) {
        static const char *const adjectives[] = {
                "amber", "brave", "calm",   "dapper", "eager", "fancy", "gentle", "happy", "jolly", "keen",
                "lucid", "merry", "nimble", "proud",  "quiet", "rapid", "serene", "tidy",  "vivid", "witty",
        };
        static const char *const nouns[] = {
                "anchor", "buoy", "cove", "dock", "ferry",  "galley", "harbor", "jetty", "keel",  "lagoon",
                "mast",   "oar",  "pier", "quay", "rudder", "sail",   "tide",   "wharf", "yacht", "skiff",
        };
        uint32_t v;

        if (getrandom(&v, sizeof(v), 0) != sizeof(v))
                v = g_random_int();
        return g_strdup_printf("%s_%s", adjectives[v % ELEMENTSOF(adjectives)],
                               nouns[(v / ELEMENTSOF(adjectives)) % ELEMENTSOF(nouns)]);
}

JsonNode *container_record_to_json(const ContainerRecord *c) {
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "schema_version");
        json_builder_add_int_value(b, RECORD_SCHEMA);
#define S(k, v)                                                                                             \
        do {                                                                                                \
                json_builder_set_member_name(b, k);                                                         \
                json_builder_add_string_value(b, v ?: "");                                                  \
        } while (0)
#define I(k, v)                                                                                             \
        do {                                                                                                \
                json_builder_set_member_name(b, k);                                                         \
                json_builder_add_int_value(b, v);                                                           \
        } while (0)
#define B(k, v)                                                                                             \
        do {                                                                                                \
                json_builder_set_member_name(b, k);                                                         \
                json_builder_add_boolean_value(b, v);                                                       \
        } while (0)
        S("id", c->id);
        S("name", c->name);
        S("image", c->image);
        S("image_digest", c->image_digest);
        S("config_digest", c->config_digest);
        S("platform", c->platform);
        I("owner", c->owner);
        B("auto_remove", c->auto_remove);
        B("tty", c->tty);
        B("detach", c->detach);
        S("options", c->options);
        S("status", c->status);
        I("pid", c->pid);
        I("exit_code", c->exit_code);
        S("reason", c->reason);
        I("created_at", (int64_t) c->created_at);
        I("started_at", (int64_t) c->started_at);
        I("finished_at", (int64_t) c->finished_at);
#undef S
#undef I
#undef B
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

typedef struct JRecord {
        uint64_t schema_version;
        ContainerRecord c;
        uint64_t owner, pid;
        int64_t exit_code;
} JRecord;

static const JsonField record_fields[] = {
        { "schema_version", JSON_FIELD_UINT64, offsetof(JRecord, schema_version), JSON_MANDATORY },
        { "id", JSON_FIELD_STRING, offsetof(JRecord, c.id), JSON_MANDATORY },
        { "name", JSON_FIELD_STRING, offsetof(JRecord, c.name), JSON_MANDATORY },
        { "image", JSON_FIELD_STRING, offsetof(JRecord, c.image), JSON_MANDATORY },
        { "image_digest", JSON_FIELD_STRING, offsetof(JRecord, c.image_digest), 0 },
        { "config_digest", JSON_FIELD_STRING, offsetof(JRecord, c.config_digest), JSON_MANDATORY },
        { "platform", JSON_FIELD_STRING, offsetof(JRecord, c.platform), 0 },
        { "owner", JSON_FIELD_UINT64, offsetof(JRecord, owner), JSON_MANDATORY },
        { "auto_remove", JSON_FIELD_BOOL, offsetof(JRecord, c.auto_remove), 0 },
        { "tty", JSON_FIELD_BOOL, offsetof(JRecord, c.tty), 0 },
        { "detach", JSON_FIELD_BOOL, offsetof(JRecord, c.detach), 0 },
        { "options", JSON_FIELD_STRING, offsetof(JRecord, c.options), 0 },
        { "status", JSON_FIELD_STRING, offsetof(JRecord, c.status), JSON_MANDATORY },
        { "pid", JSON_FIELD_UINT64, offsetof(JRecord, pid), 0 },
        { "exit_code", JSON_FIELD_INT64, offsetof(JRecord, exit_code), 0 },
        { "reason", JSON_FIELD_STRING, offsetof(JRecord, c.reason), 0 },
        { "created_at", JSON_FIELD_UINT64, offsetof(JRecord, c.created_at), 0 },
        { "started_at", JSON_FIELD_UINT64, offsetof(JRecord, c.started_at), 0 },
        { "finished_at", JSON_FIELD_UINT64, offsetof(JRecord, c.finished_at), 0 },
        {}
};

static void jrecord_done(JRecord *j) {
        free(j->c.id);
        free(j->c.name);
        free(j->c.image);
        free(j->c.image_digest);
        free(j->c.config_digest);
        free(j->c.platform);
        free(j->c.options);
        free(j->c.status);
        free(j->c.reason);
}

int container_record_from_json(JsonNode *node, ContainerRecord **ret, char **ret_error) {
        __attribute__((cleanup(jrecord_done))) JRecord j = {};
        _cleanup_(container_record_freep) ContainerRecord *c = NULL;
        int r;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "container record must be an object");
        r = json_dispatch(json_node_get_object(node), record_fields, &j, NULL, ret_error);
        if (r < 0)
                return r;
        if (j.schema_version != RECORD_SCHEMA)
                return json_set_error(ret_error, EBADMSG, "unknown schema version %" PRIu64,
                                      j.schema_version);
        if (!container_id_valid(j.c.id))
                return json_set_error(ret_error, EBADMSG, "invalid id");
        if (!container_name_valid(j.c.name))
                return json_set_error(ret_error, EBADMSG, "invalid name");
        if (j.owner > UINT32_MAX - 1 || j.pid > UINT32_MAX || j.exit_code < INT32_MIN ||
            j.exit_code > INT32_MAX)
                return json_set_error(ret_error, EBADMSG, "owner, pid or exit code out of range");
        c = malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = j.c;
        j.c = (ContainerRecord){};
        c->owner = (uid_t) j.owner;
        c->pid = (uint32_t) j.pid;
        c->exit_code = (int32_t) j.exit_code;
        if (!c->reason)
                c->reason = strdup("");
        if (!c->options)
                c->options = strdup("{}");
        if (!c->reason || !c->options)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

static int load_one(ContainerStore *s, const char *fname) {
        _cleanup_(container_record_freep) ContainerRecord *c = NULL;
        _cleanup_json_node_ JsonNode *node = NULL;
        _cleanup_free_ char *data = NULL, *error = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t size;
        int r;

        fd = openat(s->dir_fd, fname, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return log_warning_errno(-errno, "Failed to open container record '%s': %m", fname);
        r = read_regular_file_fd(fd, CONTAINER_RECORD_MAX, &data, &size);
        if (r < 0)
                return log_warning_errno(r, "Failed to read container record '%s': %m", fname);
        r = json_parse_bounded(data, size, CONTAINER_RECORD_MAX, &node, &error);
        if (r >= 0)
                r = container_record_from_json(node, &c, &error);
        if (r < 0)
                return log_warning_errno(r, "Skipping container record '%s': %s", fname, strna(error));
        if (!g_str_has_prefix(fname, c->id) || !streq(fname + CONTAINER_ID_HEX_LEN, ".json"))
                return log_warning_errno(-EBADMSG,
                                         "Skipping container record '%s': file name does not match "
                                         "its id",
                                         fname);
        if (container_store_by_name(s, c->name))
                return log_warning_errno(-EEXIST, "Skipping container record '%s': name '%s' taken", fname,
                                         c->name);
        g_hash_table_replace(s->by_id, c->id, c);
        TAKE_PTR(c);
        return 0;
}

static void closedirp_(DIR **d) {
        if (*d)
                closedir(*d);
}

int container_store_open(const char *state_dir, ContainerStore **ret) {
        _cleanup_(container_store_freep) ContainerStore *s = NULL;
        _cleanup_close_ int meta_fd = -EBADF, dup_fd = -EBADF;
        __attribute__((cleanup(closedirp_))) DIR *d = NULL;
        _cleanup_free_ char *meta = NULL;
        struct dirent *de;

        if (asprintf_safe(&meta, "%s/meta", state_dir) < 0)
                return -ENOMEM;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dir_fd = -EBADF;
        s->by_id = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, record_free_notify);

        if (mkdir(meta, 0700) < 0 && errno != EEXIST)
                return -errno;
        meta_fd = open(meta, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (meta_fd < 0)
                return -errno;
        if (mkdirat(meta_fd, "containers", 0700) < 0 && errno != EEXIST)
                return -errno;
        s->dir_fd = openat(meta_fd, "containers", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (s->dir_fd < 0)
                return -errno;

        dup_fd = fcntl(s->dir_fd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return -errno;
        d = fdopendir(dup_fd);
        if (!d)
                return -errno;
        TAKE_FD(dup_fd);
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.') {
                        /* A temp file of a write killed midway: the record it was replacing is intact. */
                        if (g_str_has_prefix(de->d_name, ".#"))
                                (void) unlinkat(s->dir_fd, de->d_name, 0);
                        continue;
                }
                if (g_hash_table_size(s->by_id) >= BROKER_CONTAINERS_MAX)
                        break;
                (void) load_one(s, de->d_name);
        }
        *ret = TAKE_PTR(s);
        return 0;
}

ContainerStore *container_store_free(ContainerStore *s) {
        if (!s)
                return NULL;
        safe_close(s->dir_fd);
        if (s->by_id)
                g_hash_table_destroy(s->by_id);
        return mfree(s);
}

ContainerRecord *container_store_get(ContainerStore *s, const char *id) {
        return id ? g_hash_table_lookup(s->by_id, id) : NULL;
}

ContainerRecord *container_store_by_name(ContainerStore *s, const char *name) {
        GHashTableIter it;
        ContainerRecord *c;

        g_hash_table_iter_init(&it, s->by_id);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &c))
                if (streq(c->name, name))
                        return c;
        return NULL;
}

ContainerRecord *container_store_lookup(ContainerStore *s, const char *what) {
        ContainerRecord *c, *found = NULL;
        GHashTableIter it;
        size_t n;

        if (!what)
                return NULL;
        c = container_store_get(s, what);
        if (c)
                return c;
        c = container_store_by_name(s, what);
        if (c)
                return c;
        n = strlen(what);
        if (n < 4 || n > CONTAINER_ID_HEX_LEN)
                return NULL;
        g_hash_table_iter_init(&it, s->by_id);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &c))
                if (strncmp(c->id, what, n) == 0) {
                        if (found)
                                return NULL; /* ambiguous */
                        found = c;
                }
        return found;
}

size_t container_store_count(ContainerStore *s) {
        return g_hash_table_size(s->by_id);
}

static int compare_records(const void *a, const void *b) {
        const ContainerRecord *x = *(ContainerRecord *const *) a, *y = *(ContainerRecord *const *) b;

        if (x->created_at != y->created_at)
                return x->created_at < y->created_at ? -1 : 1;
        return strcmp(x->id, y->id);
}

int container_store_list(ContainerStore *s, ContainerRecord ***ret, size_t *ret_n) {
        ContainerRecord **list;
        guint n = 0;
        GHashTableIter it;
        ContainerRecord *c;

        list = calloc(g_hash_table_size(s->by_id) + 1, sizeof(*list));
        if (!list)
                return -ENOMEM;
        g_hash_table_iter_init(&it, s->by_id);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &c))
                list[n++] = c;
        qsort(list, n, sizeof(*list), compare_records);
        *ret = list;
        *ret_n = n;
        return 0;
}

int container_store_add(ContainerStore *s, ContainerRecord **c) {
        if (g_hash_table_size(s->by_id) >= BROKER_CONTAINERS_MAX)
                return -E2BIG;
        if (g_hash_table_contains(s->by_id, (*c)->id) || container_store_by_name(s, (*c)->name))
                return -EEXIST;
        g_hash_table_replace(s->by_id, (*c)->id, *c);
        *c = NULL;
        return 0;
}

int container_store_save(ContainerStore *s, const ContainerRecord *c) {
        _cleanup_json_node_ JsonNode *node = container_record_to_json(c);
        _cleanup_free_ char *data = NULL, *fname = NULL;

        data = json_to_string_compact(node);
        if (!data || asprintf_safe(&fname, "%s.json", c->id) < 0)
                return -ENOMEM;
        /* A --rm container does not outlive a crash of the machine, and its record is only the way to its
         * removal: atomic (a killed broker leaves the old or the new record) but not flushed, which saved
         * two disk flushes on every `run --rm`. Any other record is durable. */
        if (c->auto_remove)
                return write_file_atomic_nosync_at(s->dir_fd, fname, data, strlen(data), 0600);
        return write_file_atomic_at(s->dir_fd, fname, data, strlen(data), 0600);
}

int container_store_remove(ContainerStore *s, const char *id) {
        _cleanup_free_ char *fname = NULL;

        if (asprintf_safe(&fname, "%s.json", id) < 0)
                return -ENOMEM;
        if (unlinkat(s->dir_fd, fname, 0) < 0 && errno != ENOENT)
                return -errno;
        g_hash_table_remove(s->by_id, id);
        return 0;
}
