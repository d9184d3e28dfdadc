/* SPDX-License-Identifier: LGPL-2.1-or-later */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), stpcpy() */
#endif

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "digest.h"
#include "escape.h"
#include "json-util.h"
#include "berth-limits.h"
#include "oci-types.h"

#define MEDIA_TYPE_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

static size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

/* ---- media types ---- */

MediaKind media_type_kind(const char *media_type) {
        static const struct {
                const char *type;
                MediaKind kind;
        } table[] = {
                { MEDIA_TYPE_OCI_INDEX, MEDIA_KIND_INDEX },
                { MEDIA_TYPE_DOCKER_LIST, MEDIA_KIND_INDEX },
                { MEDIA_TYPE_OCI_MANIFEST, MEDIA_KIND_MANIFEST },
                { MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_KIND_MANIFEST },
                { MEDIA_TYPE_OCI_CONFIG, MEDIA_KIND_CONFIG },
                { MEDIA_TYPE_DOCKER_CONFIG, MEDIA_KIND_CONFIG },
                { MEDIA_TYPE_OCI_LAYER, MEDIA_KIND_LAYER },
                { MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_KIND_LAYER },
                { MEDIA_TYPE_OCI_LAYER_ZSTD, MEDIA_KIND_LAYER },
                { MEDIA_TYPE_OCI_LAYER_ND, MEDIA_KIND_LAYER },
                { MEDIA_TYPE_OCI_LAYER_ND_GZIP, MEDIA_KIND_LAYER },
                { MEDIA_TYPE_OCI_LAYER_ND_ZSTD, MEDIA_KIND_LAYER },
                { MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_KIND_LAYER },
                { MEDIA_TYPE_DOCKER_LAYER, MEDIA_KIND_LAYER },
                { MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP, MEDIA_KIND_LAYER },
        };

        if (!media_type)
                return _MEDIA_KIND_INVALID;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(media_type, table[i].type))
                        return table[i].kind;

        return _MEDIA_KIND_INVALID;
}

LayerCompression media_type_layer_compression(const char *media_type) {
        static const struct {
                const char *type;
                LayerCompression compression;
        } table[] = {
                { MEDIA_TYPE_OCI_LAYER, LAYER_COMPRESSION_NONE },
                { MEDIA_TYPE_OCI_LAYER_ND, LAYER_COMPRESSION_NONE },
                { MEDIA_TYPE_OCI_LAYER_GZIP, LAYER_COMPRESSION_GZIP },
                { MEDIA_TYPE_OCI_LAYER_ND_GZIP, LAYER_COMPRESSION_GZIP },
                { MEDIA_TYPE_DOCKER_LAYER_GZIP, LAYER_COMPRESSION_GZIP },
                { MEDIA_TYPE_DOCKER_LAYER, LAYER_COMPRESSION_NONE },
                { MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP, LAYER_COMPRESSION_GZIP },
                { MEDIA_TYPE_OCI_LAYER_ZSTD, LAYER_COMPRESSION_ZSTD },
                { MEDIA_TYPE_OCI_LAYER_ND_ZSTD, LAYER_COMPRESSION_ZSTD },
        };

        if (!media_type)
                return _LAYER_COMPRESSION_INVALID;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(media_type, table[i].type))
                        return table[i].compression;

        return _LAYER_COMPRESSION_INVALID;
}

static const char *media_kind_name(MediaKind kind) {
        switch (kind) {
        case MEDIA_KIND_INDEX:
                return "an image index";
        case MEDIA_KIND_MANIFEST:
                return "an image manifest";
        case MEDIA_KIND_CONFIG:
                return "an image config";
        case MEDIA_KIND_LAYER:
                return "a layer";
        default:
                return "an unknown document";
        }
}

/* A declared type (Content-Type) may carry parameters ("…+json; charset=utf-8"); compare the bare type. */
static char *media_type_strip_parameters(const char *s) {
        const char *end = strchr(s, ';');
        size_t n = end ? (size_t) (end - s) : strlen(s);

        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
        return strndup(s, n);
}

/* RFC 6838 restricted names: letters, digits and !#$&-^_.+ around one '/'. Anything else is not a media
 * type, and refusing it early keeps odd bytes out of the metadata. */
static bool media_type_syntax_valid(const char *s) {
        const char *slash;

        if (isempty(s) || strlen(s) > 255)
                return false;

        slash = strchr(s, '/');
        if (!slash || slash == s || slash[1] == '\0' || strchr(slash + 1, '/'))
                return false;

        for (const char *c = s; *c; c++) {
                if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))
                        continue;
                if (!strchr("/!#$&-^_.+", *c))
                        return false;
        }
        return true;
}

