/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), renameat2(), reallocarray() */
#endif
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <sys/epoll.h>

#include "config.h"
#include "curl-glue.h"
#include "erase-util.h"
#include "berth-limits.h"
#include "log.h"

struct CurlGlue {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        GHashTable *ios; /* fd → sd_event_source* */
};

static int http_request_follow(HttpRequest *req, const char *location);

static void curl_glue_check_finished(CurlGlue *g) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(g->multi, &left))) {
                HttpRequest *req = NULL;
                CURLcode code;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                code = msg->data.result;
                if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req) != CURLE_OK ||
                    !req)
                        continue;
                (void) curl_multi_remove_handle(g->multi, req->curl);
                req->running = false;
                (void) curl_easy_getinfo(req->curl, CURLINFO_RESPONSE_CODE, &req->status);
                if (code == CURLE_OK && req->manual_redirects && req->abort_error == 0 &&
                    (req->status == 301 || req->status == 302 || req->status == 303 || req->status == 307 ||
                     req->status == 308)) {
                        char *location = NULL;
                        _cleanup_free_ char *copy = NULL;

                        if (curl_easy_getinfo(req->curl, CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
                            location && (copy = strdup(location))) {
                                int r = http_request_follow(req, copy);
                                if (r >= 0)
                                        continue;
                                code = r == -ELOOP ? CURLE_TOO_MANY_REDIRECTS : CURLE_UNSUPPORTED_PROTOCOL;
                        }
                }
                /* May free req and start or stop other requests. */
                req->on_done(req, code, req->userdata);
        }
}

static int curl_glue_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlGlue *g = userdata;
        int action = 0, k = 0;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        if (curl_multi_socket_action(g->multi, fd, action, &k) != CURLM_OK)
                log_debug("curl_multi_socket_action() failed on fd %d", fd);
        curl_glue_check_finished(g);
        return 0;
}

static int curl_glue_socket_cb(CURL *curl, curl_socket_t fd, int action, void *userp, void *socketp) {
        CurlGlue *g = userp;
        sd_event_source *io = g_hash_table_lookup(g->ios, GINT_TO_POINTER(fd));
        uint32_t events = 0;
        int r;

        if (action == CURL_POLL_REMOVE) {
                if (io)
                        g_hash_table_remove(g->ios, GINT_TO_POINTER(fd));
                return 0;
        }
        if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (io) {
                r = sd_event_source_set_io_events(io, events);
                if (r >= 0)
                        r = sd_event_source_set_enabled(io, SD_EVENT_ON);
        } else {
                r = sd_event_add_io(g->event, &io, fd, events, curl_glue_on_io, g);
                if (r >= 0) {
                        (void) sd_event_source_set_description(io, "curl-io");
                        g_hash_table_insert(g->ios, GINT_TO_POINTER(fd), io);
                }
        }
        if (r < 0) {
                log_debug_errno(r, "Failed to watch curl socket %d: %m", fd);
                return -1;
        }
        return 0;
}

static int curl_glue_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlGlue *g = userdata;
        int k = 0;

        if (curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &k) != CURLM_OK)
                log_debug("curl_multi_socket_action(timeout) failed");
        curl_glue_check_finished(g);
        return 0;
}

static int curl_glue_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        CurlGlue *g = userp;
        uint64_t usec;
        int r;

        if (timeout_ms < 0) {
                if (g->timer)
                        (void) sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
                return 0;
        }
        r = sd_event_now(g->event, CLOCK_MONOTONIC, &usec);
        if (r < 0)
                return -1;
        usec += (uint64_t) timeout_ms * 1000ULL + 1;
        if (g->timer) {
                r = sd_event_source_set_time(g->timer, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT);
        } else {
                /* Accuracy 1 µs: curl asks for 0 ms timeouts to be driven "now", and sd-event's default
                 * 250 ms slack would add a quarter second to every request. */
                r = sd_event_add_time(g->event, &g->timer, CLOCK_MONOTONIC, usec, 1, curl_glue_on_timer, g);
                if (r >= 0)
                        (void) sd_event_source_set_description(g->timer, "curl-timer");
        }
        return r < 0 ? -1 : 0;
}

static void io_source_free(gpointer p) {
        sd_event_source_disable_unref(p);
}

int curl_glue_new(sd_event *event, CurlGlue **ret) {
        _cleanup_(curl_glue_freep) CurlGlue *g = NULL;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(event);
        g->ios = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, io_source_free);
        *ret = TAKE_PTR(g);
        return 0;
}

