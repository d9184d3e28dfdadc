/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), renameat2(), reallocarray() */
#endif
#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <strings.h>

#include "escape.h"
#include "json-util.h"
#include "oci-types.h"
#include "registry.h"

static char *with_ns(const RegistryEndpoint *e, const char *registry, char *url) {
        g_autofree char *ns = NULL;
        char *r;

        if (!url || !e->mirror)
                return url;
        /* containerd's convention: a mirror learns which upstream the request is for. */
        ns = g_uri_escape_string(registry, NULL, FALSE);
        r = g_strdup_printf("%s?ns=%s", url, ns);
        g_free(url);
        return r;
}

char *registry_ping_url(const RegistryEndpoint *e) {
        return g_strdup_printf("%s/v2/", e->base_url);
}

char *registry_manifest_url(const RegistryEndpoint *e, const char *registry, const char *repository,
                            const char *reference) {
        /* repository and reference passed the reference grammar / digest_validate: URL-safe as they are. */
        return with_ns(e, registry,
                       g_strdup_printf("%s/v2/%s/manifests/%s", e->base_url, repository, reference));
}

char *registry_blob_url(const RegistryEndpoint *e, const char *registry, const char *repository,
                        const char *digest) {
        return with_ns(e, registry, g_strdup_printf("%s/v2/%s/blobs/%s", e->base_url, repository, digest));
}

char *registry_pull_scope(const char *repository) {
        return g_strdup_printf("repository:%s:pull", repository);
}

bool media_type_is_manifest(const char *media_type) {
        static const char *const types[] = {
                MEDIA_TYPE_OCI_INDEX,
                MEDIA_TYPE_OCI_MANIFEST,
                MEDIA_TYPE_DOCKER_LIST,
                MEDIA_TYPE_DOCKER_MANIFEST,
        };

        if (!media_type)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (streq(media_type, types[i]))
                        return true;
        return false;
}

char *content_type_essence(const char *content_type) {
        size_t l;

        if (!content_type)
                return NULL;
        while (*content_type == ' ' || *content_type == '\t')
                content_type++;
        l = strcspn(content_type, "; \t");
        return g_ascii_strdown(content_type, (gssize) l);
}

char *registry_error_summary(const char *body, size_t size) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *error = NULL;
        JsonNode *errors, *first;
        JsonObject *o;
        const char *code, *message;
        g_autofree char *s = NULL;

        if (!body || size == 0)
                return NULL;
        if (json_parse_bounded(body, size, 64 * 1024, &root, &error) < 0)
                return NULL;
        if (!JSON_NODE_HOLDS_OBJECT(root))
                return NULL;
        errors = json_object_get_member(json_node_get_object(root), "errors");
        if (!errors || !JSON_NODE_HOLDS_ARRAY(errors) ||
            json_array_get_length(json_node_get_array(errors)) == 0)
                return NULL;
        first = json_array_get_element(json_node_get_array(errors), 0);
        if (!JSON_NODE_HOLDS_OBJECT(first))
                return NULL;
        o = json_node_get_object(first);
        code = json_object_has_member(o, "code") && JSON_NODE_HOLDS_VALUE(json_object_get_member(o, "code"))
                       ? json_object_get_string_member_with_default(o, "code", NULL)
                       : NULL;
        message = json_object_has_member(o, "message") &&
                                  JSON_NODE_HOLDS_VALUE(json_object_get_member(o, "message"))
                          ? json_object_get_string_member_with_default(o, "message", NULL)
                          : NULL;
        if (!code && !message)
                return NULL;
        s = g_strdup_printf("%.64s%s%.200s", code ?: "", code && message ? ": " : "", message ?: "");
        /* The registry's words end up in messages on terminals: nothing but printable ASCII. */
        return escape_untrusted(s, 0, 0);
}

int content_range_start(const char *value, unsigned long long *ret) {
        unsigned long long start, end;
        char *p;

        if (!value || strncasecmp(value, "bytes ", 6) != 0)
                return -EBADMSG;
        value += 6;
        if (!g_ascii_isdigit(*value))
                return -EBADMSG;
        errno = 0;
        start = strtoull(value, &p, 10);
        if (errno != 0 || *p != '-' || !g_ascii_isdigit(p[1]))
                return -EBADMSG;
        end = strtoull(p + 1, &p, 10);
        if (errno != 0 || *p != '/' || end < start)
                return -EBADMSG;
        *ret = start;
        return 0;
}