/* ---- platforms ---- */

void platform_done(Platform *p) {
        if (!p)
                return;

        free(p->os);
        free(p->architecture);
        free(p->variant);
        free(p->os_version);
        *p = (Platform){};
}

/* Architecture aliases to GOARCH spelling; an alias may imply a variant ("armhf" is arm/v7). */
static const char *architecture_normalize(const char *arch, const char **ret_implied_variant) {
        static const struct {
                const char *alias;
                const char *goarch;
                const char *variant;
        } table[] = {
                { "x86_64", "amd64", NULL },    { "x86-64", "amd64", NULL },
                { "amd64", "amd64", NULL },     { "aarch64", "arm64", NULL },
                { "arm64", "arm64", NULL },     { "armhf", "arm", "v7" },
                { "armel", "arm", "v6" },       { "armv7l", "arm", "v7" },
                { "armv6l", "arm", "v6" },      { "armv8l", "arm", "v8" },
                { "arm", "arm", NULL },         { "i386", "386", NULL },
                { "i486", "386", NULL },        { "i586", "386", NULL },
                { "i686", "386", NULL },        { "386", "386", NULL },
                { "ppc64le", "ppc64le", NULL }, { "s390x", "s390x", NULL },
                { "riscv64", "riscv64", NULL }, { "loongarch64", "loong64", NULL },
        };

        if (ret_implied_variant)
                *ret_implied_variant = NULL;
        if (!arch)
                return NULL;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(arch, table[i].alias)) {
                        if (ret_implied_variant)
                                *ret_implied_variant = table[i].variant;
                        return table[i].goarch;
                }

        return arch;
}

/* "7" → "v7"; NULL/"" → NULL. Returns a pointer into a static string or into variant. */
static const char *variant_normalize(const char *arch, const char *variant) {
        static const char *const numeric[] = { "v5", "v6", "v7", "v8", "v9" };

        if (isempty(variant))
                variant = NULL;
        else if (variant[0] >= '5' && variant[0] <= '9' && (variant[1] == '\0' || streq(variant + 1, ".0")))
                variant = numeric[variant[0] - '5'];
        else if (streq(variant, "v8.0"))
                variant = "v8";

        /* arm64 has only ever been v8 for container images: "no variant" and "v8" are the same thing. */
        if (streq_ptr(arch, "arm64") && !variant)
                variant = "v8";
        return variant;
}

static bool platform_component_valid(const char *s) {
        if (isempty(s) || strlen(s) > 64)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
                      *c == '.'))
                        return false;
        return true;
}

int platform_parse(const char *s, Platform *ret, char **ret_error) {
        _cleanup_free_ char *copy = NULL, *quoted = NULL;
        const char *parts[3] = {};
        const char *os, *arch, *variant, *implied;
        size_t n = 0;
        char *state, *tok;

        if (ret_error)
                *ret_error = NULL;
        if (!ret)
                return -EINVAL;

        quoted = escape_untrusted(s, QUOTED_INPUT_MAX, ESCAPE_QUOTED);
        if (!quoted)
                return -ENOMEM;

        if (isempty(s) || strlen(s) > 256)
                return json_set_error(ret_error, EINVAL, "invalid platform '%s'", quoted);

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;

        /* Platforms are matched case-insensitively, as containerd does ("Linux/AMD64"). */
        for (char *c = copy; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char) (*c - 'A' + 'a');

        /* strtok_r would merge "linux//amd64"; walk the separators by hand so empty parts are errors. */
        tok = copy;
        for (;;) {
                if (n >= ELEMENTSOF(parts))
                        return json_set_error(ret_error, EINVAL,
                                              "invalid platform '%s': expected os/architecture[/variant]",
                                              quoted);
                state = strchr(tok, '/');
                if (state)
                        *state = '\0';
                if (!platform_component_valid(tok))
                        return json_set_error(
                                ret_error, EINVAL,
                                "invalid platform '%s': components must be non-empty [a-z0-9_.-]", quoted);
                parts[n++] = tok;
                if (!state)
                        break;
                tok = state + 1;
        }

        if (n == 1) {
                /* A lone "linux" means this machine's architecture on linux; anything else is an
                 * architecture on linux, the only OS we run. */
                if (streq(parts[0], "linux")) {
                        _cleanup_(platform_done) Platform def = {};
                        int r = platform_default(&def);
                        if (r < 0)
                                return r;
                        *ret = def;
                        def = (Platform){};
                        return 0;
                }
                os = "linux";
                arch = parts[0];
                variant = NULL;
        } else {
                os = parts[0];
                arch = parts[1];
                variant = n > 2 ? parts[2] : NULL;
        }

        arch = architecture_normalize(arch, &implied);
        if (implied) {
                if (variant && !streq(variant_normalize(arch, variant), implied))
                        return json_set_error(ret_error, EINVAL,
                                              "invalid platform '%s': architecture implies variant %s",
                                              quoted, implied);
                variant = implied;
        }
        if (variant)
                variant = variant_normalize(arch, variant);

        *ret = (Platform){
                .os = strdup(os),
                .architecture = strdup(arch),
                .variant = variant ? strdup(variant) : NULL,
        };
        if (!ret->os || !ret->architecture || (variant && !ret->variant)) {
                platform_done(ret);
                return -ENOMEM;
        }

        return 0;
}

