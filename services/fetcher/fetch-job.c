/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), renameat2(), reallocarray() */
#endif
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "berth-limits.h"
#include "bus-names.h"
#include "erase-util.h"
#include "fetch-job.h"
#include "log.h"
#include "oci-types.h"
#include "registry.h"

#define PROGRESS_INTERVAL_USEC (100ULL * 1000ULL) /* ≤ 10 Progress signals per second per blob */
#define BACKOFF_MAX_USEC (30ULL * 1000000ULL)

static const char *const fetch_state_table[_FETCH_STATE_MAX] = {
        [FETCH_STATE_RESOLVING] = "resolving",
        [FETCH_STATE_WAITING] = "waiting",
        [FETCH_STATE_DOWNLOADING] = "downloading",
        [FETCH_STATE_VERIFYING] = "verifying",
        [FETCH_STATE_DONE] = "done",
        [FETCH_STATE_EXISTS] = "exists",
};

const char *fetch_state_to_string(FetchState s) {
        return s >= 0 && s < _FETCH_STATE_MAX ? fetch_state_table[s] : NULL;
}

static void job_send(FetchJob *j);
static void job_begin_endpoint(FetchJob *j);

int fetch_job_new(FetchContext *ctx, FetchKind kind, FetchJob **ret) {
        FetchJob *j = calloc(1, sizeof(*j));

        if (!j)
                return -ENOMEM;
        j->ctx = ctx;
        j->kind = kind;
        j->state = FETCH_STATE_RESOLVING;
        j->result_fd = -EBADF;
        *ret = j;
        return 0;
}

static void job_stop_io(FetchJob *j) {
        j->req = http_request_free(j->req);
        j->token_req = http_request_free(j->token_req);
        j->retry_timer = sd_event_source_disable_unref(j->retry_timer);
}

void fetch_job_cancel(FetchJob *j) {
        job_stop_io(j);
        j->ingest = ingest_free(j->ingest); /* closes, keeps the partial data */
        j->finished = true;
}

FetchJob *fetch_job_free(FetchJob *j) {
        if (!j)
                return NULL;
        fetch_job_cancel(j);
        safe_close(j->result_fd);
        free(j->registry);
        free(j->repository);
        free(j->reference);
        free(j->digest);
        free(j->media_type);
        free(j->username);
        erase_and_free(j->secret);
        free(j->result_digest);
        g_free(j->result_media_type);
        free(j->error_message);
        hosts_config_free(j->config);
        registry_endpoints_free(j->endpoints, j->n_endpoints);
        g_free(j->tls_error);
        g_free(j->scope);
        erase_and_free(j->auth_header);
        if (j->buf)
                g_byte_array_unref(j->buf);
        return mfree(j);
}

static uint64_t now_usec(FetchJob *j) {
        uint64_t t = 0;

        (void) sd_event_now(j->ctx->event, CLOCK_MONOTONIC, &t);
        return t;
}

void fetch_job_set_state(FetchJob *j, FetchState state) {
        if (j->state == state)
                return;
        j->state = state;
        j->last_progress_usec = now_usec(j);
        if (j->on_progress)
                j->on_progress(j, j->userdata);
}

static void job_progress(FetchJob *j) {
        uint64_t t = now_usec(j);

        if (t < j->last_progress_usec + PROGRESS_INTERVAL_USEC)
                return;
        j->last_progress_usec = t;
        if (j->on_progress)
                j->on_progress(j, j->userdata);
}

static RegistryEndpoint *job_endpoint(FetchJob *j) {
        return &j->endpoints[j->endpoint_idx];
}

/* The end: report once. The callee may free j. */
static void job_finish(FetchJob *j, int r) {
        if (j->finished)
                return;
        j->finished = true;
        job_stop_io(j);
        if (r >= 0)
                fetch_job_set_state(j, FETCH_STATE_DONE);
        if (j->on_finished)
                j->on_finished(j, r, j->userdata);
}

_printf_(3, 0) static void job_set_errorv(FetchJob *j, const char *name, const char *format, va_list ap) {
        free(j->error_message);
        if (vasprintf(&j->error_message, format, ap) < 0)
                j->error_message = NULL;
        j->error_name = name;
}

/* Records the error only; the caller decides between retrying, the next endpoint and giving up. */
_printf_(4, 5) static void job_set_error(FetchJob *j, int r, const char *name, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        job_set_errorv(j, name, format, ap);
        va_end(ap);
        (void) r;
}