/* libcurl and its TLS backend are set up at the first request, not at start-up: a fetcher that was
 * activated for GetInfo, OpenBlob or ListContent (and exits again when idle) never pays for them. */
static int curl_glue_ensure_multi(CurlGlue *g) {
        int r;

        if (g->multi)
                return 0;
        r = curl_dl_open();
        if (r < 0)
                return r;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        g->multi = curl_multi_init();
        if (!g->multi)
                return -ENOMEM;
        if (curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, curl_glue_socket_cb) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, curl_glue_timer_cb) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g) != CURLM_OK) {
                curl_multi_cleanup(g->multi);
                g->multi = NULL;
                return -EIO;
        }
        return 0;
}

CurlGlue *curl_glue_free(CurlGlue *g) {
        if (!g)
                return NULL;
        if (g->multi)
                curl_multi_cleanup(g->multi);
        g_hash_table_destroy(g->ios);
        sd_event_source_disable_unref(g->timer);
        sd_event_unref(g->event);
        return mfree(g);
}

static char *strdup_trimmed(const char *s, size_t n) {
        while (n > 0 && (*s == ' ' || *s == '\t')) {
                s++;
                n--;
        }
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
        return strndup(s, n);
}

static void http_request_reset_response(HttpRequest *req) {
        req->content_type = mfree(req->content_type);
        req->docker_content_digest = mfree(req->docker_content_digest);
        req->www_authenticate = mfree(req->www_authenticate);
        req->content_range = mfree(req->content_range);
        req->retry_after = mfree(req->retry_after);
        req->error_body = mfree(req->error_body);
        req->error_body_size = 0;
        req->body_started = false;
        req->body_bytes = 0;
}

static size_t http_header_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        static const struct {
                const char *name;
                size_t offset;
        } fields[] = {
                { "content-type", offsetof(HttpRequest, content_type) },
                { "docker-content-digest", offsetof(HttpRequest, docker_content_digest) },
                { "www-authenticate", offsetof(HttpRequest, www_authenticate) },
                { "content-range", offsetof(HttpRequest, content_range) },
                { "retry-after", offsetof(HttpRequest, retry_after) },
        };
        HttpRequest *req = userdata;
        size_t n = size * nmemb;
        const char *colon;

        /* SECURITY: headers are attacker-controlled too; bound their total over the redirect chain. */
        req->header_bytes += n;
        if (req->header_bytes > HTTP_HEADER_MAX) {
                req->abort_error = -E2BIG;
                return 0;
        }
        if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
                /* A new response (after a redirect or a 100 Continue): forget the previous one's headers. */
                http_request_reset_response(req);
                return n;
        }
        colon = memchr(data, ':', n);
        if (!colon)
                return n;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                size_t l = strlen(fields[i].name);
                char **p = (char **) ((uint8_t *) req + fields[i].offset);

                if ((size_t) (colon - data) != l || strncasecmp(data, fields[i].name, l) != 0)
                        continue;
                if (*p) /* first one wins; a duplicate WWW-Authenticate for another scheme is ignored */
                        break;
                if (memchr(colon + 1, '\0', n - l - 1)) {
                        req->abort_error = -EBADMSG;
                        return 0;
                }
                *p = strdup_trimmed(colon + 1, n - l - 1);
                if (!*p) {
                        req->abort_error = -ENOMEM;
                        return 0;
                }
                break;
        }
        return n;
}

static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        HttpRequest *req = userdata;
        size_t n = size * nmemb;
        bool first;
        long status = 0;
        int r;

        (void) curl_easy_getinfo(req->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status >= 300) {
                /* Keep the beginning of an error body for its message; stop reading a huge one. */
                size_t room = HTTP_ERROR_BODY_MAX - req->error_body_size;
                char *b;

                if (n > room) {
                        req->abort_error = -E2BIG;
                        req->status = status;
                        return 0;
                }
                b = realloc(req->error_body, req->error_body_size + n + 1);
                if (!b) {
                        req->abort_error = -ENOMEM;
                        return 0;
                }
                memcpy(b + req->error_body_size, data, n);
                req->error_body_size += n;
                b[req->error_body_size] = '\0';
                req->error_body = b;
                return n;
        }

        /* SECURITY: never trust Content-Length; count what arrives and stop at the promised size. */
        if (req->max_body > 0 && n > req->max_body - req->body_bytes) {
                req->abort_error = -EFBIG;
                return 0;
        }
        first = !req->body_started;
        req->body_started = true;
        req->body_bytes += n;
        req->status = status;
        r = req->on_body ? req->on_body(req, data, n, first, req->userdata) : 0;
        if (r < 0) {
                req->abort_error = r;
                return 0;
        }
        return n;
}