int platform_default(Platform *ret) {
        const char *arch, *variant;
        struct utsname u;

        if (!ret)
                return -EINVAL;

        if (uname(&u) < 0)
                return negative_errno();

        arch = architecture_normalize(u.machine, &variant);
        if (streq(arch, "arm64"))
                variant = "v8";

        *ret = (Platform){
                .os = strdup("linux"),
                .architecture = strdup(arch),
                .variant = variant ? strdup(variant) : NULL,
        };
        if (!ret->os || !ret->architecture || (variant && !ret->variant)) {
                platform_done(ret);
                return -ENOMEM;
        }

        return 0;
}

char *platform_to_string(const Platform *p) {
        char *s;

        if (!p)
                return NULL;

        if (asprintf(&s, "%s/%s%s%s", p->os ?: "unknown", p->architecture ?: "unknown",
                     p->variant ? "/" : "", p->variant ?: "") < 0)
                return NULL;
        return s;
}

bool platform_matches(const Platform *wanted, const Platform *candidate) {
        const char *wanted_arch, *candidate_arch, *wanted_variant, *candidate_variant, *implied;

        if (!wanted || !candidate || !candidate->architecture)
                return false;

        if (!streq_ptr(wanted->os ?: "linux", candidate->os ?: "linux"))
                return false;

        wanted_arch = architecture_normalize(wanted->architecture, NULL);
        candidate_arch = architecture_normalize(candidate->architecture, &implied);
        if (!streq_ptr(wanted_arch, candidate_arch))
                return false;

        /* amd64 variants (v2, v3…) are CPU feature levels, not ABIs: any amd64 image runs. */
        if (streq(candidate_arch, "amd64"))
                return true;

        /* No wanted variant: anything of this architecture will do (the first listed wins). */
        if (isempty(wanted->variant))
                return true;

        wanted_variant = variant_normalize(wanted_arch, wanted->variant);
        candidate_variant = variant_normalize(candidate_arch, candidate->variant ?: implied);
        return streq_ptr(wanted_variant, candidate_variant);
}

/* ---- descriptors ---- */

void descriptor_done(Descriptor *d) {
        if (!d)
                return;

        free(d->media_type);
        free(d->digest);
        platform_done(&d->platform);
        strv_free(d->urls);
        *d = (Descriptor){};
}

static void descriptors_free(Descriptor *d, size_t n) {
        for (size_t i = 0; d && i < n; i++)
                descriptor_done(&d[i]);
        free(d);
}

static const JsonField platform_table[] = {
        { "os", JSON_FIELD_STRING, offsetof(Platform, os), JSON_MANDATORY },
        { "architecture", JSON_FIELD_STRING, offsetof(Platform, architecture), JSON_MANDATORY },
        { "variant", JSON_FIELD_STRING, offsetof(Platform, variant), 0 },
        { "os.version", JSON_FIELD_STRING, offsetof(Platform, os_version), 0 },
        {}
};

static int dispatch_platform(JsonNode *node, void *target, void *userdata, char **ret_error) {
        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "must be an object");

        return json_dispatch(json_node_get_object(node), platform_table, target, userdata, ret_error);
}

static const JsonField descriptor_table[] = {
        { "mediaType", JSON_FIELD_STRING, offsetof(Descriptor, media_type), JSON_MANDATORY },
        { "digest", JSON_FIELD_STRING, offsetof(Descriptor, digest), JSON_MANDATORY },
        { "size", JSON_FIELD_UINT64, offsetof(Descriptor, size), JSON_MANDATORY },
        { "urls", JSON_FIELD_STRV, offsetof(Descriptor, urls), JSON_NULLABLE },
        { "platform", JSON_FIELD_CUSTOM, offsetof(Descriptor, platform), JSON_NULLABLE, dispatch_platform },
        {}
};

