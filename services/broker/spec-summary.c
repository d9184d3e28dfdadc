/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "spec-summary.h"

typedef struct Summary {
        JsonBuilder *b;
        char **error;
} Summary;

static int bad(Summary *s, const char *what) {
        return json_set_error(s->error, EBADMSG, "malformed runtime spec: %s", what);
}

/* The member as an object/array/string/…, NULL when absent or null; a wrong type is an error (r < 0). */
static int member(Summary *s, JsonObject *o, const char *name, JsonNodeType type, GType value_type,
                  JsonNode **ret) {
        JsonNode *n = o ? json_object_get_member(o, name) : NULL;

        *ret = NULL;
        if (!n || JSON_NODE_HOLDS_NULL(n))
                return 0;
        if (json_node_get_node_type(n) != type ||
            (type == JSON_NODE_VALUE && json_node_get_value_type(n) != value_type))
                return bad(s, name);
        *ret = n;
        return 1;
}

static JsonObject *object_or_null(JsonNode *n) {
        return n ? json_node_get_object(n) : NULL;
}

static int copy_scalar(Summary *s, JsonObject *o, const char *from, const char *to, GType type) {
        JsonNode *n;
        int r = member(s, o, from, JSON_NODE_VALUE, type, &n);

        if (r < 0)
                return r;
        json_builder_set_member_name(s->b, to);
        if (n)
                json_builder_add_value(s->b, json_node_copy(n));
        else
                json_builder_add_null_value(s->b);
        return 0;
}

/* An array whose elements all have one value type (strings, integers), copied as is. */
static int copy_list(Summary *s, JsonObject *o, const char *from, const char *to, GType type) {
        JsonNode *n;
        JsonArray *a;
        int r = member(s, o, from, JSON_NODE_ARRAY, G_TYPE_INVALID, &n);

        if (r < 0)
                return r;
        json_builder_set_member_name(s->b, to);
        json_builder_begin_array(s->b);
        a = n ? json_node_get_array(n) : NULL;
        if (a && json_array_get_length(a) > SPEC_SUMMARY_LIST_MAX)
                return bad(s, from);
        for (guint i = 0; a && i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);

                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != type)
                        return bad(s, from);
                json_builder_add_value(s->b, json_node_copy(e));
        }
        json_builder_end_array(s->b);
        return 0;
}

static int count_list(Summary *s, JsonObject *o, const char *from, const char *to) {
        JsonNode *n;
        int r = member(s, o, from, JSON_NODE_ARRAY, G_TYPE_INVALID, &n);

        if (r < 0)
                return r;
        json_builder_set_member_name(s->b, to);
        json_builder_add_int_value(s->b, n ? json_array_get_length(json_node_get_array(n)) : 0);
        return 0;
}

/* An array of objects: each element through fn. */
static int each_object(Summary *s, JsonObject *o, const char *from, const char *to,
                       int (*fn)(Summary *s, JsonObject *e)) {
        JsonNode *n;
        JsonArray *a;
        int r = member(s, o, from, JSON_NODE_ARRAY, G_TYPE_INVALID, &n);

        if (r < 0)
                return r;
        a = n ? json_node_get_array(n) : NULL;
        if (a && json_array_get_length(a) > SPEC_SUMMARY_LIST_MAX)
                return bad(s, from);
        json_builder_set_member_name(s->b, to);
        json_builder_begin_array(s->b);
        for (guint i = 0; a && i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);

                if (!JSON_NODE_HOLDS_OBJECT(e))
                        return bad(s, from);
                json_builder_begin_object(s->b);
                r = fn(s, json_node_get_object(e));
                if (r < 0)
                        return r;
                json_builder_end_object(s->b);
        }
        json_builder_end_array(s->b);
        return 0;
}

static int rlimit(Summary *s, JsonObject *e) {
        int r;

        if ((r = copy_scalar(s, e, "type", "Type", G_TYPE_STRING)) < 0 ||
            (r = copy_scalar(s, e, "soft", "Soft", G_TYPE_INT64)) < 0 ||
            (r = copy_scalar(s, e, "hard", "Hard", G_TYPE_INT64)) < 0)
                return r;
        return 0;
}

