/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), renameat2(), reallocarray() */
#endif
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdlib.h>

#include "archive-job.h"
#include "auth.h"
#include "berth-limits.h"
#include "bus-names.h"
#include "blob-verify.h"
#include "bus-util.h"
#include "config.h"
#include "content-store.h"
#include "curl-glue.h"
#include "digest.h"
#include "fetch-job.h"
#include "fetcher-seccomp.h"
#include "hosts.h"
#include "log.h"
#include "oci-ref.h"
#include "registry.h"

typedef struct Manager {
        sd_bus *bus;
        sd_event *event;
        char *state_dir;
        char *config_dir;
        FetchContext ctx;
        FetcherSettings settings;

        GHashTable *blob_fetches; /* digest → BlobFetch (owned) */
        GQueue waiting;           /* BlobFetch* not started yet */
        GHashTable *other_jobs;   /* FetchJob* (Resolve, Login) → sd_bus_message* */
        GHashTable *verifying;    /* PendingVerify* (owned): FetchBlob calls waiting for a re-hash */
        ArchiveContext archive;   /* ImportArchive / ExportArchive children (archive-job.c) */
} Manager;

/* One FetchBlob call waiting for a download: who asked (the broker forwards its caller's uid) and from
 * which repository. */
typedef struct Waiter {
        sd_bus_message *call;
        uid_t uid;
        char *name; /* canonical repository name, "registry/repository" */
} Waiter;

/* One download of one digest, shared by every FetchBlob call that asked for it. It runs from one
 * waiter's source (registry, repository) and counts against that waiter's uid's share of the slots. */
typedef struct BlobFetch {
        Manager *manager;
        FetchJob *job;
        HostsConfig *config; /* until started */
        GPtrArray *waiters;  /* Waiter* (FetchBlob calls to answer) */
        uid_t uid;           /* whose download it is, for the fair share (the source waiter's) */
        char *name;          /* the source waiter's repository */
        bool active;
} BlobFetch;

static void waiter_free(gpointer p) {
        Waiter *w = p;

        if (!w)
                return;
        sd_bus_message_unref(w->call);
        free(w->name);
        free(w);
}

static void blob_fetch_free(gpointer p) {
        BlobFetch *f = p;

        if (!f)
                return;
        fetch_job_free(f->job);
        hosts_config_free(f->config);
        g_ptr_array_unref(f->waiters);
        free(f->name);
        free(f);
}

static void manager_dispatch_queue(Manager *m);

static void message_unref_notify(gpointer p) {
        sd_bus_message_unref(p);
}

static int blob_fetch_new_job(BlobFetch *f, const char *digest, uint64_t size, const char *media_type,
                              sd_bus_error *error);

static void fetch_job_free_notify(gpointer p) {
        fetch_job_free(p);
}

/* ---- signals & replies ----------------------------------------------------------------------------- */

static void send_progress(Manager *m, sd_bus_message *call, const char *digest, uint64_t done,
                          uint64_t total, const char *state) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        const char *sender = sd_bus_message_get_sender(call);
        int r;

        if (!sender)
                return;
        /* Unicast: progress of the broker's downloads is nobody else's business. */
        r = sd_bus_message_new_signal(m->bus, &s, BERTH_FETCHER_PATH, BERTH_FETCHER_IFACE, "Progress");
        if (r >= 0)
                r = sd_bus_message_set_destination(s, sender);
        if (r >= 0)
                r = sd_bus_message_append(s, "stts", digest, done, total, state);
        if (r >= 0)
                r = sd_bus_send(m->bus, s, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to send Progress for %s: %m", digest);
}

static void blob_fetch_on_progress(FetchJob *j, void *userdata) {
        BlobFetch *f = userdata;

        for (guint i = 0; i < f->waiters->len; i++)
                send_progress(f->manager, ((Waiter *) f->waiters->pdata[i])->call, j->digest, j->done,
                              j->size, fetch_state_to_string(j->state));
}

static void reply_error(sd_bus_message *call, const char *name, const char *message) {
        int r = sd_bus_reply_method_errorf(call, name ?: BERTH_ERROR_IO, "%s", message ?: "Unknown error");
        if (r < 0)
                log_debug_errno(r, "Failed to send error reply: %m");
}

/* SECURITY (issue 12, f4): a download shared by several callers failed at its source (that registry,
 * its credentials, its bytes). Waiters that asked for the digest from another repository must not
 * inherit that failure: the first of them becomes the new source, and the others wait on it. Returns
 * true when such a retry was queued (the failed source's own waiters were answered). */