_printf_(4, 5) static void job_fail(FetchJob *j, int r, const char *name, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        job_set_errorv(j, name, format, ap);
        va_end(ap);
        job_finish(j, r < 0 ? r : -EIO);
}

static bool job_endpoint_usable(FetchJob *j, size_t idx) {
        /* SECURITY: tags are resolved by mirrors only when configured so (a tag is a trust decision,
         * a digest is verified whoever serves it). Login talks only to the registry itself. */
        if (j->kind == FETCH_LOGIN)
                return !j->endpoints[idx].mirror;
        if (j->kind == FETCH_RESOLVE && !j->digest)
                return j->endpoints[idx].resolve;
        return true;
}

/* The current endpoint failed for good (the error is already recorded): try the next one, or give up. */
static void job_endpoint_failed(FetchJob *j, int r) {
        size_t next = j->endpoint_idx + 1;

        job_stop_io(j);
        while (next < j->n_endpoints && !job_endpoint_usable(j, next))
                next++;
        if (next < j->n_endpoints) {
                log_warning("Endpoint %s failed (%s), trying %s", job_endpoint(j)->base_url,
                            strna(j->error_message), j->endpoints[next].base_url);
                j->endpoint_idx = next;
                job_begin_endpoint(j);
                return;
        }
        job_finish(j, r);
}

_printf_(4, 5) static void job_endpoint_error(FetchJob *j, int r, const char *name, const char *format,
                                              ...) {
        va_list ap;

        va_start(ap, format);
        job_set_errorv(j, name, format, ap);
        va_end(ap);
        job_endpoint_failed(j, r);
}

static int job_on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        FetchJob *j = userdata;

        j->retry_timer = sd_event_source_disable_unref(j->retry_timer);
        job_send(j);
        return 0;
}

/* A transient failure (error recorded): retry with exponential backoff, then give up on the endpoint. */
static void job_retry(FetchJob *j, int r, const char *retry_after) {
        uint64_t delay;
        int k;

        if (j->attempt >= j->config->settings.retries) {
                job_endpoint_failed(j, r);
                return;
        }
        j->attempt++;
        delay = MIN(1000000ULL << (j->attempt - 1), BACKOFF_MAX_USEC);
        if (retry_after && g_ascii_isdigit(retry_after[0])) {
                uint64_t s = g_ascii_strtoull(retry_after, NULL, 10);
                if (s > 0 && s <= 60)
                        delay = MAX(delay, s * 1000000ULL);
        }
        log_info("%s; retrying %s in %" PRIu64 " ms (attempt %u of %u)", strna(j->error_message),
                 job_endpoint(j)->base_url, delay / 1000, j->attempt, j->config->settings.retries);
        job_stop_io(j);
        k = sd_event_add_time_relative(j->ctx->event, &j->retry_timer, CLOCK_MONOTONIC, delay, 0,
                                       job_on_retry_timer, j);
        if (k < 0)
                job_fail(j, k, BERTH_ERROR_IO, "Failed to arm retry timer: %s", strerror(-k));
}

static const char *job_what(FetchJob *j) {
        return j->kind == FETCH_RESOLVE ? j->reference : j->kind == FETCH_BLOB ? j->digest : j->registry;
}

static bool job_is_manifest(FetchJob *j) {
        return j->kind == FETCH_RESOLVE || (j->kind == FETCH_BLOB && media_type_is_manifest(j->media_type));
}

/* ---- bodies ---------------------------------------------------------------------------------------- */

static int job_on_body_ingest(HttpRequest *req, const void *data, size_t size, bool first, void *userdata) {
        FetchJob *j = userdata;
        int r;

        if (first) {
                if (req->status == 206) {
                        unsigned long long start;

                        if (content_range_start(req->content_range, &start) < 0 || start != j->range_start ||
                            start != ingest_offset(j->ingest))
                                return -ERANGE;
                } else if (ingest_offset(j->ingest) > 0) {
                        /* The server ignored our Range: start over cleanly from the first byte. */
                        log_info("Registry ignored Range for %s (status %ld), restarting from 0", j->digest,
                                 req->status);
                        r = ingest_reset(j->ingest);
                        if (r < 0)
                                return r;
                }
                fetch_job_set_state(j, FETCH_STATE_DOWNLOADING);
        }
        r = ingest_write(j->ingest, data, size);
        if (r < 0)
                return r;
        j->done = ingest_offset(j->ingest);
        job_progress(j);
        return 0;
}