static int descriptor_parse(JsonNode *node, Descriptor *d, char **ret_error) {
        _cleanup_free_ char *quoted = NULL;
        int r;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "descriptor must be an object");

        r = json_dispatch(json_node_get_object(node), descriptor_table, d, NULL, ret_error);
        if (r < 0)
                return r;

        if (!media_type_syntax_valid(d->media_type)) {
                quoted = escape_untrusted(d->media_type, QUOTED_INPUT_MAX, ESCAPE_QUOTED);
                return json_set_error(ret_error, EBADMSG, "invalid media type '%s'", strna(quoted));
        }

        /* SECURITY: the digest names a file in the content store and is what we verify the bytes
         * against; only the strict canonical form is acceptable. */
        if (digest_validate(d->digest, NULL) < 0) {
                quoted = escape_untrusted(d->digest, QUOTED_INPUT_MAX, ESCAPE_QUOTED);
                return json_set_error(ret_error, EBADMSG, "invalid digest '%s'", strna(quoted));
        }

        if (d->size > BLOB_SIZE_MAX)
                return json_set_error(ret_error, EFBIG, "size %" PRIu64 " exceeds the limit of %llu bytes",
                                      d->size, (unsigned long long) BLOB_SIZE_MAX);

        d->has_platform = d->platform.os != NULL;
        return 0;
}

static int descriptor_array_parse(JsonArray *array, size_t max, const char *what, Descriptor **ret,
                                  size_t *ret_n, char **ret_error) {
        Descriptor *d;
        size_t n;
        int r;

        n = json_array_get_length(array);
        if (n > max)
                return json_set_error(ret_error, E2BIG, "too many %s: %zu, the limit is %zu", what, n, max);

        d = calloc(n ?: 1, sizeof(Descriptor));
        if (!d)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                r = descriptor_parse(json_array_get_element(array, (guint) i), &d[i], ret_error);
                if (r < 0) {
                        (void) json_prefix_error(ret_error, "%s[%zu]", what, i);
                        descriptors_free(d, n);
                        return r;
                }
        }

        *ret = d;
        *ret_n = n;
        return 0;
}

/* ---- index and manifest ---- */

typedef struct DocumentHeader {
        int64_t schema_version;
        char *media_type;
} DocumentHeader;

static const JsonField header_table[] = {
        { "schemaVersion", JSON_FIELD_INT64, offsetof(DocumentHeader, schema_version), JSON_MANDATORY },
        { "mediaType", JSON_FIELD_STRING, offsetof(DocumentHeader, media_type), 0 },
        {}
};

static void document_header_done(DocumentHeader *h) {
        free(h->media_type);
}

static int check_type(const char *type, const char *source, MediaKind expected, char **ret_error) {
        _cleanup_free_ char *quoted = NULL;
        MediaKind kind;

        if (streq(type, MEDIA_TYPE_DOCKER_SCHEMA1) || streq(type, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED))
                return json_set_error(ret_error, EPROTONOSUPPORT,
                                      "Docker schema 1 manifests are not supported");

        kind = media_type_kind(type);
        if (kind == expected)
                return 0;

        quoted = escape_untrusted(type, QUOTED_INPUT_MAX, ESCAPE_QUOTED);
        if (!quoted)
                return -ENOMEM;
        if (kind < 0)
                return json_set_error(ret_error, EMEDIUMTYPE, "unsupported %s media type '%s', expected %s",
                                      source, quoted, media_kind_name(expected));
        return json_set_error(ret_error, EMEDIUMTYPE, "expected %s, but the %s media type '%s' is %s",
                              media_kind_name(expected), source, quoted, media_kind_name(kind));
}

/* SECURITY: one set of bytes must mean one thing. A document that could be read both as an index and as
 * a manifest (CVE-2021-41190) lets a registry show different content to different clients, so the
 * declared type, the embedded type and the document's shape must all agree.
 *
 * Then fills target from the document's top-level object through table, and sets *ret_media_type to the
 * document's (or else the declared) media type. */