static bool blob_fetch_resource(BlobFetch *f, FetchJob *j) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        Manager *m = f->manager;
        Waiter *next = NULL;
        int r;

        for (guint i = 0; i < f->waiters->len; i++) {
                Waiter *w = f->waiters->pdata[i];
                if (!streq(w->name, f->name)) {
                        next = w;
                        break;
                }
        }
        if (!next)
                return false;
        /* Answer the failed source's own waiters; keep the others. */
        for (guint i = f->waiters->len; i > 0; i--) {
                Waiter *w = f->waiters->pdata[i - 1];
                if (streq(w->name, f->name)) {
                        reply_error(w->call, j->error_name, j->error_message);
                        g_ptr_array_remove_index(f->waiters, i - 1);
                }
        }
        log_info("Fetching %s from '%s' instead, for the callers who asked for it there", j->digest,
                 next->name);
        free(f->name);
        f->name = strdup(next->name);
        f->uid = next->uid;
        f->active = false;
        {
                _cleanup_free_ char *digest = strdup(j->digest), *media_type = strdup(j->media_type);
                uint64_t size = j->size;

                if (!f->name || !digest || !media_type)
                        return false;
                /* The old job stays alive until its callback returns: free it after. */
                f->job = NULL;
                fetch_job_free(j);
                r = blob_fetch_new_job(f, digest, size, media_type, &error);
        }
        if (r < 0) {
                for (guint i = 0; i < f->waiters->len; i++)
                        reply_error(((Waiter *) f->waiters->pdata[i])->call, error.name ?: BERTH_ERROR_IO,
                                    error.message ?: "Failed to start the fetch");
                g_ptr_array_set_size(f->waiters, 0);
                return false;
        }
        g_queue_push_head(&m->waiting, f);
        return true;
}

static void blob_fetch_on_finished(FetchJob *j, int r, void *userdata) {
        BlobFetch *f = userdata;
        Manager *m = f->manager;
        _cleanup_free_ char *digest = strdup(j->digest);

        if (r >= 0)
                log_info("Fetched %s (%" PRIu64 " bytes) from %s/%s", j->digest, j->size, j->registry,
                         j->repository);
        else
                log_error("Failed to fetch %s from %s/%s: %s", j->digest, j->registry, j->repository,
                          strna(j->error_message));

        if (r < 0 && blob_fetch_resource(f, j)) {
                manager_dispatch_queue(m);
                return;
        }
        for (guint i = 0; i < f->waiters->len; i++) {
                sd_bus_message *call = ((Waiter *) f->waiters->pdata[i])->call;

                if (r >= 0) {
                        /* sd-bus dups the fd for each reply. */
                        int k = sd_bus_reply_method_return(call, "h", j->result_fd);
                        if (k < 0)
                                log_debug_errno(k, "Failed to reply to FetchBlob: %m");
                } else
                        reply_error(call, j->error_name, j->error_message);
        }
        if (f->job != j) /* blob_fetch_resource() gave up half-way: j is already freed */
                j = NULL;
        g_hash_table_remove(m->blob_fetches, digest); /* frees f and j */
        manager_dispatch_queue(m);
}

/* Downloads running (derived from the fetches, never counted apart, so it cannot drift from them). */
static unsigned n_active(Manager *m) {
        GHashTableIter it;
        gpointer v;
        unsigned n = 0;

        g_hash_table_iter_init(&it, m->blob_fetches);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((BlobFetch *) v)->active)
                        n++;
        return n;
}

static unsigned uid_active(Manager *m, uid_t uid) {
        GHashTableIter it;
        gpointer v;
        unsigned n = 0;

        g_hash_table_iter_init(&it, m->blob_fetches);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((BlobFetch *) v)->active && ((BlobFetch *) v)->uid == uid)
                        n++;
        return n;
}

static unsigned uid_fetches(Manager *m, uid_t uid) {
        GHashTableIter it;
        gpointer v;
        unsigned n = 0;

        g_hash_table_iter_init(&it, m->blob_fetches);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((BlobFetch *) v)->uid == uid)
                        n++;
        return n;
}

/* Users with a download running or queued. */
static unsigned users_with_demand(Manager *m) {
        g_autoptr(GHashTable) uids = g_hash_table_new(g_direct_hash, g_direct_equal);
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, m->blob_fetches);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_hash_table_add(uids, GUINT_TO_POINTER(((BlobFetch *) v)->uid));
        return g_hash_table_size(uids);
}

/* The queued download of the user with the fewest running ones (ties: the oldest). */
static BlobFetch *manager_next_fair(Manager *m) {
        BlobFetch *best = NULL;
        unsigned best_n = UINT_MAX;

        for (GList *l = m->waiting.head; l; l = l->next) {
                BlobFetch *f = l->data;
                unsigned n = uid_active(m, f->uid);

                if (n < best_n) {
                        best = f;
                        best_n = n;
                }
        }
        return best;
}

/* SECURITY (issue 12, f4): when every slot is taken and a user below their fair share (slots / users
 * with downloads) waits, pause one download of a user above it: its partial data stays in the ingest
 * and it resumes with Range when it gets a slot again. One member with a slow registry cannot hold every
 * slot while others wait. */
