/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "berth-limits.h"
#include "bus-names.h"
#include "bus-util.h"
#include "blob-feed.h"
#include "config.h"
#include "implied-dirs.h"
#include "digest.h"
#include "log.h"
#include "oci-types.h"
#include "snapshot-store.h"
#include "unpack-config.h"
#include "unpack-job.h"

typedef struct Manager Manager;

/* One chain id being unpacked; every Unpack call for it waits on the same job. */
typedef struct Job {
        Manager *manager;
        char *chain_id, *parent, *layer_digest, *diff_id;
        LayerCompression compression;
        int blob_fd;
        BlobFeed *feed; /* blob → pipe → child, hashed on the way (blob-feed.h) */
        int implied_fd; /* memfd: the directories the layer only implied, written by the child */
        char *work_name;
        int fs_fd;
        pid_t pid;
        int sock;
        sd_event_source *child_source;
        GPtrArray *waiters; /* sd_bus_message* */
} Job;

struct Manager {
        sd_bus *bus;
        sd_event *event;
        SnapshotStore *store;
        UnpackerSettings settings;
        GHashTable *jobs; /* chain_id → Job*, queued and running */
        GQueue queue;
        unsigned running;
};

static void job_free(Job *j) {
        if (!j)
                return;
        sd_event_source_disable_unref(j->child_source);
        if (j->pid > 0) {
                /* Only on shutdown: the child must not outlive us (it has PDEATHSIG too). */
                (void) kill(j->pid, SIGKILL);
                (void) waitpid(j->pid, NULL, 0);
        }
        if (j->waiters)
                g_ptr_array_free(j->waiters, true);
        safe_close(j->blob_fd);
        blob_feed_free(j->feed);
        safe_close(j->implied_fd);
        safe_close(j->fs_fd);
        safe_close(j->sock);
        free(j->chain_id);
        free(j->parent);
        free(j->layer_digest);
        free(j->diff_id);
        free(j->work_name);
        free(j);
}

static void message_unref_notify(gpointer p) {
        sd_bus_message_unref(p);
}

static const char *failure_error_name(UnpackFailure f) {
        switch (f) {
        case UNPACK_FAILURE_DIGEST:
                return BERTH_ERROR_DIGEST_MISMATCH;
        case UNPACK_FAILURE_LIMIT:
                return BERTH_ERROR_LIMIT;
        case UNPACK_FAILURE_BAD_CONTENT:
                return BERTH_ERROR_BAD_CONTENT;
        default:
                return BERTH_ERROR_IO;
        }
}

static void job_reply(Job *j, const char *error_name, const char *message, uint64_t size, uint32_t entries) {
        for (guint i = 0; i < j->waiters->len; i++) {
                sd_bus_message *m = g_ptr_array_index(j->waiters, i);
                int r;

                if (error_name)
                        r = sd_bus_reply_method_errorf(m, error_name, "%s", message);
                else
                        r = sd_bus_reply_method_return(m, "tu", size, entries);
                if (r < 0)
                        log_debug_errno(r, "Failed to reply to an Unpack call: %m");
        }
}

static void manager_dispatch(Manager *m);

/* Ends a job: reply to everyone waiting, drop the work dir unless it was committed, start the next. */
static void job_finish(Job *j, const char *error_name, const char *message, uint64_t size,
                       uint32_t entries) {
        Manager *m = j->manager;

        if (error_name)
                log_error("Failed to unpack layer '%s' (%s): %s", j->layer_digest, j->chain_id, message);
        else
                log_info("Committed snapshot %s (layer '%s', %" PRIu64 " bytes, %u entries).", j->chain_id,
                         j->layer_digest, size, entries);
        job_reply(j, error_name, message, size, entries);

        if (j->work_name) {
                int r = snapshot_store_discard_work(m->store, j->work_name);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove work dir '%s', CleanWork will: %m",
                                          j->work_name);
        }
        if (j->pid > 0)
                m->running--;
        j->pid = 0;
        g_hash_table_remove(m->jobs, j->chain_id); /* frees j */
        manager_dispatch(m);
}

#define IMPLIED_LIST_MAX (64U * 1024U * 1024U)