static int job_on_body_memory(HttpRequest *req, const void *data, size_t size, bool first, void *userdata) {
        FetchJob *j = userdata;

        if (first)
                g_byte_array_set_size(j->buf, 0);
        g_byte_array_append(j->buf, data, (guint) size);
        j->done = j->buf->len;
        return 0;
}

/* ---- completion ------------------------------------------------------------------------------------ */

static void job_commit_blob(FetchJob *j) {
        char actual[DIGEST_STRING_MAX] = "";
        uint64_t got = ingest_offset(j->ingest);
        int r, fd = -EBADF;

        fetch_job_set_state(j, FETCH_STATE_VERIFYING);
        r = ingest_commit(j->ingest, &fd, actual);
        j->ingest = ingest_free(j->ingest);
        if (r == -EBADMSG && j->resumed && !j->restarted_from_zero) {
                /* SECURITY (issue 12, f4): the bytes before our Range came from an earlier download, maybe
                 * from another registry or user: a wrong prefix there must not fail this pull for good.
                 * ingest_commit() discarded the partial; fetch everything once more, from byte 0. */
                log_warning("Blob '%s' resumed at byte %" PRIu64
                            " failed verification; discarding the partial "
                            "download and fetching it again from the start",
                            j->digest, j->resume_offset);
                j->restarted_from_zero = true;
                j->resumed = false;
                fetch_job_set_state(j, FETCH_STATE_DOWNLOADING);
                job_send(j);
                return;
        }
        if (r == -EBADMSG || r == -EPIPE) {
                job_endpoint_error(j, -EBADMSG, BERTH_ERROR_DIGEST_MISMATCH,
                                   "Blob '%s' failed verification: received %" PRIu64 " bytes hashing to %s",
                                   j->digest, got, actual);
                return;
        }
        if (r < 0) {
                job_fail(j, r, BERTH_ERROR_IO, "Failed to commit blob '%s' to the content store: %s",
                         j->digest, strerror(-r));
                return;
        }
        j->result_fd = fd;
        j->result_size = j->size;
        j->result_digest = strdup(j->digest);
        job_finish(j, 0);
}

static void job_complete_resolve(FetchJob *j, HttpRequest *req) {
        g_autofree char *media_type = content_type_essence(req->content_type);
        char computed[DIGEST_STRING_MAX];
        DigestAlgorithm alg = DIGEST_SHA256;
        const char *expected = j->digest;
        int r, fd = -EBADF;

        /* SECURITY (CVE-2021-41190): the media type is what the registry declared, never guessed from
         * the body; the broker's parser then checks the document agrees with it. */
        if (!media_type_is_manifest(media_type)) {
                job_endpoint_error(j, -EMEDIUMTYPE, BERTH_ERROR_BAD_CONTENT,
                                   "Registry sent Content-Type '%s' for manifest '%s', not a manifest type",
                                   strna(media_type), j->reference);
                return;
        }
        if (!expected && req->docker_content_digest) {
                /* By tag: the digest is that of the bytes; a header that disagrees is an error. */
                if (digest_validate(req->docker_content_digest, &alg) < 0) {
                        job_endpoint_error(j, -EBADMSG, BERTH_ERROR_BAD_CONTENT,
                                           "Registry sent an invalid Docker-Content-Digest for '%s'",
                                           j->reference);
                        return;
                }
                expected = req->docker_content_digest;
        } else if (expected)
                (void) digest_validate(expected, &alg);

        r = digest_buffer(alg, j->buf->data, j->buf->len, computed);
        if (r < 0) {
                job_fail(j, r, BERTH_ERROR_IO, "Failed to hash manifest: %s", strerror(-r));
                return;
        }
        if (expected && !digest_equal(computed, expected)) {
                job_endpoint_error(j, -EBADMSG, BERTH_ERROR_DIGEST_MISMATCH,
                                   "Manifest '%s' does not match digest %s: the bytes hash to %s",
                                   j->reference, expected, computed);
                return;
        }
        fetch_job_set_state(j, FETCH_STATE_VERIFYING);
        r = content_store_write_buffer(j->ctx->store, computed, j->buf->data, j->buf->len, &fd);
        if (r < 0) {
                job_fail(j, r, BERTH_ERROR_IO, "Failed to store manifest %s: %s", computed, strerror(-r));
                return;
        }
        j->result_fd = fd;
        j->result_digest = strdup(computed);
        j->result_media_type = TAKE_PTR(media_type);
        j->result_size = j->buf->len;
        job_finish(j, 0);
}