static bool manager_preempt(Manager *m) {
        unsigned fair, users;
        BlobFetch *waiting, *victim = NULL;
        GHashTableIter it;
        gpointer v;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (g_queue_is_empty(&m->waiting) || n_active(m) < m->settings.max_concurrent)
                return false;
        users = users_with_demand(m);
        fair = MAX(1U, m->settings.max_concurrent / MAX(users, 1U));
        waiting = manager_next_fair(m);
        if (!waiting || uid_active(m, waiting->uid) >= fair)
                return false;
        g_hash_table_iter_init(&it, m->blob_fetches);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                BlobFetch *f = v;
                if (f->active && f->uid != waiting->uid && uid_active(m, f->uid) > fair &&
                    (!victim || f->job->done < victim->job->done))
                        victim = f;
        }
        if (!victim)
                return false;

        log_info("Pausing the download of %s (uid %u has %u of %u slots) for uid %u", victim->job->digest,
                 (unsigned) victim->uid, uid_active(m, victim->uid), m->settings.max_concurrent,
                 (unsigned) waiting->uid);
        {
                _cleanup_free_ char *digest = strdup(victim->job->digest),
                                    *media_type = strdup(victim->job->media_type);
                uint64_t size = victim->job->size;

                if (!digest || !media_type)
                        return false;
                fetch_job_cancel(victim->job); /* keeps the partial data */
                victim->job = fetch_job_free(victim->job);
                victim->active = false;
                r = blob_fetch_new_job(victim, digest, size, media_type, &error);
                if (r < 0) {
                        for (guint i = 0; i < victim->waiters->len; i++)
                                reply_error(((Waiter *) victim->waiters->pdata[i])->call,
                                            error.name ?: BERTH_ERROR_IO,
                                            error.message ?: "Failed to requeue");
                        g_hash_table_remove(m->blob_fetches, digest);
                        return true;
                }
        }
        for (guint i = 0; i < victim->waiters->len; i++)
                send_progress(m, ((Waiter *) victim->waiters->pdata[i])->call, victim->job->digest,
                              victim->job->done, victim->job->size,
                              fetch_state_to_string(FETCH_STATE_WAITING));
        g_queue_push_tail(&m->waiting, victim);
        return true;
}

static void manager_dispatch_queue(Manager *m) {
        BlobFetch *f;

        do {
                while (n_active(m) < m->settings.max_concurrent && (f = manager_next_fair(m))) {
                        int r;

                        g_queue_remove(&m->waiting, f);
                        f->active = true;
                        r = fetch_job_start(f->job, TAKE_PTR(f->config));
                        if (r < 0) {
                                blob_fetch_on_finished(f->job, r, f);
                                return; /* it recursed into the queue */
                        }
                }
        } while (manager_preempt(m));
}

/* ---- argument validation --------------------------------------------------------------------------- */

static int parse_name(const char *name, ImageReference **ret, sd_bus_error *error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *msg = NULL, *canonical = NULL;
        int r;

        r = image_reference_parse(name, &ref, &msg);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE, "Invalid repository name: %s",
                                         msg ?: name);
        canonical = image_reference_name(ref);
        if (!canonical)
                return -ENOMEM;
        /* Internal API: the broker passes canonical names; anything else is refused, not repaired. */
        if (!streq(canonical, name))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Repository name '%s' is not canonical (expected '%s')", name,
                                         canonical);
        *ret = TAKE_PTR(ref);
        return 0;
}

