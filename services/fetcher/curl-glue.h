/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "curl-dl.h"
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "berth-limits.h"
#include "macro.h"

/* libcurl's multi interface driven by sd-event (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION → sd_event_add_io
 * and a one-shot timer), plus HttpRequest: one GET with the registry client's fixed safety options,
 * bounded header collection and a body sink. */

typedef struct CurlGlue CurlGlue;

int curl_glue_new(sd_event *event, CurlGlue **ret);
CurlGlue *curl_glue_free(CurlGlue *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlGlue *, curl_glue_free);

typedef struct HttpRequest HttpRequest;

/* Body of a 2xx response. first is true on the first chunk of each response (a redirect chain gives
 * only the final one). Return <0 to abort the transfer with that error. */
typedef int (*http_body_t)(HttpRequest *req, const void *data, size_t size, bool first, void *userdata);
/* Transfer over: curl_code is CURLE_OK or the failure; req->abort_error is set when a sink aborted. */
typedef void (*http_done_t)(HttpRequest *req, CURLcode curl_code, void *userdata);

typedef struct HttpTls {
        const char *ca_file;     /* NULL: system store */
        const char *client_cert; /* PEM */
        const char *client_key;
        bool skip_verify;
} HttpTls;

typedef struct HttpRequestOptions {
        const char *url;
        const char *accept;        /* full "Accept: …" header line, or NULL */
        const char *authorization; /* full "Authorization: …" header line, or NULL */
        uint64_t range_start;      /* > 0: "Range: bytes=N-" */
        uint64_t max_body;         /* abort beyond this many body bytes (0: unlimited) */
        unsigned stall_timeout_sec;
        unsigned stall_min_bytes; /* bytes/s below which a transfer counts as stalled (0: 1) */
        HttpTls tls;
} HttpRequestOptions;

struct HttpRequest {
        CurlGlue *glue;
        CURL *curl;
        struct curl_slist *headers;
        http_body_t on_body;
        http_done_t on_done;
        void *userdata;
        bool running;

        /* Of the last response in the redirect chain. */
        long status;
        char *content_type;
        char *docker_content_digest;
        char *www_authenticate;
        char *content_range;
        char *retry_after;
        bool body_started;
        uint64_t body_bytes;
        uint64_t max_body;
        size_t header_bytes; /* over the whole chain, capped by HTTP_HEADER_MAX */

        char *error_body; /* non-2xx body, first HTTP_ERROR_BODY_MAX bytes */
        size_t error_body_size;

        int abort_error; /* negative errno when a callback stopped the transfer */

        /* What a redirect needs to rebuild the request (http_request_follow()). */
        char *origin_url;
        char *accept;
        char *authorization;
        HttpTls tls; /* owned copies; only with manual_redirects */
        uint64_t range_start;
        unsigned stall_timeout_sec, stall_min_bytes;
        unsigned n_redirects;
        bool https_only;
        bool manual_redirects;
        char errbuf[CURL_ERROR_SIZE];
};

int http_request_new(CurlGlue *g, const HttpRequestOptions *o, http_body_t on_body, http_done_t on_done,
                     void *userdata, HttpRequest **ret);
int http_request_start(HttpRequest *req);
/* Stops the transfer if running (no on_done call) and frees. */
HttpRequest *http_request_free(HttpRequest *req);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpRequest *, http_request_free);
/* The effective URL (after redirects) or NULL. */
const char *http_request_effective_url(HttpRequest *req);
/* curl's message for a failed transfer. */
const char *http_request_error_message(HttpRequest *req, CURLcode code);