static void job_complete_login(FetchJob *j) {
        g_autofree char *key = g_ascii_strdown(j->registry, -1); /* host names are case-insensitive */
        int r;

        r = credentials_store(j->ctx->credentials_path, key, j->username, j->secret);
        if (r < 0) {
                job_fail(j, r, BERTH_ERROR_IO, "Failed to store credentials for '%s': %s", j->registry,
                         strerror(-r));
                return;
        }
        auth_cache_forget_host(j->ctx->auth, job_endpoint(j)->host);
        job_finish(j, 0);
}

/* ---- authentication -------------------------------------------------------------------------------- */

static int job_credentials(FetchJob *j, char **ret_user, char **ret_secret) {
        g_autofree char *key = NULL;
        int r;

        if (j->kind == FETCH_LOGIN) {
                *ret_user = strdup(j->username);
                *ret_secret = strdup(j->secret);
                return *ret_user && *ret_secret ? 0 : -ENOMEM;
        }
        /* Credentials are stored under the name the user logged in to; docker.io also matches its API host.
         */
        /* SECURITY: keyed by the lowercased host, as the configuration is (hosts.h). */
        key = g_ascii_strdown(job_endpoint(j)->mirror ? job_endpoint(j)->host : j->registry, -1);
        r = credentials_load(j->ctx->credentials_path, key, ret_user, ret_secret);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Failed to read credentials from '%s', continuing without: %m",
                                  j->ctx->credentials_path);
        return r;
}

static bool endpoint_is_https(FetchJob *j) {
        const char *u = job_endpoint(j)->base_url;

        return u && strncasecmp(u, "https://", 8) == 0;
}

static bool url_host_equal(const char *url, const char *host) {
        const char *p = strstr(url, "://");
        size_t l;

        if (!p)
                return false;
        p += 3;
        l = strcspn(p, "/?#");
        return strlen(host) == l && strncasecmp(p, host, l) == 0;
}

static void job_on_token_done(HttpRequest *req, CURLcode code, void *userdata) {
        FetchJob *j = userdata;
        _cleanup_erase_ char *header = NULL, *token = NULL;
        uint64_t expires = 0;
        int r;

        if (code != CURLE_OK || req->abort_error < 0) {
                job_set_error(j, -EIO, BERTH_ERROR_REGISTRY, "Token request to '%s' failed: %s",
                              strna(http_request_effective_url(req)),
                              req->abort_error < 0 ? strerror(-req->abort_error)
                                                   : http_request_error_message(req, code));
                job_retry(j, -EIO, NULL);
                return;
        }
        if (req->status == 401 || req->status == 403) {
                job_endpoint_error(j, -EACCES, BERTH_ERROR_AUTH,
                                   "Token server for '%s' refused the credentials (HTTP %ld)",
                                   job_endpoint(j)->host, req->status);
                return;
        }
        if (req->status == 429 || req->status >= 500) {
                job_set_error(j, -EIO, BERTH_ERROR_REGISTRY, "Token server for '%s' answered HTTP %ld",
                              job_endpoint(j)->host, req->status);
                job_retry(j, -EIO, req->retry_after);
                return;
        }
        if (req->status != 200) {
                job_endpoint_error(j, -EPROTO, BERTH_ERROR_AUTH, "Token server for '%s' answered HTTP %ld",
                                   job_endpoint(j)->host, req->status);
                return;
        }
        r = auth_token_parse((const char *) j->buf->data, j->buf->len, &token, &expires);
        if (r < 0) {
                job_endpoint_error(j, r, BERTH_ERROR_AUTH,
                                   "Token server for '%s' sent an unusable token response",
                                   job_endpoint(j)->host);
                return;
        }
        /* The response held the token: wiped once parsed. */
        erase_buffer(j->buf->data, j->buf->len);
        header = auth_bearer_header(token);
        if (j->kind != FETCH_LOGIN)
                /* Expire a little early so a token never dies in flight. */
                auth_cache_put(j->ctx->auth, job_endpoint(j)->host, j->scope, header,
                               now_usec(j) + (expires > 10 ? expires - 10 : expires) * 1000000ULL);
        erase_and_free(j->auth_header);
        j->auth_header = TAKE_PTR(header);
        j->token_req = http_request_free(j->token_req);
        job_send(j);
}