/* Implied directories take their metadata from the parent chain (implied-dirs.h), before the commit. */
static int job_fix_implied_dirs(Job *j, char **ret_error) {
        SnapshotStore *store = j->manager->store;
        _cleanup_close_ int fs_fd = -EBADF;
        _cleanup_free_ char *fs_rel = NULL;
        _cleanup_free_ int *lowers = NULL;
        _cleanup_free_ char *id = NULL;
        size_t n = 0;
        int r;

        if (isempty(j->parent))
                return 0;
        lowers = calloc(LAYERS_MAX, sizeof(int));
        id = strdup(j->parent);
        if (!lowers || !id)
                return -ENOMEM;
        while (!isempty(id)) {
                SnapshotInfo info = {};
                _cleanup_free_ char *rel = NULL;
                int fd;

                if (n >= LAYERS_MAX) {
                        r = -ELOOP;
                        goto finish;
                }
                r = snapshot_store_get(store, id, &info);
                if (r < 0)
                        goto finish;
                if (asprintf_safe(&rel, "%s/fs", digest_hex(id)) < 0) {
                        snapshot_info_done(&info);
                        r = -ENOMEM;
                        goto finish;
                }
                fd = openat(store->dir_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        snapshot_info_done(&info);
                        goto finish;
                }
                lowers[n++] = fd;
                free(id);
                id = TAKE_PTR(info.parent);
                snapshot_info_done(&info);
        }
        if (asprintf_safe(&fs_rel, "%s/fs", j->work_name) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        fs_fd = openat(store->tmp_fd, fs_rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fs_fd < 0) {
                r = -errno;
                goto finish;
        }
        r = implied_dirs_apply(j->implied_fd, IMPLIED_LIST_MAX, fs_fd, lowers, n, ret_error);
finish:
        /* Undo: close the lower snapshots' fds. */
        for (size_t i = 0; i < n; i++)
                safe_close(lowers[i]);
        return r;
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Job *j = userdata;
        UnpackReport report = {};
        _cleanup_free_ char *msg = NULL;
        int r;

        r = unpack_child_read_report(j->sock, &report);
        j->pid = -1; /* reaped by sd-event: neither job_free() nor job_finish() touch it again */
        j->manager->running--;

        if (r < 0) {
                /* SIGSYS here means the child tripped its seccomp filter: treat as hostile content. */
                msg = g_strdup_printf("Unpack child for layer '%s' died without a report (%s %d)",
                                      j->layer_digest, si->si_code == CLD_EXITED ? "exit status" : "signal",
                                      si->si_status);
                job_finish(j, BERTH_ERROR_IO, msg ?: "Unpack child died", 0, 0);
                return 0;
        }
        if (report.error != 0 || si->si_code != CLD_EXITED || si->si_status != 0) {
                job_finish(j, failure_error_name(report.failure),
                           report.message[0] ? report.message : "Unpack failed", 0, 0);
                return 0;
        }

        /* SECURITY (issue 12, f5): the child's "digest verified" is not enough; we hashed what we fed. */
        char actual[DIGEST_STRING_MAX];
        r = blob_feed_verify(j->feed, j->layer_digest, actual);
        if (r < 0) {
                msg = r == -EBADMSG
                              ? g_strdup_printf("Layer blob '%s' hashes to %s", j->layer_digest, actual)
                      : r == -EPIPE
                              ? g_strdup_printf(
                                        "The unpack child for layer '%s' ended before reading all of it",
                                        j->layer_digest)
                              : g_strdup_printf("Failed to read layer blob '%s': %s", j->layer_digest,
                                                strerror(-r));
                job_finish(j, r == -EBADMSG ? BERTH_ERROR_DIGEST_MISMATCH : BERTH_ERROR_IO,
                           msg ?: "layer verification failed", 0, 0);
                return 0;
        }
        j->feed = blob_feed_free(j->feed);

        r = job_fix_implied_dirs(j, &msg);
        if (r < 0) {
                _cleanup_free_ char *m2 = g_strdup_printf("Failed to complete layer '%s': %s",
                                                          j->layer_digest, msg ?: strerror(-r));
                job_finish(j, BERTH_ERROR_IO, m2 ?: "implied directories", 0, 0);
                return 0;
        }

        SnapshotInfo info = {
                .chain_id = j->chain_id,
                .parent = j->parent,
                .diff_id = j->diff_id,
                .layer_digest = j->layer_digest,
                .size = report.size,
                .entries = report.entries > UINT32_MAX ? UINT32_MAX : (uint32_t) report.entries,
                .created = (uint64_t) g_get_real_time(),
        };
        r = snapshot_store_commit(j->manager->store, j->work_name, &info);
        if (r < 0) {
                msg = g_strdup_printf("Failed to commit snapshot %s: %s", j->chain_id, strerror(-r));
                job_finish(j, BERTH_ERROR_IO, msg ?: "commit failed", 0, 0);
                return 0;
        }
        j->work_name = mfree(j->work_name); /* renamed: nothing to discard */
        job_finish(j, NULL, NULL, info.size, info.entries);
        return 0;
}

static int job_start(Job *j) {
        Manager *m = j->manager;
        _cleanup_free_ char *fs_path = NULL;
        ExtractRequest req = {
                .layer_digest = j->layer_digest,
                .diff_id = j->diff_id,
                .compression = j->compression,
                .limits = m->settings.limits,
        };
        _cleanup_close_ int pipe_read = -EBADF;
        DigestAlgorithm alg;
        int r;

        j->implied_fd = memfd_create("berth-implied-dirs", MFD_CLOEXEC);
        if (j->implied_fd < 0)
                return -errno;
        req.implied_fd = j->implied_fd;

        r = snapshot_store_new_work(m->store, &j->work_name, &j->fs_fd, &fs_path);
        if (r < 0)
                return r;
        r = digest_validate(j->layer_digest, &alg);
        if (r < 0)
                return r;
        /* The child gets the read end of a pipe we feed, never the content-store file (blob-feed.h). */
        r = blob_feed_start(m->event, TAKE_FD(j->blob_fd), alg, &j->feed, &pipe_read);
        if (r < 0)
                return r;
        r = unpack_child_spawn(fs_path, j->fs_fd, pipe_read, &req, &j->pid, &j->sock);
        if (r < 0)
                return r;
        m->running++;
        /* The child has its own copies; ours are not needed any more. */
        pipe_read = safe_close(pipe_read);
        j->fs_fd = safe_close(j->fs_fd);
        r = sd_event_add_child(m->event, &j->child_source, j->pid, WEXITED, on_child_exit, j);
        if (r < 0) {
                /* Undo: nobody would reap it, and job_finish() is about to remove its work dir. */
                (void) kill(j->pid, SIGKILL);
                (void) waitpid(j->pid, NULL, 0);
                return r; /* job_finish() drops it from running (pid > 0) */
        }
        log_debug("Unpacking layer '%s' into %s in child %d.", j->layer_digest, j->work_name, (int) j->pid);
        return 0;
}

static void manager_dispatch(Manager *m) {
        while (m->running < m->settings.parallel && !g_queue_is_empty(&m->queue)) {
                Job *j = g_queue_pop_head(&m->queue);
                int r = job_start(j);
                if (r < 0) {
                        _cleanup_free_ char *msg = NULL;
                        msg = g_strdup_printf("Failed to start unpacking layer '%s': %s", j->layer_digest,
                                              strerror(-r));
                        job_finish(j, BERTH_ERROR_IO, msg ?: "failed to start", 0, 0);
                        return; /* job_finish() dispatched again */
                }
        }
}

static int validate_digest_arg(const char *what, const char *s, bool allow_empty, sd_bus_error *error) {
        if (allow_empty && isempty(s))
                return 0;
        if (strlen(s) > BUS_STRING_MAX || digest_validate(s, NULL) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid %s '%.80s'.", what, s);
        return 0;
}

static int method_unpack(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *chain_id, *parent, *layer_digest, *diff_id, *media_type;
        char expected_chain[DIGEST_STRING_MAX];
        LayerCompression compression;
        SnapshotInfo existing = {};
        DigestAlgorithm alg;
        uint64_t flags;
        struct stat st;
        int fd, fl, r;
        Job *j;

        /* 1. authorise */
        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;

        /* 2. read */
        r = sd_bus_message_read(msg, "sssssht", &chain_id, &parent, &layer_digest, &diff_id, &media_type,
                                &fd, &flags);
        if (r < 0)
                return r;

        /* 3. validate each argument */
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if ((r = validate_digest_arg("chain id", chain_id, false, error)) < 0 ||
            (r = validate_digest_arg("parent chain id", parent, true, error)) < 0 ||
            (r = validate_digest_arg("layer digest", layer_digest, false, error)) < 0 ||
            (r = validate_digest_arg("diff id", diff_id, false, error)) < 0)
                return r;
        if (digest_validate(chain_id, &alg) < 0 || alg != DIGEST_SHA256)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Chain ids are sha256 digests.");
        if (media_type_kind(media_type) != MEDIA_KIND_LAYER ||
            (compression = media_type_layer_compression(media_type)) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_UNSUPPORTED,
                                         "Unsupported layer media type '%.200s'.", media_type);

        /* SECURITY: re-derive the chain id (STYLE 10): the name a snapshot gets follows from its parent and
         * the diff_id we verify, so a caller cannot file a layer under another chain's name. */
        if (isempty(parent)) {
                if (strlen(diff_id) >= sizeof(expected_chain))
                        return -EINVAL;
                strcpy(expected_chain, diff_id);
        } else {
                _cleanup_free_ char *input = NULL;
                if (asprintf_safe(&input, "%s %s", parent, diff_id) < 0)
                        return -ENOMEM;
                r = digest_buffer(DIGEST_SHA256, input, strlen(input), expected_chain);
                if (r < 0)
                        return r;
        }
        if (!streq(expected_chain, chain_id))
                return sd_bus_error_setf(
                        error, SD_BUS_ERROR_INVALID_ARGS,
                        "Chain id '%s' does not follow from parent '%s' and diff_id '%s' (expected %s).",
                        chain_id, parent, diff_id, expected_chain);

        /* SECURITY: a regular file opened read-only; not a socket/pipe/device that could block us or
         * change under us in other ways, and not a writable handle on the fetcher's blob, which the
         * sandboxed child (the attack surface) gets a copy of. */
        if (fstat(fd, &st) < 0)
                return -errno;
        fl = fcntl(fd, F_GETFL);
        if (!S_ISREG(st.st_mode) || fl < 0 || (fl & O_ACCMODE) != O_RDONLY || (fl & O_PATH))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The blob must be a readable regular file.");

        /* 4. state: parent committed, already done, already running, queue bound */
        if (!isempty(parent) && snapshot_store_get(m->store, parent, NULL) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND,
                                         "Parent snapshot '%s' is not committed.", parent);
        if (snapshot_store_get(m->store, chain_id, &existing) >= 0) {
                r = sd_bus_reply_method_return(msg, "tu", existing.size, existing.entries);
                snapshot_info_done(&existing);
                return r;
        }
        j = g_hash_table_lookup(m->jobs, chain_id);
        if (j) {
                g_ptr_array_add(j->waiters, sd_bus_message_ref(msg));
                return 1;
        }
        if (g_hash_table_size(m->jobs) >= UNPACK_QUEUE_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Too many unpack jobs queued (%u).",
                                         UNPACK_QUEUE_MAX);

        /* 5. build */
        j = calloc(1, sizeof(Job));
        if (!j)
                return -ENOMEM;
        *j = (Job){
                .manager = m,
                .chain_id = strdup(chain_id),
                .parent = strdup(parent),
                .layer_digest = strdup(layer_digest),
                .diff_id = strdup(diff_id),
                .compression = compression,
                .blob_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3),
                .implied_fd = -EBADF,
                .fs_fd = -EBADF,
                .sock = -EBADF,
                .waiters = g_ptr_array_new_with_free_func(message_unref_notify),
        };
        if (!j->chain_id || !j->parent || !j->layer_digest || !j->diff_id || j->blob_fd < 0) {
                r = j->blob_fd < 0 ? -errno : -ENOMEM;
                job_free(j);
                return r;
        }
        g_ptr_array_add(j->waiters, sd_bus_message_ref(msg));
        g_hash_table_insert(m->jobs, j->chain_id, j);
        g_queue_push_tail(&m->queue, j);

        /* 6. reply: later, from on_child_exit() */
        manager_dispatch(m);
        return 1;
}

static int method_list_snapshots(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        SnapshotInfo *all = NULL;
        size_t n = 0;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = snapshot_store_list(m->store, &all, &n);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssstu)");
        for (size_t i = 0; i < n && r >= 0; i++)
                r = sd_bus_message_append(reply, "(ssstu)", all[i].chain_id, all[i].parent, all[i].diff_id,
                                          all[i].size, all[i].entries);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        for (size_t i = 0; i < n; i++)
                snapshot_info_done(&all[i]);
        free(all);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_remove_snapshots(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        g_auto(GStrv) ids = NULL;
        _cleanup_free_ char *err = NULL;
        char **strv = NULL;
        uint64_t freed = 0;
        DigestAlgorithm alg;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(msg, &strv);
        if (r < 0)
                return r;
        ids = strv;
        if (g_strv_length(ids) > BUS_ARRAY_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "At most %u snapshots per call.",
                                         BUS_ARRAY_MAX);
        for (char **i = ids; *i; i++) {
                if (digest_validate(*i, &alg) < 0 || alg != DIGEST_SHA256)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Invalid chain id '%.80s'.", *i);
                for (char **k = ids; k < i; k++)
                        if (streq(*k, *i))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Duplicate chain id '%s'.", *i);
        }

        r = snapshot_store_remove(m->store, ids, &freed, &err);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "%s.", strna(err));
        if (r == -EBUSY)
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "%s.", strna(err));
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "t", freed);
}