static int parse_document(const char *data, size_t size, const char *declared, MediaKind expected,
                          const JsonField table[], void *target, char **ret_media_type, char **ret_error) {
        _cleanup_(document_header_done) DocumentHeader header = {};
        _cleanup_free_ char *declared_bare = NULL;
        _cleanup_json_node_ JsonNode *root = NULL;
        JsonObject *object;
        int r;

        if (!data && size > 0)
                return -EINVAL;

        if (declared) {
                declared_bare = media_type_strip_parameters(declared);
                if (!declared_bare)
                        return -ENOMEM;
                r = check_type(declared_bare, "declared", expected, ret_error);
                if (r < 0)
                        return r;
        }

        r = json_parse_bounded(data, size, MANIFEST_SIZE_MAX, &root, ret_error);
        if (r < 0)
                return r;

        if (!JSON_NODE_HOLDS_OBJECT(root))
                return json_set_error(ret_error, EBADMSG, "document must be a JSON object");
        object = json_node_get_object(root);

        r = json_dispatch(object, header_table, &header, NULL, ret_error);
        if (r < 0)
                return r;

        if (header.schema_version == 1)
                return json_set_error(ret_error, EPROTONOSUPPORT,
                                      "Docker schema 1 manifests are not supported");
        if (header.schema_version != 2)
                return json_set_error(ret_error, EBADMSG,
                                      "unsupported schemaVersion %" PRIi64 ", expected 2",
                                      header.schema_version);

        if (header.media_type) {
                r = check_type(header.media_type, "document's", expected, ret_error);
                if (r < 0)
                        return r;

                if (declared_bare && !streq(declared_bare, header.media_type)) {
                        _cleanup_free_ char *q1 = escape_untrusted(declared_bare, QUOTED_INPUT_MAX,
                                                                   ESCAPE_QUOTED),
                                            *q2 = escape_untrusted(header.media_type, QUOTED_INPUT_MAX,
                                                                   ESCAPE_QUOTED);
                        return json_set_error(
                                ret_error, EMEDIUMTYPE,
                                "declared media type '%s' does not match the document's mediaType '%s'",
                                strna(q1), strna(q2));
                }
        }

        if (expected == MEDIA_KIND_INDEX) {
                if (json_object_has_member(object, "config") || json_object_has_member(object, "layers"))
                        return json_set_error(
                                ret_error, EMEDIUMTYPE,
                                "expected an image index, but the document has 'config' or 'layers' "
                                "like an image manifest");
        } else if (json_object_has_member(object, "manifests"))
                return json_set_error(
                        ret_error, EMEDIUMTYPE,
                        "expected an image manifest, but the document has 'manifests' like an image index");

        r = json_dispatch(object, table, target, NULL, ret_error);
        if (r < 0)
                return r;

        *ret_media_type = TAKE_PTR(header.media_type);
        if (!*ret_media_type && declared_bare)
                *ret_media_type = TAKE_PTR(declared_bare);
        return 0;
}

OciIndex *oci_index_free(OciIndex *i) {
        if (!i)
                return NULL;

        free(i->media_type);
        descriptors_free(i->manifests, i->n_manifests);
        return mfree(i);
}

static int dispatch_index_manifests(JsonNode *node, void *target, void *userdata, char **ret_error) {
        OciIndex *index = target;

        if (!JSON_NODE_HOLDS_ARRAY(node))
                return json_set_error(ret_error, EBADMSG, "must be an array");

        return descriptor_array_parse(json_node_get_array(node), INDEX_MANIFESTS_MAX, "manifests",
                                      &index->manifests, &index->n_manifests, ret_error);
}

/* Offset 0: the dispatcher fills both the array and its length. */
static const JsonField index_table[] = {
        { "manifests", JSON_FIELD_CUSTOM, 0, JSON_MANDATORY, dispatch_index_manifests }, {}
};

int oci_index_parse(const char *data, size_t size, const char *media_type, OciIndex **ret,
                    char **ret_error) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!ret)
                return -EINVAL;

        index = calloc(1, sizeof(OciIndex));
        if (!index)
                return -ENOMEM;

        r = parse_document(data, size, media_type, MEDIA_KIND_INDEX, index_table, index, &index->media_type,
                           ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(index);
        return 0;
}

OciManifest *oci_manifest_free(OciManifest *m) {
        if (!m)
                return NULL;

        free(m->media_type);
        descriptor_done(&m->config);
        descriptors_free(m->layers, m->n_layers);
        return mfree(m);
}

static int dispatch_manifest_config(JsonNode *node, void *target, void *userdata, char **ret_error) {
        _cleanup_free_ char *quoted = NULL;
        Descriptor *d = target;
        int r;

        r = descriptor_parse(node, d, ret_error);
        if (r < 0)
                return r;

        if (media_type_kind(d->media_type) != MEDIA_KIND_CONFIG) {
                quoted = escape_untrusted(d->media_type, QUOTED_INPUT_MAX, ESCAPE_QUOTED);
                return json_set_error(ret_error, EMEDIUMTYPE, "unsupported config media type '%s'",
                                      strna(quoted));
        }
        return 0;
}