static void job_handle_401(FetchJob *j, HttpRequest *req) {
        RegistryEndpoint *e = job_endpoint(j);
        AuthChallenge c = {};
        _cleanup_free_ char *user = NULL;
        _cleanup_erase_ char *secret = NULL, *basic = NULL;
        g_autofree char *url = NULL;
        g_autofree char *registry_msg = registry_error_summary(req->error_body, req->error_body_size);
        HttpRequestOptions o = {};
        bool have_creds, cleartext_ok;
        int r;

        if (j->auth_tried) {
                job_endpoint_error(
                        j, -EACCES, BERTH_ERROR_AUTH,
                        j->kind == FETCH_LOGIN ? "Login to '%s' failed: %s%s"
                                               : "Access to '%s' denied by the registry: %s%s",
                        j->kind == FETCH_LOGIN ? e->host : j->repository, registry_msg ?: "unauthorized",
                        j->creds_withheld ? " (the stored credentials were not sent: they travel over "
                                            "plain http only to a registry configured plain-http=true)"
                                          : "");
                return;
        }
        r = auth_challenge_parse(req->www_authenticate, &c);
        if (r < 0) {
                job_endpoint_error(j, -EACCES, BERTH_ERROR_AUTH,
                                   "Registry '%s' requires authentication but sent no usable challenge",
                                   e->host);
                return;
        }
        j->auth_tried = true;
        have_creds = job_credentials(j, &user, &secret) >= 0;
        /* SECURITY: over plain http, credentials go only to a host the admin configured plain-http. A
         * loopback registry we fell back to http for (it did not speak TLS) gets none: whoever binds
         * that port would read them. */
        cleartext_ok = e->plain_allowed && !j->http_fallback_active && !e->plain_found;
        if (have_creds && !cleartext_ok && !endpoint_is_https(j)) {
                have_creds = false;
                j->creds_withheld = true;
        }

        if (c.scheme == AUTH_SCHEME_BASIC) {
                auth_challenge_done(&c);
                if (!have_creds) {
                        job_endpoint_error(
                                j, -EACCES, BERTH_ERROR_AUTH,
                                j->creds_withheld ? "Registry '%s' requires a login (basic authentication), "
                                                    "and berth sends credentials over plain http only to "
                                                    "a registry configured plain-http=true"
                                                  : "Registry '%s' requires a login (basic authentication)",
                                e->host);
                        return;
                }
                /* SECURITY: basic credentials over plain http only to a registry configured (or found, on
                 * loopback) to be plain http; the scheme is the endpoint's, fixed before any challenge. */
                erase_and_free(j->auth_header);
                j->auth_header = auth_basic_header(user, secret);
                if (j->kind != FETCH_LOGIN)
                        auth_cache_put(j->ctx->auth, e->host, j->scope, j->auth_header, 0);
                job_send(j);
                return;
        }

        r = auth_token_url(&c, j->kind == FETCH_LOGIN ? NULL : j->scope, &url);
        if (r < 0) {
                auth_challenge_done(&c);
                job_endpoint_error(j, r, BERTH_ERROR_AUTH, "Registry '%s' sent an unusable token realm",
                                   e->host);
                return;
        }
        /* SECURITY (CVE-2020-15157): stored credentials go to the token realm only over https; a plain
         * http realm gets them only on the registry's own host, and only when the admin configured that
         * host plain-http (then the registry itself sees them in clear anyway). Otherwise the token
         * request is anonymous. */
        if (have_creds &&
            (strncasecmp(url, "https://", 8) == 0 || (url_host_equal(url, e->host) && cleartext_ok)))
                basic = auth_basic_header(user, secret);
        j->creds_withheld = j->creds_withheld || (have_creds && !basic);
        if (j->kind == FETCH_LOGIN && j->creds_withheld) {
                /* A login must prove the credentials; an anonymous token proves nothing. */
                auth_challenge_done(&c);
                job_endpoint_error(
                        j, -EACCES, BERTH_ERROR_AUTH,
                        "Cannot check the credentials for '%s': its token service '%s' is plain http, and "
                        "berth sends credentials there only over https (or to a registry configured "
                        "plain-http=true on its own host)",
                        e->host, url);
                return;
        }
        if (url_host_equal(url, e->host))
                o.tls = (HttpTls){ e->ca_file, e->client_cert, e->client_key, e->skip_verify };
        auth_challenge_done(&c);

        o.url = url;
        o.authorization = basic;
        o.max_body = TOKEN_RESPONSE_MAX;
        o.stall_timeout_sec = j->config->settings.stall_timeout_sec;
        o.stall_min_bytes = j->config->settings.stall_min_bytes;
        if (!j->buf)
                j->buf = g_byte_array_new();
        g_byte_array_set_size(j->buf, 0);
        j->req = http_request_free(j->req);
        r = http_request_new(j->ctx->glue, &o, job_on_body_memory, job_on_token_done, j, &j->token_req);
        if (r >= 0)
                r = http_request_start(j->token_req);
        if (basic)
                explicit_bzero(basic, strlen(basic));
        if (r < 0)
                job_fail(j, r, BERTH_ERROR_IO, "Failed to start token request: %s", strerror(-r));
}