static int check_digest(const char *digest, sd_bus_error *error) {
        if (strlen(digest) >= DIGEST_STRING_MAX || digest_validate(digest, NULL) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid digest '%.80s'", digest);
        return 0;
}

static bool media_type_is_valid(const char *s) {
        size_t l = strlen(s);

        if (l == 0 || l > MEDIA_TYPE_LENGTH_MAX)
                return false;
        for (; *s; s++)
                if (!g_ascii_isalnum(*s) && !strchr("./+-_", *s))
                        return false;
        return true;
}

static int load_config(Manager *m, HostsConfig **ret, sd_bus_error *error) {
        g_autofree char *msg = NULL;
        int r;

        r = hosts_config_load(m->config_dir, ret, &msg);
        if (r < 0) {
                log_error("Configuration error: %s", strna(msg));
                return sd_bus_error_setf(error, BERTH_ERROR_REGISTRY, "Configuration error: %s", strna(msg));
        }
        m->settings = (*ret)->settings;
        return 0;
}

/* ---- methods --------------------------------------------------------------------------------------- */

/* A (new) job for f from its source f->name, queued state; the config is re-read (edits apply). */
static int blob_fetch_new_job(BlobFetch *f, const char *digest, uint64_t size, const char *media_type,
                              sd_bus_error *error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_(hosts_config_freep) HostsConfig *config = NULL;
        _cleanup_(fetch_job_freep) FetchJob *j = NULL;
        int r;

        r = parse_name(f->name, &ref, error);
        if (r < 0)
                return r;
        r = load_config(f->manager, &config, error);
        if (r < 0)
                return r;
        r = fetch_job_new(&f->manager->ctx, FETCH_BLOB, &j);
        if (r < 0)
                return r;
        j->registry = strdup(ref->registry);
        j->repository = strdup(ref->repository);
        j->digest = strdup(digest);
        j->media_type = strdup(media_type);
        j->size = size;
        if (!j->registry || !j->repository || !j->digest || !j->media_type)
                return -ENOMEM;
        j->userdata = f;
        j->on_progress = blob_fetch_on_progress;
        j->on_finished = blob_fetch_on_finished;
        j->state = FETCH_STATE_WAITING;
        hosts_config_free(f->config);
        f->config = TAKE_PTR(config);
        f->job = TAKE_PTR(j);
        return 0;
}

/* A FetchBlob call for a committed blob that this instance has not re-hashed yet: the hashing runs in a
 * thread (blob-verify.h), and the call is handled again once the verdict is in. The strings point
 * into call, which this holds. */
typedef struct PendingVerify {
        Manager *manager;
        sd_bus_message *call;
        uid_t uid;
        const char *name, *digest, *media_type;
        uint64_t size, flags;
        int fd;
        BlobVerify *verify;
} PendingVerify;

static void pending_verify_free(gpointer p) {
        PendingVerify *v = p;

        if (!v)
                return;
        blob_verify_free(v->verify);
        safe_close(v->fd);
        sd_bus_message_unref(v->call);
        free(v);
}

static int fetch_blob(sd_bus_message *msg, Manager *m, uid_t uid, const char *name, const char *digest,
                      uint64_t size, const char *media_type, uint64_t flags, sd_bus_error *error);

static void on_blob_verified(BlobVerify *bv, int hashes, void *userdata) {
        PendingVerify *v = userdata;
        Manager *m = v->manager;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = content_store_blob_verdict(m->ctx.store, v->digest, v->fd, hashes);
        if (r < 0 && r != -ENOENT)
                r = sd_bus_error_setf(&error, BERTH_ERROR_IO, "Failed to verify blob '%s': %s", v->digest,
                                      strerror(-r));
        else /* verified (served now), or removed (downloaded again) */
                r = fetch_blob(v->call, m, v->uid, v->name, v->digest, v->size, v->media_type, v->flags,
                               &error);
        if (r < 0) {
                r = sd_bus_error_is_set(&error) ? sd_bus_reply_method_error(v->call, &error)
                                                : sd_bus_reply_method_errno(v->call, r, NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to reply to FetchBlob: %m");
        }
        g_hash_table_remove(m->verifying, v); /* frees v and bv */
}

static int verify_then_fetch(sd_bus_message *msg, Manager *m, uid_t uid, const char *name,
                             const char *digest, uint64_t size, const char *media_type, uint64_t flags,
                             int fd, sd_bus_error *error) {
        PendingVerify *v;
        int r;

        if (g_hash_table_size(m->verifying) >= TRANSFERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Too many requests in flight");
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        *v = (PendingVerify){ .manager = m,
                              .call = sd_bus_message_ref(msg),
                              .uid = uid,
                              .name = name,
                              .digest = digest,
                              .media_type = media_type,
                              .size = size,
                              .flags = flags,
                              .fd = -EBADF };
        r = blob_verify_start(m->event, fd, digest, on_blob_verified, v, &v->verify);
        if (r < 0) {
                pending_verify_free(v);
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to verify blob '%s': %s", digest,
                                         strerror(-r));
        }
        v->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (v->fd < 0) {
                r = -errno;
                pending_verify_free(v);
                return r;
        }
        g_hash_table_add(m->verifying, v);
        log_debug("Re-hashing %s before serving it", digest);
        return 1;
}

static int fetch_blob(sd_bus_message *msg, Manager *m, uid_t uid, const char *name, const char *digest,
                      uint64_t size, const char *media_type, uint64_t flags, sd_bus_error *error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t have_size = 0;
        Waiter *w;
        BlobFetch *f;
        int r;

        /* No flag bits are defined (plain http is configured, never requested over the bus). */
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = parse_name(name, &ref, error);
        if (r < 0)
                return r;
        r = check_digest(digest, error);
        if (r < 0)
                return r;
        if (!media_type_is_valid(media_type))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid media type '%.80s'",
                                         media_type);
        if (size > BLOB_SIZE_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT,
                                         "Blob size %" PRIu64 " exceeds the limit of %llu bytes", size,
                                         (unsigned long long) BLOB_SIZE_MAX);
        if (media_type_is_manifest(media_type) && size > MANIFEST_SIZE_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT,
                                         "Manifest size %" PRIu64 " exceeds the limit of %u bytes", size,
                                         MANIFEST_SIZE_MAX);

        /* Already committed: reply at once, once it was re-hashed (issue 12 finding 2), which runs off
         * the loop. */
        r = content_store_open_blob_to_verify(m->ctx.store, digest, &fd, &have_size);
        if (r == 0)
                return verify_then_fetch(msg, m, uid, name, digest, size, media_type, flags, fd, error);
        if (r > 0) {
                if (have_size != size)
                        return sd_bus_error_setf(error, BERTH_ERROR_DIGEST_MISMATCH,
                                                 "Blob '%s' is stored with %" PRIu64 " bytes, not %" PRIu64,
                                                 digest, have_size, size);
                send_progress(m, msg, digest, size, size, fetch_state_to_string(FETCH_STATE_EXISTS));
                return sd_bus_reply_method_return(msg, "h", fd);
        }
        if (r != -ENOENT)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to open blob '%s': %s", digest,
                                         strerror(-r));

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (Waiter){ .call = sd_bus_message_ref(msg), .uid = uid, .name = strdup(name) };
        if (!w->name) {
                waiter_free(w);
                return -ENOMEM;
        }

        /* Already being fetched: share that download. */
        f = g_hash_table_lookup(m->blob_fetches, digest);
        if (f) {
                if (f->job->size != size) {
                        waiter_free(w);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Blob '%s' is being fetched with size %" PRIu64
                                                 ", not %" PRIu64,
                                                 digest, f->job->size, size);
                }
                if (f->waiters->len >= BUS_ARRAY_MAX) {
                        waiter_free(w);
                        return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Too many waiters for blob '%s'",
                                                 digest);
                }
                g_ptr_array_add(f->waiters, w);
                log_debug("FetchBlob %s %s for uid %u joins the download from '%s'", name, digest,
                          (unsigned) uid, f->name);
                send_progress(m, msg, digest, f->job->done, size, fetch_state_to_string(f->job->state));
                return 1;
        }

        /* SECURITY (issue 12, f4): a fair share of the queue too: one user cannot fill it. */
        if (g_hash_table_size(m->blob_fetches) >= FETCH_QUEUE_MAX ||
            uid_fetches(m, uid) >= FETCH_QUEUE_PER_USER_MAX) {
                waiter_free(w);
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Too many blob fetches queued");
        }

        f = calloc(1, sizeof(*f));
        if (!f) {
                waiter_free(w);
                return -ENOMEM;
        }
        f->manager = m;
        f->waiters = g_ptr_array_new_with_free_func(waiter_free);
        g_ptr_array_add(f->waiters, w);
        f->uid = uid;
        f->name = strdup(name);
        if (!f->name) {
                blob_fetch_free(f);
                return -ENOMEM;
        }
        r = blob_fetch_new_job(f, digest, size, media_type, error);
        if (r < 0) {
                blob_fetch_free(f);
                return r;
        }
        g_hash_table_insert(m->blob_fetches, g_strdup(digest), f);

        log_debug("FetchBlob %s %s (%" PRIu64 " bytes, %s) for uid %u", name, digest, size, media_type,
                  (unsigned) uid);
        send_progress(m, msg, digest, 0, size, fetch_state_to_string(FETCH_STATE_WAITING));
        g_queue_push_tail(&m->waiting, f);
        manager_dispatch_queue(m);
        return 1;
}