static int dispatch_manifest_layers(JsonNode *node, void *target, void *userdata, char **ret_error) {
        OciManifest *m = target;
        int r;

        if (!JSON_NODE_HOLDS_ARRAY(node))
                return json_set_error(ret_error, EBADMSG, "must be an array");

        r = descriptor_array_parse(json_node_get_array(node), LAYERS_MAX, "layers", &m->layers, &m->n_layers,
                                   ret_error);
        if (r < 0)
                return r;

        for (size_t i = 0; i < m->n_layers; i++)
                if (media_type_kind(m->layers[i].media_type) != MEDIA_KIND_LAYER) {
                        _cleanup_free_ char *quoted =
                                escape_untrusted(m->layers[i].media_type, QUOTED_INPUT_MAX, ESCAPE_QUOTED);
                        return json_set_error(ret_error, EMEDIUMTYPE,
                                              "layers[%zu]: unsupported layer media type '%s'", i,
                                              strna(quoted));
                }

        return 0;
}

static const JsonField manifest_table[] = {
        { "config", JSON_FIELD_CUSTOM, offsetof(OciManifest, config), JSON_MANDATORY,
          dispatch_manifest_config },
        /* Offset 0: the dispatcher fills both the array and its length. */
        { "layers", JSON_FIELD_CUSTOM, 0, JSON_MANDATORY, dispatch_manifest_layers },
        {}
};

int oci_manifest_parse(const char *data, size_t size, const char *media_type, OciManifest **ret,
                       char **ret_error) {
        _cleanup_(oci_manifest_freep) OciManifest *m = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!ret)
                return -EINVAL;

        m = calloc(1, sizeof(OciManifest));
        if (!m)
                return -ENOMEM;

        r = parse_document(data, size, media_type, MEDIA_KIND_MANIFEST, manifest_table, m, &m->media_type,
                           ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

/* ---- image config ---- */

OciImageConfig *oci_image_config_free(OciImageConfig *c) {
        if (!c)
                return NULL;

        platform_done(&c->platform);
        strv_free(c->diff_ids);
        strv_free(c->env);
        strv_free(c->entrypoint);
        strv_free(c->cmd);
        free(c->working_dir);
        free(c->user);
        free(c->created);
        strv_free(c->labels);
        strv_free(c->exposed_ports);
        free(c->stop_signal);
        strv_free(c->health_test);
        return mfree(c);
}

/* An object as a strv: {"k": "v"} → "k=v" (with_values) or {"k": …} → "k" (keys only). */
static int object_to_strv(JsonNode *node, bool with_values, char ***target, char **ret_error) {
        JsonObjectIter iter;
        const char *key;
        JsonNode *value;
        char **l;
        size_t i = 0;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "must be an object");

        l = calloc((size_t) json_object_get_size(json_node_get_object(node)) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        json_object_iter_init(&iter, json_node_get_object(node));
        while (json_object_iter_next(&iter, &key, &value)) {
                if (!g_utf8_validate(key, -1, NULL) ||
                    (with_values &&
                     (!JSON_NODE_HOLDS_VALUE(value) || json_node_get_value_type(value) != G_TYPE_STRING ||
                      !g_utf8_validate(json_node_get_string(value), -1, NULL)))) {
                        strv_free(l);
                        return json_set_error(ret_error, EBADMSG,
                                              with_values ? "label values must be strings"
                                                          : "port names must be valid UTF-8");
                }
                if (with_values ? asprintf(&l[i], "%s=%s", key, json_node_get_string(value)) < 0
                                : !(l[i] = strdup(key))) {
                        l[i] = NULL;
                        strv_free(l);
                        return -ENOMEM;
                }
                i++;
        }

        strv_free(*target);
        *target = l;
        return 0;
}

/* Labels: {"k": "v"} → "k=v". */
static int dispatch_labels(JsonNode *node, void *target, void *userdata, char **ret_error) {
        return object_to_strv(node, true, target, ret_error);
}

/* ExposedPorts: {"80/tcp": {}} → "80/tcp". */
static int dispatch_exposed_ports(JsonNode *node, void *target, void *userdata, char **ret_error) {
        return object_to_strv(node, false, target, ret_error);
}

static const JsonField healthcheck_table[] = {
        { "Test", JSON_FIELD_STRV, offsetof(OciImageConfig, health_test), JSON_NULLABLE },
        { "Interval", JSON_FIELD_INT64, offsetof(OciImageConfig, health_interval), JSON_NULLABLE },
        { "Timeout", JSON_FIELD_INT64, offsetof(OciImageConfig, health_timeout), JSON_NULLABLE },
        { "StartPeriod", JSON_FIELD_INT64, offsetof(OciImageConfig, health_start_period), JSON_NULLABLE },
        { "Retries", JSON_FIELD_INT64, offsetof(OciImageConfig, health_retries), JSON_NULLABLE },
        {}
};

/* Healthcheck: its fields land directly in OciImageConfig (offset 0 in the parent table). */
static int dispatch_healthcheck(JsonNode *node, void *target, void *userdata, char **ret_error) {
        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "must be an object");
        return json_dispatch(json_node_get_object(node), healthcheck_table, target, userdata, ret_error);
}