/* ---- main request ---------------------------------------------------------------------------------- */

static bool curl_code_is_tls(CURLcode code) {
        switch (code) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_SHUTDOWN_FAILED:
                return true;
        default:
                return false;
        }
}

static bool curl_code_is_transient(CURLcode code) {
        switch (code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
        case CURLE_QUIC_CONNECT_ERROR:
                return true;
        default:
                return false;
        }
}

static void job_on_done(HttpRequest *req, CURLcode code, void *userdata) {
        FetchJob *j = userdata;
        RegistryEndpoint *e = job_endpoint(j);
        g_autofree char *registry_msg = NULL;

        if (req->abort_error < 0) {
                int r = req->abort_error;

                if (r == -EFBIG) {
                        if (j->ingest)
                                (void) ingest_abort(j->ingest);
                        j->ingest = ingest_free(j->ingest);
                        job_endpoint_error(
                                j, r,
                                j->kind == FETCH_BLOB ? BERTH_ERROR_DIGEST_MISMATCH : BERTH_ERROR_LIMIT,
                                "Registry '%s' sent more than %" PRIu64 " bytes for '%s'", e->host,
                                j->kind == FETCH_BLOB ? j->size : (uint64_t) MANIFEST_SIZE_MAX, job_what(j));
                } else if (r == -E2BIG)
                        job_endpoint_error(j, r, BERTH_ERROR_LIMIT,
                                           "Registry '%s' sent oversized headers or error body", e->host);
                else if (r == -ERANGE) {
                        job_set_error(j, r, BERTH_ERROR_REGISTRY,
                                      "Registry '%s' answered our Range with '%s'", e->host,
                                      strna(req->content_range));
                        (void) ingest_reset(j->ingest);
                        job_retry(j, r, NULL);
                } else
                        job_fail(j, r, BERTH_ERROR_IO, "Failed to write '%s': %s", job_what(j),
                                 strerror(-r));
                return;
        }

        if (code != CURLE_OK) {
                const char *msg = http_request_error_message(req, code);

                /* SECURITY: only a server that does not speak TLS at all (the handshake itself fails:
                 * "wrong version number") is tried over http. A certificate that does not verify is a
                 * TLS server whose identity we could not check: falling back would hand the request, and
                 * whatever we send later, to whoever answers plain http on that port. A system without a
                 * CA bundle (CACERT_BADFILE) never reached the server: that is no certificate failure,
                 * and a TLS server then answers the http request with 400, which fails below. Either
                 * way no credentials travel over the fallback (job_handle_401). */
                if ((code == CURLE_SSL_CONNECT_ERROR || code == CURLE_SSL_CACERT_BADFILE) &&
                    e->http_fallback && !j->http_fallback_active) {
                        /* containerd's localhost rule: a loopback registry that does not speak TLS. */
                        g_autofree char *http_url = g_strdup_printf("http://%s", e->host);

                        log_info("TLS to loopback registry '%s' failed (%s), trying plain http", e->host,
                                 msg);
                        j->tls_error = g_strdup(msg);
                        j->http_fallback_active = true;
                        free(e->base_url);
                        e->base_url = strdup(http_url);
                        job_send(j);
                        return;
                }
                if (curl_code_is_tls(code)) {
                        job_endpoint_error(j, -EPROTO, BERTH_ERROR_REGISTRY, "TLS error talking to '%s': %s",
                                           e->host, msg);
                        return;
                }
                if (code == CURLE_FILESIZE_EXCEEDED) {
                        job_endpoint_error(j, -EFBIG,
                                           j->kind == FETCH_BLOB ? BERTH_ERROR_DIGEST_MISMATCH
                                                                 : BERTH_ERROR_LIMIT,
                                           "Registry '%s' announced more bytes than allowed for '%s'",
                                           e->host, job_what(j));
                        return;
                }
                if ((code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR) && req->status == 0 &&
                    e->base_url && strncmp(e->base_url, "https://", 8) == 0 && !j->http_fallback_active)
                        /* With TLS 1.3 a server that wants a client certificate rejects it after the
                         * handshake, so curl sees a broken read, not a TLS error. Say what it likely is;
                         * still retry, since a reset connection looks the same. */
                        job_set_error(
                                j, -EIO, BERTH_ERROR_REGISTRY,
                                "TLS session with '%s' broke before the registry answered (%s); a registry "
                                "that requires a client certificate does this",
                                e->host, msg);
                else if (code == CURLE_OPERATION_TIMEDOUT)
                        job_set_error(j, -ETIMEDOUT, BERTH_ERROR_REGISTRY,
                                      "Transfer of '%s' from '%s' stalled (below %u bytes/s for %u s)",
                                      job_what(j), e->host, j->config->settings.stall_min_bytes,
                                      j->config->settings.stall_timeout_sec);
                else
                        job_set_error(j, -EIO, BERTH_ERROR_REGISTRY,
                                      "Failed to fetch '%s' from '%s': %s%s%s%s", job_what(j), e->host, msg,
                                      j->tls_error ? " (TLS before that: " : "", j->tls_error ?: "",
                                      j->tls_error ? ")" : "");
                if (curl_code_is_transient(code))
                        job_retry(j, -EIO, NULL);
                else
                        job_endpoint_failed(j, -EIO);
                return;
        }

        if (j->http_fallback_active) {
                if (req->status == 400) {
                        /* "Client sent an HTTP request to an HTTPS server": the TLS failure was the real
                         * one. */
                        job_endpoint_error(j, -EPROTO, BERTH_ERROR_REGISTRY,
                                           "TLS error talking to '%s': %s (plain http refused too)", e->host,
                                           strna(j->tls_error));
                        return;
                }
                if (req->status < 400 || req->status == 401 || req->status == 404)
                        hosts_remember_plain_http(e->host);
        }

        registry_msg = registry_error_summary(req->error_body, req->error_body_size);
        if (req->status == 401) {
                job_handle_401(j, req);
                return;
        }
        if (req->status == 403) {
                job_endpoint_error(j, -EACCES, BERTH_ERROR_AUTH, "Access to '%s' on '%s' denied: %s",
                                   j->repository ?: "", e->host, registry_msg ?: "forbidden");
                return;
        }
        if (req->status == 404) {
                if (j->kind == FETCH_LOGIN)
                        job_endpoint_error(j, -ENOENT, BERTH_ERROR_REGISTRY,
                                           "'%s' does not speak the registry API (404 on /v2/)", e->host);
                else
                        job_endpoint_error(j, -ENOENT, BERTH_ERROR_NOT_FOUND, "%s unknown: '%s/%s%s%s'",
                                           job_is_manifest(j) ? "manifest" : "blob", j->registry,
                                           j->repository, j->kind == FETCH_RESOLVE && !j->digest ? ":" : "@",
                                           j->kind == FETCH_RESOLVE ? j->reference : j->digest);
                return;
        }
        if (req->status == 429 || req->status >= 500) {
                job_set_error(j, -EIO, BERTH_ERROR_REGISTRY, "Registry '%s' answered HTTP %ld for '%s'%s%s",
                              e->host, req->status, job_what(j), registry_msg ? ": " : "",
                              registry_msg ?: "");
                job_retry(j, -EIO, req->retry_after);
                return;
        }
        if (req->status < 200 || req->status >= 300) {
                job_endpoint_error(j, -EPROTO, BERTH_ERROR_REGISTRY,
                                   "Registry '%s' answered HTTP %ld for '%s'%s%s", e->host, req->status,
                                   job_what(j), registry_msg ? ": " : "", registry_msg ?: "");
                return;
        }

        switch (j->kind) {
        case FETCH_BLOB:
                if (ingest_offset(j->ingest) != j->size) {
                        /* The connection ended early (or the registry's idea of the size differs): resume.
                         */
                        job_set_error(j, -EPIPE, BERTH_ERROR_DIGEST_MISMATCH,
                                      "Blob '%s' from '%s' ended after %" PRIu64 " of %" PRIu64 " bytes",
                                      j->digest, e->host, ingest_offset(j->ingest), j->size);
                        job_retry(j, -EPIPE, NULL);
                        return;
                }
                j->req = http_request_free(j->req);
                job_commit_blob(j);
                return;
        case FETCH_RESOLVE:
                job_complete_resolve(j, req);
                return;
        case FETCH_LOGIN:
                job_complete_login(j);
                return;
        }
}