HttpRequest *http_request_free(HttpRequest *req) {
        if (!req)
                return NULL;
        if (req->running)
                (void) curl_multi_remove_handle(req->glue->multi, req->curl);
        if (req->curl)
                curl_easy_cleanup(req->curl);
        /* The list holds our copy of the Authorization header: wiped before it is freed. */
        for (struct curl_slist *h = req->headers; h; h = h->next)
                erase_buffer(h->data, strlen(h->data));
        curl_slist_free_all(req->headers);
        http_request_reset_response(req);
        free(req->origin_url);
        free(req->accept);
        if (req->authorization) {
                explicit_bzero(req->authorization, strlen(req->authorization));
                free(req->authorization);
        }
        free((char *) req->tls.ca_file);
        free((char *) req->tls.client_cert);
        free((char *) req->tls.client_key);
        return mfree(req);
}

static bool url_is_https(const char *url) {
        return strncasecmp(url, "https://", 8) == 0;
}

/* Origin = scheme, host and port, compared case-insensitively (host names are). */
static bool url_same_origin(const char *a, const char *b) {
        size_t la, lb;
        const char *pa = strstr(a, "://"), *pb = strstr(b, "://");

        if (!pa || !pb)
                return false;
        la = (size_t) (pa - a) + 3 + strcspn(pa + 3, "/?#");
        lb = (size_t) (pb - b) + 3 + strcspn(pb + 3, "/?#");
        return la == lb && strncasecmp(a, b, la) == 0;
}

static bool tls_is_custom(const HttpTls *t) {
        return t->ca_file || t->client_cert || t->client_key || t->skip_verify;
}

/* (Re)configures the easy handle for url from scratch. tls and authorization apply to this URL only. */
static int http_request_configure(HttpRequest *req, const char *url, const HttpTls *tls,
                                  const char *authorization) {
        CURL *c = req->curl;

        curl_easy_reset(c);
        curl_slist_free_all(req->headers);
        req->headers = NULL;
        if (req->accept && !(req->headers = curl_slist_append(req->headers, req->accept)))
                return -ENOMEM;
        /* curl ≥ 7.83 drops custom Authorization headers when a redirect leaves the original host, port
         * or scheme (CVE-2022-27776), and UNRESTRICTED_AUTH stays off: registries redirect blob
         * downloads to storage hosts that must never see the registry's credentials (CVE-2020-15157). */
        if (authorization && !(req->headers = curl_slist_append(req->headers, authorization)))
                return -ENOMEM;

        if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PRIVATE, req) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_ERRORBUFFER, req->errbuf) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            /* SECURITY: an https registry may only redirect to https (CVE-2014-5277: no silent
             * downgrade); a plain-http registry was configured as such and may redirect to either. */
            curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, req->https_only ? "https" : "http,https") !=
                    CURLE_OK ||
            /* SECURITY: a request with per-host TLS settings (skip-verify, own CA, client certificate)
             * follows redirects itself (curl_glue_check_finished): curl would apply those settings to
             * every host of the chain, so a registry could send our client certificate, or a transfer
             * we do not verify, to any host it names. */
            curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req->manual_redirects ? 0L : 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_MAXREDIRS, REDIRECTS_MAX) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header_cb) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HEADERDATA, req) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write_cb) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEDATA, req) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L) != CURLE_OK ||
            /* Stall detection only: no total timeout, a slow but moving download of a big layer is fine.
             * A transfer slower than stall_min_bytes/s for stall_timeout_sec is cut (and retried). */
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long) (req->stall_min_bytes ?: 1)) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long) (req->stall_timeout_sec ?: 30)) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, tls->skip_verify ? 0L : 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, tls->skip_verify ? 0L : 2L) != CURLE_OK)
                return -EIO;
        /* No CURLOPT_MAXFILESIZE: it also applies to error bodies (a 404's JSON is bigger than a tiny
         * blob); the write callback enforces max_body on the bytes that actually arrive instead. */
        if (tls->ca_file && curl_easy_setopt(c, CURLOPT_CAINFO, tls->ca_file) != CURLE_OK)
                return -EIO;
        if (tls->client_cert && curl_easy_setopt(c, CURLOPT_SSLCERT, tls->client_cert) != CURLE_OK)
                return -EIO;
        if (tls->client_key && curl_easy_setopt(c, CURLOPT_SSLKEY, tls->client_key) != CURLE_OK)
                return -EIO;
        if (req->range_start > 0) {
                char range[32];

                snprintf(range, sizeof(range), "%" PRIu64 "-", req->range_start);
                if (curl_easy_setopt(c, CURLOPT_RANGE, range) != CURLE_OK)
                        return -EIO;
        }
        return 0;
}