static int namespace(Summary *s, JsonObject *e) {
        JsonNode *n;
        int r;

        r = copy_scalar(s, e, "type", "Type", G_TYPE_STRING);
        if (r < 0)
                return r;
        r = member(s, e, "path", JSON_NODE_VALUE, G_TYPE_STRING, &n);
        if (r > 0) {
                json_builder_set_member_name(s->b, "Path");
                json_builder_add_value(s->b, json_node_copy(n));
        }
        return r < 0 ? r : 0;
}

static int mount(Summary *s, JsonObject *e) {
        int r;

        if ((r = copy_scalar(s, e, "destination", "Destination", G_TYPE_STRING)) < 0 ||
            (r = copy_scalar(s, e, "type", "Type", G_TYPE_STRING)) < 0 ||
            (r = copy_scalar(s, e, "source", "Source", G_TYPE_STRING)) < 0 ||
            (r = copy_list(s, e, "options", "Options", G_TYPE_STRING)) < 0)
                return r;
        return 0;
}

static int process(Summary *s, JsonObject *p) {
        JsonNode *n;
        JsonObject *o;
        int r;

        json_builder_set_member_name(s->b, "Process");
        json_builder_begin_object(s->b);
        if ((r = copy_list(s, p, "args", "Args", G_TYPE_STRING)) < 0 ||
            (r = copy_list(s, p, "env", "Env", G_TYPE_STRING)) < 0 ||
            (r = copy_scalar(s, p, "cwd", "Cwd", G_TYPE_STRING)) < 0 ||
            (r = copy_scalar(s, p, "terminal", "Terminal", G_TYPE_BOOLEAN)) < 0 ||
            (r = copy_scalar(s, p, "noNewPrivileges", "NoNewPrivileges", G_TYPE_BOOLEAN)) < 0)
                return r;

        if ((r = member(s, p, "user", JSON_NODE_OBJECT, G_TYPE_INVALID, &n)) < 0)
                return r;
        o = object_or_null(n);
        json_builder_set_member_name(s->b, "User");
        json_builder_begin_object(s->b);
        if ((r = copy_scalar(s, o, "uid", "Uid", G_TYPE_INT64)) < 0 ||
            (r = copy_scalar(s, o, "gid", "Gid", G_TYPE_INT64)) < 0 ||
            (r = copy_list(s, o, "additionalGids", "AdditionalGids", G_TYPE_INT64)) < 0)
                return r;
        json_builder_end_object(s->b);

        if ((r = member(s, p, "capabilities", JSON_NODE_OBJECT, G_TYPE_INVALID, &n)) < 0)
                return r;
        o = object_or_null(n);
        json_builder_set_member_name(s->b, "Capabilities");
        json_builder_begin_object(s->b);
        if ((r = copy_list(s, o, "bounding", "Bounding", G_TYPE_STRING)) < 0 ||
            (r = copy_list(s, o, "effective", "Effective", G_TYPE_STRING)) < 0 ||
            (r = copy_list(s, o, "permitted", "Permitted", G_TYPE_STRING)) < 0 ||
            (r = copy_list(s, o, "inheritable", "Inheritable", G_TYPE_STRING)) < 0 ||
            (r = copy_list(s, o, "ambient", "Ambient", G_TYPE_STRING)) < 0)
                return r;
        json_builder_end_object(s->b);

        if ((r = each_object(s, p, "rlimits", "Rlimits", rlimit)) < 0)
                return r;
        json_builder_end_object(s->b);
        return 0;
}

/* linux.resources.<group>.<name> as Resources.<to>, null when unset. */
static int resource(Summary *s, JsonObject *res, const char *group, const char *name, const char *to) {
        JsonNode *n;
        int r = member(s, res, group, JSON_NODE_OBJECT, G_TYPE_INVALID, &n);

        if (r < 0)
                return r;
        return copy_scalar(s, object_or_null(n), name, to, G_TYPE_INT64);
}