static void job_send(FetchJob *j) {
        RegistryEndpoint *e = job_endpoint(j);
        g_autofree char *url = NULL;
        HttpRequestOptions o = {};
        int r;

        job_stop_io(j);

        if (j->kind == FETCH_BLOB) {
                if (!j->ingest) {
                        r = ingest_open(j->ctx->store, j->digest, j->size, &j->ingest);
                        if (r < 0) {
                                job_fail(j, r, BERTH_ERROR_IO, "Failed to open ingest for '%s': %s",
                                         j->digest, strerror(-r));
                                return;
                        }
                }
                j->done = j->range_start = ingest_offset(j->ingest);
                if (j->range_start == j->size) {
                        /* Everything arrived before (a killed fetcher): just verify and commit. */
                        if (j->range_start > 0 && !j->resumed) {
                                j->resumed = true;
                                j->resume_offset = j->range_start;
                        }
                        job_commit_blob(j);
                        return;
                }
                if (j->range_start > 0) {
                        log_debug("Resuming %s from '%s' at byte %" PRIu64 " with Range", j->digest, e->host,
                                  j->range_start);
                        if (!j->resumed)
                                j->resume_offset = j->range_start;
                        j->resumed = true;
                }
                url = job_is_manifest(j) ? registry_manifest_url(e, j->registry, j->repository, j->digest)
                                         : registry_blob_url(e, j->registry, j->repository, j->digest);
                o.max_body = j->size;
                o.range_start = j->range_start;
        } else if (j->kind == FETCH_RESOLVE) {
                url = registry_manifest_url(e, j->registry, j->repository, j->digest ?: j->reference);
                o.max_body = MANIFEST_SIZE_MAX;
                if (!j->buf)
                        j->buf = g_byte_array_new();
                g_byte_array_set_size(j->buf, 0);
        } else {
                url = registry_ping_url(e);
                o.max_body = 64 * 1024;
                if (!j->buf)
                        j->buf = g_byte_array_new();
        }

        o.url = url;
        o.accept = job_is_manifest(j) ? MANIFEST_ACCEPT_HEADER : NULL;
        o.authorization = j->auth_header;
        o.stall_timeout_sec = j->config->settings.stall_timeout_sec;
        o.stall_min_bytes = j->config->settings.stall_min_bytes;
        o.tls = (HttpTls){ e->ca_file, e->client_cert, e->client_key, e->skip_verify };

        r = http_request_new(j->ctx->glue, &o,
                             j->kind == FETCH_BLOB ? job_on_body_ingest : job_on_body_memory, job_on_done, j,
                             &j->req);
        if (r >= 0)
                r = http_request_start(j->req);
        if (r < 0) {
                job_fail(j, r, BERTH_ERROR_IO, "Failed to start request for '%s': %s", url, strerror(-r));
                return;
        }
        log_debug("GET %s%s", url, j->auth_header ? " (authorized)" : "");
}