static const JsonField exec_config_table[] = {
        { "User", JSON_FIELD_STRING, offsetof(OciImageConfig, user), JSON_NULLABLE },
        { "Env", JSON_FIELD_STRV, offsetof(OciImageConfig, env), JSON_NULLABLE },
        { "Entrypoint", JSON_FIELD_STRV, offsetof(OciImageConfig, entrypoint), JSON_NULLABLE },
        { "Cmd", JSON_FIELD_STRV, offsetof(OciImageConfig, cmd), JSON_NULLABLE },
        { "WorkingDir", JSON_FIELD_STRING, offsetof(OciImageConfig, working_dir), JSON_NULLABLE },
        { "Labels", JSON_FIELD_CUSTOM, offsetof(OciImageConfig, labels), JSON_NULLABLE, dispatch_labels },
        { "ExposedPorts", JSON_FIELD_CUSTOM, offsetof(OciImageConfig, exposed_ports), JSON_NULLABLE,
          dispatch_exposed_ports },
        { "StopSignal", JSON_FIELD_STRING, offsetof(OciImageConfig, stop_signal), JSON_NULLABLE },
        { "Healthcheck", JSON_FIELD_CUSTOM, 0, JSON_NULLABLE, dispatch_healthcheck },
        {}
};

static int dispatch_exec_config(JsonNode *node, void *target, void *userdata, char **ret_error) {
        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "must be an object");

        /* Offset 0 in the parent table: these fields land directly in OciImageConfig. */
        return json_dispatch(json_node_get_object(node), exec_config_table, target, userdata, ret_error);
}

typedef struct RootFs {
        char *type;
        char **diff_ids;
} RootFs;

static const JsonField rootfs_table[] = {
        { "type", JSON_FIELD_STRING, offsetof(RootFs, type), JSON_MANDATORY },
        { "diff_ids", JSON_FIELD_STRV, offsetof(RootFs, diff_ids), JSON_MANDATORY },
        {}
};

static void rootfs_done(RootFs *rootfs) {
        free(rootfs->type);
        strv_free(rootfs->diff_ids);
}

static int dispatch_rootfs(JsonNode *node, void *target, void *userdata, char **ret_error) {
        _cleanup_(rootfs_done) RootFs rootfs = {};
        _cleanup_free_ char *quoted = NULL;
        OciImageConfig *c = target;
        size_t n;
        int r;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "must be an object");

        r = json_dispatch(json_node_get_object(node), rootfs_table, &rootfs, userdata, ret_error);
        if (r < 0)
                return r;

        if (!streq(rootfs.type, "layers")) {
                quoted = escape_untrusted(rootfs.type, QUOTED_INPUT_MAX, ESCAPE_QUOTED);
                return json_set_error(ret_error, EBADMSG, "unsupported rootfs type '%s', expected 'layers'",
                                      strna(quoted));
        }

        n = strv_length(rootfs.diff_ids);
        if (n > LAYERS_MAX)
                return json_set_error(ret_error, E2BIG, "too many diff_ids: %zu, the limit is %u", n,
                                      LAYERS_MAX);

        for (size_t i = 0; i < n; i++)
                if (digest_validate(rootfs.diff_ids[i], NULL) < 0) {
                        quoted = escape_untrusted(rootfs.diff_ids[i], QUOTED_INPUT_MAX, ESCAPE_QUOTED);
                        return json_set_error(ret_error, EBADMSG, "diff_ids[%zu]: invalid digest '%s'", i,
                                              strna(quoted));
                }

        strv_free(c->diff_ids);
        c->diff_ids = TAKE_PTR(rootfs.diff_ids);
        c->n_diff_ids = n;
        return 0;
}