static int method_fetch_blob(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *name, *digest, *media_type;
        uint64_t size, flags;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "sstst", &name, &digest, &size, &media_type, &flags);
        if (r < 0)
                return r;
        /* The broker's own downloads (no user named): one bucket of the fair share. */
        return fetch_blob(msg, userdata, (uid_t) -1, name, digest, size, media_type, flags, error);
}

/* FetchBlob on behalf of a user (the broker forwards its caller's uid): the fair share of download slots
 * and of the queue is per uid (issue 12, finding 4). */
static int method_fetch_blob_for(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *name, *digest, *media_type;
        uint64_t size, flags;
        uint32_t uid;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "sstsu", &name, &digest, &size, &media_type, &uid);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "t", &flags);
        if (r < 0)
                return r;
        return fetch_blob(msg, userdata, (uid_t) uid, name, digest, size, media_type, flags, error);
}

static void other_job_on_finished(FetchJob *j, int r, void *userdata) {
        Manager *m = userdata;
        sd_bus_message *call = g_hash_table_lookup(m->other_jobs, j);

        if (!call)
                return;
        if (r < 0) {
                if (j->kind == FETCH_LOGIN)
                        log_error("%s", strna(j->error_message));
                else
                        log_error("Resolve of '%s/%s' ('%s') failed: %s", j->registry, j->repository,
                                  j->reference, strna(j->error_message));
                reply_error(call, j->error_name, j->error_message);
        } else if (j->kind == FETCH_RESOLVE) {
                _cleanup_free_ char *name = NULL;

                if (asprintf_safe(&name, "%s/%s", j->registry, j->repository) < 0)
                        name = NULL;
                log_info("Resolved %s/%s:%s to %s (%s, %" PRIu64 " bytes)", j->registry, j->repository,
                         j->reference, j->result_digest, j->result_media_type, j->result_size);
                r = sd_bus_reply_method_return(call, "sssth", strna(name), j->result_digest,
                                               j->result_media_type, j->result_size, j->result_fd);
        } else {
                log_info("Stored credentials for '%s'", j->registry);
                r = sd_bus_reply_method_return(call, "");
        }
        if (r < 0)
                log_debug_errno(r, "Failed to send reply: %m");
        g_hash_table_remove(m->other_jobs, j); /* frees j and the call ref */
}