static void job_begin_endpoint(FetchJob *j) {
        RegistryEndpoint *e = job_endpoint(j);
        const char *cached;

        j->attempt = 0;
        j->auth_tried = false;
        j->creds_withheld = false;
        j->http_fallback_active = false;
        j->tls_error = mfree(j->tls_error);
        j->auth_header = erase_and_free(j->auth_header);
        if (j->kind != FETCH_LOGIN) {
                cached = auth_cache_lookup(j->ctx->auth, e->host, j->scope, now_usec(j));
                if (cached) {
                        j->auth_header = g_strdup(cached);
                        /* A cached token may have been revoked: allow one fresh challenge round. */
                }
        }
        job_send(j);
}

int fetch_job_start(FetchJob *j, HostsConfig *config) {
        g_autofree char *error = NULL;
        int r;

        j->config = config;
        r = hosts_config_endpoints(config, j->registry, &j->endpoints, &j->n_endpoints, &error);
        if (r < 0) {
                job_set_error(j, r, BERTH_ERROR_INVALID_REFERENCE,
                              "No usable endpoint for registry '%s': %s", j->registry,
                              error ?: strerror(-r));
                return r;
        }
        if (j->repository)
                j->scope = registry_pull_scope(j->repository);
        j->endpoint_idx = 0;
        while (j->endpoint_idx < j->n_endpoints && !job_endpoint_usable(j, j->endpoint_idx))
                j->endpoint_idx++;
        if (j->endpoint_idx >= j->n_endpoints) {
                job_set_error(j, -ENOENT, BERTH_ERROR_REGISTRY, "No usable endpoint for registry '%s'",
                              j->registry);
                return -ENOENT;
        }
        fetch_job_set_state(j, FETCH_STATE_RESOLVING);
        job_begin_endpoint(j);
        return 0;
}