int http_request_new(CurlGlue *g, const HttpRequestOptions *o, http_body_t on_body, http_done_t on_done,
                     void *userdata, HttpRequest **ret) {
        _cleanup_(http_request_freep) HttpRequest *req = NULL;
        int r;

        /* SECURITY: only http and https, ever (no file://, no gopher:// via a redirect). */
        if (strncasecmp(o->url, "http://", 7) != 0 && !url_is_https(o->url))
                return -EPROTONOSUPPORT;

        r = curl_glue_ensure_multi(g);
        if (r < 0)
                return r;

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        req->glue = g;
        req->on_body = on_body;
        req->on_done = on_done;
        req->userdata = userdata;
        req->max_body = o->max_body;
        req->range_start = o->range_start;
        req->stall_timeout_sec = o->stall_timeout_sec;
        req->stall_min_bytes = o->stall_min_bytes;
        req->https_only = url_is_https(o->url);
        req->manual_redirects = tls_is_custom(&o->tls);
        req->origin_url = strdup(o->url);
        req->accept = o->accept ? strdup(o->accept) : NULL;
        req->authorization = o->authorization ? strdup(o->authorization) : NULL;
        if (!req->origin_url || (o->accept && !req->accept) || (o->authorization && !req->authorization))
                return -ENOMEM;
        if (req->manual_redirects) {
                req->tls.ca_file = o->tls.ca_file ? strdup(o->tls.ca_file) : NULL;
                req->tls.client_cert = o->tls.client_cert ? strdup(o->tls.client_cert) : NULL;
                req->tls.client_key = o->tls.client_key ? strdup(o->tls.client_key) : NULL;
                req->tls.skip_verify = o->tls.skip_verify;
        }

        req->curl = curl_easy_init();
        if (!req->curl)
                return -ENOMEM;
        r = http_request_configure(req, o->url, &o->tls, o->authorization);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(req);
        return 0;
}

/* A redirect of a request with per-host TLS settings: same origin keeps them (and the Authorization
 * header); another origin gets the defaults (verified against the system store, no client certificate,
 * no credentials). Returns 0 when the request runs again, <0 when the redirect is refused. */
static int http_request_follow(HttpRequest *req, const char *location) {
        static const HttpTls defaults = {};
        bool same;
        int r;

        if (++req->n_redirects > REDIRECTS_MAX)
                return -ELOOP;
        if (strncasecmp(location, "https://", 8) != 0 &&
            (req->https_only || strncasecmp(location, "http://", 7) != 0))
                return -EPROTONOSUPPORT;
        same = url_same_origin(location, req->origin_url);
        if (!same)
                log_debug("Redirect to another host: its TLS is verified with the defaults, no credentials");
        http_request_reset_response(req);
        r = http_request_configure(req, location, same ? (const HttpTls *) &req->tls : &defaults,
                                   same ? req->authorization : NULL);
        if (r < 0)
                return r;
        if (curl_multi_add_handle(req->glue->multi, req->curl) != CURLM_OK)
                return -EIO;
        req->running = true;
        return 0;
}

int http_request_start(HttpRequest *req) {
        if (req->running)
                return -EBUSY;
        if (curl_multi_add_handle(req->glue->multi, req->curl) != CURLM_OK)
                return -EIO;
        req->running = true;
        return 0;
}

const char *http_request_effective_url(HttpRequest *req) {
        char *url = NULL;

        if (curl_easy_getinfo(req->curl, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK)
                return NULL;
        return url;
}

const char *http_request_error_message(HttpRequest *req, CURLcode code) {
        return req->errbuf[0] ? req->errbuf : curl_easy_strerror(code);
}