static int start_other_job(Manager *m, sd_bus_message *msg, FetchJob **jp, sd_bus_error *error) {
        _cleanup_(hosts_config_freep) HostsConfig *config = NULL;
        FetchJob *j = *jp;
        int r;

        if (g_hash_table_size(m->other_jobs) >= TRANSFERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Too many requests in flight");
        r = load_config(m, &config, error);
        if (r < 0)
                return r;
        j->on_finished = other_job_on_finished;
        j->userdata = m;
        g_hash_table_insert(m->other_jobs, TAKE_PTR(*jp), sd_bus_message_ref(msg));
        r = fetch_job_start(j, TAKE_PTR(config));
        if (r < 0) {
                r = sd_bus_error_setf(error, j->error_name ?: BERTH_ERROR_IO, "%s", strna(j->error_message));
                g_hash_table_remove(m->other_jobs, j);
                return r;
        }
        return 1;
}

static int method_resolve(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_(fetch_job_freep) FetchJob *j = NULL;
        _cleanup_free_ char *errmsg = NULL;
        const char *reference;
        Manager *m = userdata;
        uint64_t flags;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "st", &reference, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = image_reference_parse(reference, &ref, &errmsg);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE, "%s",
                                         errmsg ?: "Invalid reference");

        r = fetch_job_new(&m->ctx, FETCH_RESOLVE, &j);
        if (r < 0)
                return r;
        j->registry = strdup(ref->registry);
        j->repository = strdup(ref->repository);
        /* A pinned digest wins over the tag. */
        j->reference = strdup(ref->digest ?: ref->tag);
        if (ref->digest)
                j->digest = strdup(ref->digest);
        if (!j->registry || !j->repository || !j->reference || (ref->digest && !j->digest))
                return -ENOMEM;
        log_debug("Resolve %s", reference);
        return start_other_job(m, msg, &j, error);
}

static bool registry_name_is_valid(const char *s) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *probe = NULL, *msg = NULL;

        if (strlen(s) == 0 || strlen(s) > 255 || strchr(s, '/'))
                return false;
        if (asprintf_safe(&probe, "%s/x", s) < 0)
                return false;
        /* The reference grammar decides what a registry host is; "x" keeps it from being a repository. */
        return image_reference_parse(probe, &ref, &msg) >= 0 && streq(ref->registry, s);
}

static int method_login(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(fetch_job_freep) FetchJob *j = NULL;
        const char *registry, *user, *secret;
        Manager *m = userdata;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "sss", &registry, &user, &secret);
        if (r < 0)
                return r;
        if (!registry_name_is_valid(registry))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Invalid registry name '%.255s'", registry);
        if (!credential_is_valid(user, true))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid username: must be 1..%u printable characters without ':'",
                                         CREDENTIAL_LENGTH_MAX);
        if (!credential_is_valid(secret, false))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid secret: must be 1..%u printable characters",
                                         CREDENTIAL_LENGTH_MAX);

        r = fetch_job_new(&m->ctx, FETCH_LOGIN, &j);
        if (r < 0)
                return r;
        j->registry = strdup(registry);
        j->username = strdup(user);
        j->secret = strdup(secret);
        if (!j->registry || !j->username || !j->secret)
                return -ENOMEM;
        log_info("Login to '%s' as '%s'", registry, user);
        return start_other_job(m, msg, &j, error);
}

static int method_logout(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        g_autofree char *key = NULL;
        Manager *m = userdata;
        const char *registry;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &registry);
        if (r < 0)
                return r;
        if (!registry_name_is_valid(registry))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Invalid registry name '%.255s'", registry);
        key = g_ascii_strdown(registry, -1); /* stored under the lowercased host (hosts.h) */
        r = credentials_remove(m->ctx.credentials_path, key);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No credentials stored for '%s'",
                                         registry);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to update '%s': %s",
                                         m->ctx.credentials_path, strerror(-r));
        auth_cache_forget_host(m->ctx.auth, registry_api_host(key));
        log_info("Removed credentials for '%s'", registry);
        return sd_bus_reply_method_return(msg, "");
}

static int method_cancel_fetch(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *digest;
        BlobFetch *f;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &digest);
        if (r < 0)
                return r;
        r = check_digest(digest, error);
        if (r < 0)
                return r;
        f = g_hash_table_lookup(m->blob_fetches, digest);
        if (!f)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No fetch of '%s' in progress",
                                         digest);

        log_info("Cancelling fetch of %s (partial data kept for resume)", digest);
        fetch_job_cancel(f->job);
        for (guint i = 0; i < f->waiters->len; i++)
                reply_error(((Waiter *) f->waiters->pdata[i])->call, BERTH_ERROR_CANCELLED,
                            "Fetch cancelled");
        if (!f->active)
                g_queue_remove(&m->waiting, f);
        g_hash_table_remove(m->blob_fetches, digest);
        manager_dispatch_queue(m);
        return sd_bus_reply_method_return(msg, "");
}

static int method_open_blob(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        Manager *m = userdata;
        const char *digest;
        uint64_t size;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &digest);
        if (r < 0)
                return r;
        r = check_digest(digest, error);
        if (r < 0)
                return r;
        r = content_store_open_blob(m->ctx.store, digest, &fd, &size);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "Blob '%s' not in the content store",
                                         digest);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to open blob '%s': %s", digest,
                                         strerror(-r));
        return sd_bus_reply_method_return(msg, "ht", fd, size);
}