static const JsonField config_table[] = {
        { "created", JSON_FIELD_STRING, offsetof(OciImageConfig, created), JSON_NULLABLE },
        /* Offset 0: both dispatchers fill several members of OciImageConfig. */
        { "config", JSON_FIELD_CUSTOM, 0, JSON_NULLABLE, dispatch_exec_config },
        { "rootfs", JSON_FIELD_CUSTOM, 0, JSON_MANDATORY, dispatch_rootfs },
        {}
};

int oci_image_config_parse(const char *data, size_t size, OciImageConfig **ret, char **ret_error) {
        _cleanup_(oci_image_config_freep) OciImageConfig *c = NULL;
        _cleanup_json_node_ JsonNode *root = NULL;
        JsonObject *object;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!ret || (!data && size > 0))
                return -EINVAL;

        c = calloc(1, sizeof(OciImageConfig));
        if (!c)
                return -ENOMEM;

        r = json_parse_bounded(data, size, CONFIG_SIZE_MAX, &root, ret_error);
        if (r < 0)
                return r;

        if (!JSON_NODE_HOLDS_OBJECT(root))
                return json_set_error(ret_error, EBADMSG, "image config must be a JSON object");
        object = json_node_get_object(root);

        /* The config carries the platform at its top level, in the same shape as a descriptor's. */
        r = json_dispatch(object, platform_table, &c->platform, NULL, ret_error);
        if (r < 0)
                return r;

        r = json_dispatch(object, config_table, c, NULL, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- selection and chain ids ---- */

int oci_index_select(const OciIndex *index, const Platform *wanted, const Descriptor **ret,
                     char **ret_error) {
        _cleanup_free_ char *wanted_str = NULL;
        g_autoptr(GString) available = NULL;

        if (ret_error)
                *ret_error = NULL;
        if (!index || !wanted || !ret)
                return -EINVAL;

        for (size_t i = 0; i < index->n_manifests; i++) {
                const Descriptor *d = &index->manifests[i];

                /* Only image manifests can be run; nested indexes and artifacts are skipped. */
                if (media_type_kind(d->media_type) != MEDIA_KIND_MANIFEST || !d->has_platform)
                        continue;

                if (platform_matches(wanted, &d->platform)) {
                        *ret = d;
                        return 0;
                }
        }

        wanted_str = platform_to_string(wanted);
        available = g_string_new(NULL);
        for (size_t i = 0; i < index->n_manifests; i++) {
                const Descriptor *d = &index->manifests[i];
                _cleanup_free_ char *p = NULL, *quoted = NULL;

                if (media_type_kind(d->media_type) != MEDIA_KIND_MANIFEST || !d->has_platform)
                        continue;

                p = platform_to_string(&d->platform);
                quoted = p ? escape_untrusted(p, QUOTED_INPUT_MAX, ESCAPE_QUOTED) : NULL;
                if (!quoted)
                        return -ENOMEM;
                if (available->len > 0)
                        g_string_append(available, ", ");
                g_string_append(available, quoted);
        }

        return json_set_error(ret_error, ENOENT, "no manifest for platform %s in the index; available: %s",
                              strna(wanted_str), available->len > 0 ? available->str : "none");
}

int oci_chain_ids(char *const *diff_ids, size_t n, char ***ret) {
        char **chain;
        int r;

        if (!ret || (!diff_ids && n > 0))
                return -EINVAL;

        for (size_t i = 0; i < n; i++)
                if (digest_validate(diff_ids[i], NULL) < 0)
                        return -EINVAL;

        /* NULL-terminated as well, so it can be used as a strv. */
        chain = calloc(n + 1, sizeof(char *));
        if (!chain)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *input = NULL;
                char buf[DIGEST_STRING_MAX];

                if (i == 0) {
                        chain[0] = strdup(diff_ids[0]);
                        if (!chain[0]) {
                                strv_free(chain);
                                return -ENOMEM;
                        }
                        continue;
                }

                if (asprintf(&input, "%s %s", chain[i - 1], diff_ids[i]) < 0) {
                        input = NULL;
                        strv_free(chain);
                        return -ENOMEM;
                }

                r = digest_buffer(DIGEST_SHA256, input, strlen(input), buf);
                if (r < 0) {
                        strv_free(chain);
                        return r;
                }

                chain[i] = strdup(buf);
                if (!chain[i]) {
                        strv_free(chain);
                        return -ENOMEM;
                }
        }

        *ret = chain;
        return 0;
}