static int method_clean_work(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        g_autoptr(GPtrArray) busy = g_ptr_array_new();
        GHashTableIter it;
        uint64_t freed = 0;
        gpointer v;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;

        g_hash_table_iter_init(&it, m->jobs);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Job *) v)->work_name)
                        g_ptr_array_add(busy, ((Job *) v)->work_name);
        g_ptr_array_add(busy, NULL);

        r = snapshot_store_clean_work(m->store, (char *const *) busy->pdata, &freed);
        if (r < 0)
                log_warning_errno(r, "Failed to remove some work dirs: %m");
        return sd_bus_reply_method_return(msg, "t", freed);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        /* UNPRIVILEGED lets sd-bus hand non-root callers to the method; every method then checks
         * bus_require_broker() first: this service serves the broker only. */
        SD_BUS_METHOD_WITH_NAMES("GetInfo", "", SD_BUS_PARAM(), "a{sv}", SD_BUS_PARAM(info),
                                 bus_method_internal_get_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES(
                "Unpack", "sssssht",
                SD_BUS_PARAM(chain_id) SD_BUS_PARAM(parent_chain_id) SD_BUS_PARAM(layer_digest) SD_BUS_PARAM(
                        diff_id) SD_BUS_PARAM(media_type) SD_BUS_PARAM(blob) SD_BUS_PARAM(flags),
                "tu", SD_BUS_PARAM(size) SD_BUS_PARAM(entries), method_unpack, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListSnapshots", "", SD_BUS_PARAM(), "a(ssstu)", SD_BUS_PARAM(snapshots),
                                 method_list_snapshots, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveSnapshots", "as", SD_BUS_PARAM(chain_ids), "t",
                                 SD_BUS_PARAM(bytes_freed), method_remove_snapshots,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CleanWork", "", SD_BUS_PARAM(), "t", SD_BUS_PARAM(bytes_freed),
                                 method_clean_work, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static void job_free_notify(gpointer p) {
        job_free(p);
}

static int manager_setup(sd_bus *bus, sd_event *event, void *userdata) {
        _cleanup_free_ char *snapshots = NULL;
        const char *state, *config;
        Manager *m = userdata;
        int r;

        m->bus = bus;
        m->event = event;

        /* Tests point these elsewhere; the service itself uses the compiled-in paths. */
        state = getenv("BERTH_STATE_DIR");
        config = getenv("BERTH_CONFIG_DIR");
        if (isempty(state))
                state = BERTH_STATEDIR;
        if (isempty(config))
                config = BERTH_SYSCONFDIR;

        r = unpacker_settings_load(config, &m->settings);
        if (r < 0)
                return r;
        if (asprintf_safe(&snapshots, "%s/snapshots", state) < 0)
                return log_oom();
        r = snapshot_store_open(snapshots, &m->store);
        if (r < 0)
                return log_error_errno(r, "Failed to open the snapshot store '%s': %m", snapshots);

        m->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, job_free_notify);
        g_queue_init(&m->queue);

        r = sd_bus_add_object_vtable(bus, NULL, BERTH_UNPACKER_PATH, BERTH_UNPACKER_IFACE, manager_vtable,
                                     m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_UNPACKER_PATH);
        log_info("Snapshots in '%s'; limits: %" PRIu64 " bytes, %" PRIu64
                 " entries per layer; %u jobs at once.",
                 snapshots, m->settings.limits.max_uncompressed_bytes, m->settings.limits.max_entries,
                 m->settings.parallel);
        return 0;
}

static void manager_shutdown(void *userdata) {
        Manager *m = userdata;

        /* Running children are killed (job_free); their work dirs are removed at the next start. */
        g_queue_clear(&m->queue);
        if (m->jobs)
                g_hash_table_destroy(m->jobs);
        snapshot_store_free(m->store);
}

/* Queued and running unpack jobs: their callers wait for a reply, and a killed child's work is lost. */
static bool manager_busy(void *userdata) {
        Manager *m = userdata;

        return m->jobs && g_hash_table_size(m->jobs) > 0;
}

int main(int argc, char *argv[]) {
        Manager manager = {};
        const BusService svc = {
                .program = "berth-unpacker",
                .bus_name = BERTH_UNPACKER_NAME,
                .description = "Unpacks verified layer blobs into overlay snapshots, each job in a "
                               "sandboxed child.",
                .setup = manager_setup,
                .shutdown = manager_shutdown,
                .busy = manager_busy,
                .config_file = "unpacker.conf",
                .config_group = "unpacker",
                .userdata = &manager,
        };

        return bus_service_main(&svc, argc, argv);
}