static int method_list_blobs(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ BlobInfo *list = NULL;
        Manager *m = userdata;
        size_t n = 0;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = content_store_list(m->ctx.store, &list, &n);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to list the content store: %s",
                                         strerror(-r));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(stt)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_append(reply, "(stt)", list[i].digest, list[i].size, list[i].mtime_usec);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_remove_blobs(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        g_auto(GStrv) digests = NULL;
        Manager *m = userdata;
        uint64_t freed = 0;
        size_t n = 0;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(msg, &digests);
        if (r < 0)
                return r;
        STRV_FOREACH(d, digests) {
                if (++n > BUS_ARRAY_MAX)
                        return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "More than %u digests",
                                                 BUS_ARRAY_MAX);
                r = check_digest(*d, error);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH(d, digests) {
                r = content_store_remove_blob(m->ctx.store, *d, &freed);
                if (r < 0 && r != -ENOENT)
                        return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to remove blob '%s': %s", *d,
                                                 strerror(-r));
        }
        log_info("Removed %zu blob(s), %" PRIu64 " bytes freed", n, freed);
        return sd_bus_reply_method_return(msg, "t", freed);
}

static bool ingest_in_use(const char *digest, void *userdata) {
        Manager *m = userdata;

        /* An import's private ingests ("import-…") are in use while any import runs. */
        if (g_str_has_prefix(digest, INGEST_ANONYMOUS_PREFIX))
                return m->archive.n_jobs > 0;

        return g_hash_table_contains(m->blob_fetches, digest);
}

static int method_clean_ingests(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uint64_t min_age, freed = 0;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "t", &min_age);
        if (r < 0)
                return r;
        r = content_store_clean_ingests(m->ctx.store, min_age, ingest_in_use, m, &freed);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to clean ingests: %s", strerror(-r));
        log_info("Cleaned ingests, %" PRIu64 " bytes freed", freed);
        return sd_bus_reply_method_return(msg, "t", freed);
}

