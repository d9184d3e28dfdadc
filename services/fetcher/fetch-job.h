/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "auth.h"
#include "content-store.h"
#include "curl-glue.h"
#include "hosts.h"

/* One registry transaction, run on the event loop: pick an endpoint (mirrors first), send the request,
 * answer an auth challenge once (bearer token or basic), retry transient failures with exponential
 * backoff, fall back to the next endpoint, stream and verify the body, commit it. */

typedef enum FetchKind {
        FETCH_RESOLVE, /* manifest by tag or digest → memory → verified → store */
        FETCH_BLOB,    /* blob (or manifest by digest) → ingest → verified → store */
        FETCH_LOGIN,   /* GET /v2/ with given credentials → store them */
} FetchKind;

typedef enum FetchState {
        FETCH_STATE_RESOLVING,
        FETCH_STATE_WAITING,
        FETCH_STATE_DOWNLOADING,
        FETCH_STATE_VERIFYING,
        FETCH_STATE_DONE,
        FETCH_STATE_EXISTS,
        _FETCH_STATE_MAX,
} FetchState;

const char *fetch_state_to_string(FetchState s);

/* Shared by all jobs; owned by the daemon. */
typedef struct FetchContext {
        sd_event *event;
        CurlGlue *glue;
        ContentStore *store;
        AuthCache *auth;
        char *credentials_path;
} FetchContext;

typedef struct FetchJob FetchJob;
typedef void (*fetch_job_progress_t)(FetchJob *j, void *userdata);
/* r < 0: j->error_name / j->error_message say why. */
typedef void (*fetch_job_finished_t)(FetchJob *j, int r, void *userdata);

struct FetchJob {
        FetchContext *ctx;
        FetchKind kind;
        FetchState state;

        char *registry;          /* "127.0.0.1:5000", "docker.io" */
        char *repository;        /* "library/busybox" */
        char *reference;         /* resolve: tag or digest */
        char *digest;            /* blob: expected digest; resolve: expected if by digest */
        uint64_t size;           /* blob: expected size */
        char *media_type;        /* blob: declared media type */
        char *username, *secret; /* login */

        uint64_t done; /* bytes so far */

        /* Results. */
        int result_fd;
        char *result_digest;
        char *result_media_type;
        uint64_t result_size;
        const char *error_name;
        char *error_message;

        fetch_job_progress_t on_progress;
        fetch_job_finished_t on_finished;
        void *userdata;

        /* Internals. */
        HostsConfig *config;
        RegistryEndpoint *endpoints;
        size_t n_endpoints, endpoint_idx;
        unsigned attempt;
        bool auth_tried;
        bool creds_withheld; /* stored credentials not sent: token realm is plain http elsewhere */
        bool http_fallback_active;
        bool finished;
        char *tls_error;
        char *scope;
        char *auth_header;
        HttpRequest *req;
        HttpRequest *token_req;
        GByteArray *buf;
        Ingest *ingest;
        sd_event_source *retry_timer;
        uint64_t range_start;
        bool resumed;             /* some bytes came from an earlier download (Range, or a full partial) */
        bool restarted_from_zero; /* a resumed download failed verification once and started over */
        uint64_t resume_offset;
        uint64_t last_progress_usec;
};

int fetch_job_new(FetchContext *ctx, FetchKind kind, FetchJob **ret);
FetchJob *fetch_job_free(FetchJob *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(FetchJob *, fetch_job_free);

/* Takes ownership of config. Returns <0 (with error_name/message set) if it cannot even start. */
int fetch_job_start(FetchJob *j, HostsConfig *config);
/* Stop now without calling on_finished; a blob's partial ingest is kept for a later resume. */
void fetch_job_cancel(FetchJob *j);
void fetch_job_set_state(FetchJob *j, FetchState state);