static int resources(Summary *s, JsonObject *l) {
        JsonNode *n, *d;
        JsonObject *res;
        bool allow_all = false;
        int r;

        if ((r = member(s, l, "resources", JSON_NODE_OBJECT, G_TYPE_INVALID, &n)) < 0)
                return r;
        res = object_or_null(n);
        json_builder_set_member_name(s->b, "Resources");
        json_builder_begin_object(s->b);
        if ((r = resource(s, res, "memory", "limit", "Memory")) < 0 ||
            (r = resource(s, res, "memory", "swap", "MemorySwap")) < 0 ||
            (r = resource(s, res, "cpu", "quota", "CpuQuota")) < 0 ||
            (r = resource(s, res, "cpu", "period", "CpuPeriod")) < 0 ||
            (r = resource(s, res, "pids", "limit", "PidsLimit")) < 0)
                return r;
        if ((r = member(s, res, "devices", JSON_NODE_ARRAY, G_TYPE_INVALID, &d)) < 0)
                return r;
        for (guint i = 0; d && i < json_array_get_length(json_node_get_array(d)); i++) {
                JsonNode *e = json_array_get_element(json_node_get_array(d), i), *allow;

                if (!JSON_NODE_HOLDS_OBJECT(e))
                        return bad(s, "resources.devices");
                if ((r = member(s, json_node_get_object(e), "allow", JSON_NODE_VALUE, G_TYPE_BOOLEAN,
                                &allow)) < 0)
                        return r;
                if (allow && !json_object_has_member(json_node_get_object(e), "major"))
                        allow_all = json_node_get_boolean(allow);
        }
        json_builder_set_member_name(s->b, "DevicesAllowAll");
        json_builder_add_boolean_value(s->b, allow_all);
        json_builder_end_object(s->b);
        return 0;
}

static int summarize(Summary *s, JsonObject *root) {
        JsonNode *n;
        JsonObject *o;
        const char *seccomp = "unconfined";
        int r;

        if ((r = member(s, root, "process", JSON_NODE_OBJECT, G_TYPE_INVALID, &n)) <= 0)
                return r < 0 ? r : bad(s, "no process");
        if ((r = process(s, json_node_get_object(n))) < 0)
                return r;
        if ((r = copy_scalar(s, root, "hostname", "Hostname", G_TYPE_STRING)) < 0)
                return r;
        if ((r = member(s, root, "root", JSON_NODE_OBJECT, G_TYPE_INVALID, &n)) < 0 ||
            (r = copy_scalar(s, object_or_null(n), "readonly", "ReadOnlyRootfs", G_TYPE_BOOLEAN)) < 0)
                return r;

        /* berth's engine takes no raw seccomp profile: the annotation selects its built-in one. */
        if ((r = member(s, root, "annotations", JSON_NODE_OBJECT, G_TYPE_INVALID, &n)) < 0)
                return r;
        if ((r = member(s, object_or_null(n), "org.berth.seccomp", JSON_NODE_VALUE, G_TYPE_STRING, &n)) < 0)
                return r;
        if (n && streq(json_node_get_string(n), "default"))
                seccomp = "default";
        json_builder_set_member_name(s->b, "Seccomp");
        json_builder_add_string_value(s->b, seccomp);

        if ((r = each_object(s, root, "mounts", "Mounts", mount)) < 0)
                return r;
        if ((r = member(s, root, "linux", JSON_NODE_OBJECT, G_TYPE_INVALID, &n)) < 0)
                return r;
        o = object_or_null(n);
        if ((r = each_object(s, o, "namespaces", "Namespaces", namespace)) < 0 ||
            (r = resources(s, o)) < 0 || (r = count_list(s, o, "devices", "Devices")) < 0 ||
            (r = count_list(s, o, "maskedPaths", "MaskedPaths")) < 0 ||
            (r = count_list(s, o, "readonlyPaths", "ReadonlyPaths")) < 0 ||
            (r = copy_scalar(s, o, "cgroupsPath", "CgroupsPath", G_TYPE_STRING)) < 0)
                return r;
        return 0;
}

int spec_summary_build(const char *data, size_t size, char **ret_json, char **ret_error) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_(json_node_unrefp) JsonNode *root = NULL, *out = NULL;
        Summary s = { .b = b, .error = ret_error };
        int r;

        r = json_parse_bounded(data, size, SPEC_SUMMARY_INPUT_MAX, &root, ret_error);
        if (r < 0)
                return r;
        if (!JSON_NODE_HOLDS_OBJECT(root))
                return bad(&s, "not an object");
        json_builder_begin_object(b);
        r = summarize(&s, json_node_get_object(root));
        if (r < 0)
                return r;
        json_builder_end_object(b);
        out = json_builder_get_root(b);
        *ret_json = out ? json_to_string_compact(out) : NULL;
        return *ret_json ? 0 : json_set_error(ret_error, ENOMEM, "out of memory");
}