/* ---- setup ----------------------------------------------------------------------------------------- */

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        /* Every method checks bus_require_broker() first: this service serves the broker only.
         * SD_BUS_VTABLE_UNPRIVILEGED turns off sd-bus' own "caller needs CAP_SYS_ADMIN" check, which
         * would refuse the (unprivileged) broker; the uid check in code is the real gate. */
        SD_BUS_METHOD_WITH_NAMES("GetInfo", "", SD_BUS_PARAM(), "a{sv}", SD_BUS_PARAM(info),
                                 bus_method_internal_get_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Resolve", "st", SD_BUS_PARAM(reference) SD_BUS_PARAM(flags), "sssth",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(digest) SD_BUS_PARAM(media_type)
                                         SD_BUS_PARAM(size) SD_BUS_PARAM(fd),
                                 method_resolve, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("FetchBlob", "sstst",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(digest) SD_BUS_PARAM(size)
                                         SD_BUS_PARAM(media_type) SD_BUS_PARAM(flags),
                                 "h", SD_BUS_PARAM(fd), method_fetch_blob, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("FetchBlobFor", "sstsut",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(digest) SD_BUS_PARAM(size)
                                         SD_BUS_PARAM(media_type) SD_BUS_PARAM(uid) SD_BUS_PARAM(flags),
                                 "h", SD_BUS_PARAM(fd), method_fetch_blob_for, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CancelFetch", "s", SD_BUS_PARAM(digest), "", SD_BUS_PARAM(),
                                 method_cancel_fetch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenBlob", "s", SD_BUS_PARAM(digest), "ht",
                                 SD_BUS_PARAM(fd) SD_BUS_PARAM(size), method_open_blob,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListBlobs", "", SD_BUS_PARAM(), "a(stt)", SD_BUS_PARAM(blobs),
                                 method_list_blobs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveBlobs", "as", SD_BUS_PARAM(digests), "t", SD_BUS_PARAM(bytes_freed),
                                 method_remove_blobs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CleanIngests", "t", SD_BUS_PARAM(min_age_usec), "t",
                                 SD_BUS_PARAM(bytes_freed), method_clean_ingests,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES(
                "Login", "sss", SD_BUS_PARAM(registry) SD_BUS_PARAM(username) SD_BUS_PARAM(secret), "",
                SD_BUS_PARAM(), method_login, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("Logout", "s", SD_BUS_PARAM(registry), "", SD_BUS_PARAM(), method_logout,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES_OFFSET("ImportArchive", "ht", SD_BUS_PARAM(archive) SD_BUS_PARAM(flags),
                                        "a(ssst)", SD_BUS_PARAM(images), method_import_archive,
                                        offsetof(Manager, archive), SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES_OFFSET("ExportArchive", "hsas",
                                        SD_BUS_PARAM(out) SD_BUS_PARAM(index_json) SD_BUS_PARAM(digests),
                                        "t", SD_BUS_PARAM(bytes), method_export_archive,
                                        offsetof(Manager, archive), SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES(
                "Progress", "stts",
                SD_BUS_PARAM(digest) SD_BUS_PARAM(done) SD_BUS_PARAM(total) SD_BUS_PARAM(state), 0),
        SD_BUS_VTABLE_END
};

static int manager_setup(sd_bus *bus, sd_event *event, void *userdata) {
        _cleanup_free_ char *content = NULL;
        const char *e;
        Manager *m = userdata;
        int r;

        m->bus = bus;
        m->event = event;

        /* Tests point these elsewhere; the service itself uses the compiled-in paths. */
        e = getenv("BERTH_STATE_DIR");
        m->state_dir = strdup(!isempty(e) ? e : BERTH_STATEDIR);
        e = getenv("BERTH_CONFIG_DIR");
        m->config_dir = strdup(!isempty(e) ? e : BERTH_SYSCONFDIR);
        if (!m->state_dir || !m->config_dir)
                return log_oom();

        if (asprintf_safe(&content, "%s/content", m->state_dir) < 0 ||
            asprintf_safe(&m->ctx.credentials_path, "%s/fetcher/config.json", m->state_dir) < 0)
                return log_oom();
        r = content_store_open(content, &m->ctx.store);
        if (r < 0)
                return log_error_errno(r, "Failed to open the content store '%s': %m", content);
        r = curl_glue_new(event, &m->ctx.glue);
        if (r < 0)
                return log_error_errno(r, "Failed to set up libcurl on the event loop: %m");
        m->ctx.event = event;
        m->ctx.auth = auth_cache_new();
        m->settings = (FetcherSettings){ FETCH_PARALLEL_DEFAULT, FETCH_RETRIES_DEFAULT,
                                         FETCH_STALL_TIMEOUT_SEC_DEFAULT, FETCH_STALL_MIN_BYTES_DEFAULT };
        m->blob_fetches = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, blob_fetch_free);
        m->other_jobs = g_hash_table_new_full(g_direct_hash, g_direct_equal, fetch_job_free_notify,
                                              message_unref_notify);
        m->verifying = g_hash_table_new_full(g_direct_hash, g_direct_equal, pending_verify_free, NULL);
        g_queue_init(&m->waiting);
        m->archive = (ArchiveContext){ .store = m->ctx.store, .event = event };

        r = sd_bus_add_object_vtable(bus, NULL, BERTH_FETCHER_PATH, BERTH_FETCHER_IFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_FETCHER_PATH);

        /* SECURITY (issue 12, f6): from here on, only the system calls a fetcher makes (fetcher-seccomp.h).
         */
        char err[256] = "";
        r = fetcher_install_seccomp(err, sizeof(err));
        if (r == -EPERM)
                /* The service manager refuses seccomp() (a unit without SystemCallFilter=seccomp): its own
                 * filter is in force; say so rather than refusing to serve. */
                log_warning("Cannot install the fetcher's system call filter (%s); relying on the service "
                            "manager's",
                            err[0] ? err : strerror(-r));
        else if (r < 0)
                return log_error_errno(r, "Failed to install the fetcher's system call filter: %s",
                                       err[0] ? err : strerror(-r));
        log_info("Content store at '%s', configuration in '%s'", content, m->config_dir);
        return 0;
}

static void manager_shutdown(void *userdata) {
        Manager *m = userdata;

        /* Jobs stop without replies; partial ingests stay for the next start to resume. */
        g_queue_clear(&m->waiting);
        if (m->blob_fetches)
                g_hash_table_destroy(m->blob_fetches);
        if (m->other_jobs)
                g_hash_table_destroy(m->other_jobs);
        if (m->verifying)
                g_hash_table_destroy(m->verifying);
        curl_glue_free(m->ctx.glue);
        content_store_free(m->ctx.store);
        auth_cache_free(m->ctx.auth);
        free(m->ctx.credentials_path);
        free(m->state_dir);
        free(m->config_dir);
}

/* Downloads (running or queued), re-hashes, resolves, logins and archive children: the calls waiting for
 * them would get no reply if we left. Partial ingests are on disk either way. */
static bool manager_busy(void *userdata) {
        Manager *m = userdata;

        return (m->blob_fetches && g_hash_table_size(m->blob_fetches) > 0) ||
               (m->other_jobs && g_hash_table_size(m->other_jobs) > 0) ||
               (m->verifying && g_hash_table_size(m->verifying) > 0) || m->archive.n_jobs > 0;
}

int main(int argc, char *argv[]) {
        Manager manager = {};
        const BusService svc = {
                .program = "berth-fetcher",
                .bus_name = BERTH_FETCHER_NAME,
                .description = "Registry client: resolves references and fetches verified blobs into the "
                               "content store.",
                .setup = manager_setup,
                .shutdown = manager_shutdown,
                .busy = manager_busy,
                .config_file = "registries.conf",
                .config_group = "fetcher",
                .userdata = &manager,
        };

        return bus_service_main(&svc, argc, argv);
}
