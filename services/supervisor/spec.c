/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "caps.h"
#include "json-util.h"
#include "spec.h"

/* Reading config.json. The document was written by our own spec builder (or, for berth-runspec, by
 * root), so this is not a hostile-input parser in the broker's sense; still every array has a cap and
 * every value is type-checked, so that a broken spec fails here, in the caller, with a message, and
 * never half-way through the container's setup. */

static const char *const ns_names[_SPEC_NS_MAX] = {
        [SPEC_NS_MOUNT] = "mount", [SPEC_NS_PID] = "pid",     [SPEC_NS_UTS] = "uts",
        [SPEC_NS_IPC] = "ipc",     [SPEC_NS_NET] = "network", [SPEC_NS_CGROUP] = "cgroup",
        [SPEC_NS_USER] = "user",
};

const char *spec_namespace_name(SpecNamespaceType t) {
        return t >= 0 && t < _SPEC_NS_MAX ? ns_names[t] : NULL;
}

static const struct {
        const char *name;
        int resource;
} rlimit_names[] = {
        { "RLIMIT_AS", RLIMIT_AS },
        { "RLIMIT_CORE", RLIMIT_CORE },
        { "RLIMIT_CPU", RLIMIT_CPU },
        { "RLIMIT_DATA", RLIMIT_DATA },
        { "RLIMIT_FSIZE", RLIMIT_FSIZE },
        { "RLIMIT_LOCKS", RLIMIT_LOCKS },
        { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
        { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
        { "RLIMIT_NICE", RLIMIT_NICE },
        { "RLIMIT_NOFILE", RLIMIT_NOFILE },
        { "RLIMIT_NPROC", RLIMIT_NPROC },
        { "RLIMIT_RSS", RLIMIT_RSS },
        { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
        { "RLIMIT_RTTIME", RLIMIT_RTTIME },
        { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
        { "RLIMIT_STACK", RLIMIT_STACK },
};

static int error_from_json(BerthError *err, int r, char *msg, const char *where) {
        _cleanup_free_ char *m = msg;
        return berth_error_set(err, r, "Invalid runtime spec: %s: %s", where, m ?: "invalid");
}

static int get_uint(JsonNode *n, uint64_t max, uint64_t *ret) {
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
                return -EINVAL;
        gint64 v = json_node_get_int(n);
        if (v < 0 || (uint64_t) v > max)
                return -ERANGE;
        *ret = (uint64_t) v;
        return 0;
}

static int get_int(JsonNode *n, int64_t *ret) {
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
                return -EINVAL;
        *ret = json_node_get_int(n);
        return 0;
}

static bool string_ok(const char *s) {
        return s && strlen(s) < SPEC_STRING_MAX;
}

static int strv_check(char **l, size_t max) {
        size_t n = 0;
        STRV_FOREACH(s, l) {
                if (!string_ok(*s))
                        return -E2BIG;
                if (++n > max)
                        return -E2BIG;
        }
        return 0;
}

static int caps_from_strv(JsonObject *o, const char *name, uint64_t *ret, BerthError *err) {
        JsonArray *a = json_object_get_array_or_null(o, name);
        uint64_t mask = 0;

        if (!a) {
                if (json_object_has_member(o, name) &&
                    !JSON_NODE_HOLDS_NULL(json_object_get_member(o, name)))
                        return berth_error_set(
                                err, EINVAL, "Invalid runtime spec: capabilities.%s must be an array", name);
                *ret = 0;
                return 0;
        }
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *n = json_array_get_element(a, i);
                if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                        return berth_error_set(err, EINVAL,
                                               "Invalid runtime spec: capabilities.%s[%u] must be a string",
                                               name, i);
                const char *s = json_node_get_string(n);
                int c = cap_from_spec_name(s);
                if (c < 0)
                        /* Refused rather than ignored: a capability we cannot name we cannot drop either. */
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: unknown capability '%s'",
                                               s);
                mask |= UINT64_C(1) << c;
        }
        *ret = mask;
        return 0;
}

static int parse_process(JsonObject *p, Spec *s, BerthError *err) {
        _cleanup_free_ char *msg = NULL;
        JsonObject *o;
        JsonNode *n;
        int r;

        struct {
                bool terminal;
                char **args;
                char **env;
                char *cwd;
                bool nnp;
        } v = {};
        static const JsonField fields[] = {
                { "terminal", JSON_FIELD_BOOL, offsetof(typeof(v), terminal), 0, NULL },
                { "args", JSON_FIELD_STRV, offsetof(typeof(v), args), JSON_MANDATORY, NULL },
                { "env", JSON_FIELD_STRV, offsetof(typeof(v), env), JSON_NULLABLE, NULL },
                { "cwd", JSON_FIELD_STRING, offsetof(typeof(v), cwd), JSON_MANDATORY, NULL },
                { "noNewPrivileges", JSON_FIELD_BOOL, offsetof(typeof(v), nnp), 0, NULL },
                {},
        };
        r = json_dispatch(p, fields, &v, NULL, &msg);
        s->args = v.args;
        s->env = v.env;
        s->cwd = v.cwd;
        if (r < 0)
                return error_from_json(err, r, TAKE_PTR(msg), "process");
        s->terminal = v.terminal;
        s->no_new_privileges = v.nnp;

        if (!s->args || !s->args[0] || isempty(s->args[0]))
                return berth_error_set(err, EINVAL, "Invalid runtime spec: process.args is empty");
        if (strv_check(s->args, SPEC_ARGS_MAX) < 0 || strv_check(s->env, SPEC_ENV_MAX) < 0)
                return berth_error_set(err, E2BIG, "Invalid runtime spec: process.args or env too long");
        STRV_FOREACH(e, s->env)
        if (!strchr(*e, '=') || **e == '=')
                return berth_error_set(err, EINVAL,
                                       "Invalid runtime spec: environment entry '%s' is not KEY=VALUE", *e);
        if (s->cwd[0] != '/')
                return berth_error_set(err, EINVAL, "Invalid runtime spec: process.cwd '%s' is not absolute",
                                       s->cwd);

        /* user: uid and gid are uint32 in the spec; (uid_t)-1 means "no change" to the kernel, so it
         * is refused (CVE-2024-40635 class: a value that wraps must never become root). */
        n = json_object_get_member(p, "user");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return berth_error_set(err, EINVAL, "Invalid runtime spec: process.user missing");
        o = json_node_get_object(n);
        uint64_t u;
        if (get_uint(json_object_get_member(o, "uid"), UINT32_MAX - 1, &u) < 0)
                return berth_error_set(
                        err, EINVAL,
                        "Invalid runtime spec: process.user.uid must be an integer in 0…4294967294");
        s->uid = (uid_t) u;
        if (get_uint(json_object_get_member(o, "gid"), UINT32_MAX - 1, &u) < 0)
                return berth_error_set(
                        err, EINVAL,
                        "Invalid runtime spec: process.user.gid must be an integer in 0…4294967294");
        s->gid = (gid_t) u;
        s->umask = 022;
        if (json_object_has_member(o, "umask")) {
                if (get_uint(json_object_get_member(o, "umask"), 0777, &u) < 0)
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: process.user.umask");
                s->umask = (mode_t) u;
        }
        JsonArray *a = json_object_get_array_or_null(o, "additionalGids");
        if (a) {
                guint len = json_array_get_length(a);
                if (len > SPEC_GROUPS_MAX)
                        return berth_error_set(err, E2BIG, "Invalid runtime spec: too many additionalGids");
                s->additional_gids = calloc(len ?: 1, sizeof(gid_t));
                if (!s->additional_gids)
                        return berth_error_set(err, ENOMEM, "Out of memory");
                for (guint i = 0; i < len; i++) {
                        if (get_uint(json_array_get_element(a, i), UINT32_MAX - 1, &u) < 0)
                                return berth_error_set(err, EINVAL,
                                                       "Invalid runtime spec: additionalGids[%u]", i);
                        s->additional_gids[i] = (gid_t) u;
                }
                s->n_additional_gids = len;
        }

        /* capabilities: absent = none at all (the spec builder always writes them). */
        n = json_object_get_member(p, "capabilities");
        if (n && JSON_NODE_HOLDS_OBJECT(n)) {
                o = json_node_get_object(n);
                if ((r = caps_from_strv(o, "bounding", &s->caps.bounding, err)) < 0 ||
                    (r = caps_from_strv(o, "effective", &s->caps.effective, err)) < 0 ||
                    (r = caps_from_strv(o, "permitted", &s->caps.permitted, err)) < 0 ||
                    (r = caps_from_strv(o, "inheritable", &s->caps.inheritable, err)) < 0 ||
                    (r = caps_from_strv(o, "ambient", &s->caps.ambient, err)) < 0)
                        return r;
                s->have_caps = true;
        } else if (n && !JSON_NODE_HOLDS_NULL(n))
                return berth_error_set(err, EINVAL,
                                       "Invalid runtime spec: process.capabilities must be an object");

        n = json_object_get_member(p, "oomScoreAdj");
        if (n && !JSON_NODE_HOLDS_NULL(n)) {
                int64_t adj;
                if (get_int(n, &adj) < 0 || adj < -1000 || adj > 1000)
                        return berth_error_set(
                                err, EINVAL,
                                "Invalid runtime spec: process.oomScoreAdj must be in -1000…1000");
                s->oom_score_adj = (int) adj;
                s->have_oom_score_adj = true;
        }

        a = json_object_get_array_or_null(p, "rlimits");
        if (a) {
                guint len = json_array_get_length(a);
                if (len > ELEMENTSOF(rlimit_names))
                        return berth_error_set(err, E2BIG, "Invalid runtime spec: too many rlimits");
                s->rlimits = calloc(len ?: 1, sizeof(SpecRlimit));
                if (!s->rlimits)
                        return berth_error_set(err, ENOMEM, "Out of memory");
                for (guint i = 0; i < len; i++) {
                        JsonNode *e = json_array_get_element(a, i);
                        if (!JSON_NODE_HOLDS_OBJECT(e))
                                return berth_error_set(err, EINVAL, "Invalid runtime spec: rlimits[%u]", i);
                        JsonObject *eo = json_node_get_object(e);
                        JsonNode *t = json_object_get_member(eo, "type");
                        const char *tn =
                                t && JSON_NODE_HOLDS_VALUE(t) && json_node_get_value_type(t) == G_TYPE_STRING
                                        ? json_node_get_string(t)
                                        : NULL;
                        int res = -1;
                        for (size_t k = 0; tn && k < ELEMENTSOF(rlimit_names); k++)
                                if (streq(rlimit_names[k].name, tn))
                                        res = rlimit_names[k].resource;
                        if (res < 0)
                                return berth_error_set(
                                        err, EINVAL, "Invalid runtime spec: unknown rlimit '%s'", strna(tn));
                        SpecRlimit *rl = &s->rlimits[i];
                        rl->resource = res;
                        if (get_uint(json_object_get_member(eo, "soft"), UINT64_MAX, &rl->soft) < 0 ||
                            get_uint(json_object_get_member(eo, "hard"), UINT64_MAX, &rl->hard) < 0 ||
                            rl->soft > rl->hard)
                                return berth_error_set(
                                        err, EINVAL, "Invalid runtime spec: rlimit '%s' needs soft <= hard",
                                        tn);
                        s->n_rlimits++;
                }
        }
        return 0;
}

static int parse_mounts(JsonArray *a, Spec *s, BerthError *err) {
        guint len = json_array_get_length(a);

        if (len > SPEC_MOUNTS_MAX)
                return berth_error_set(err, E2BIG, "Invalid runtime spec: too many mounts");
        s->mounts = calloc(len ?: 1, sizeof(SpecMount));
        if (!s->mounts)
                return berth_error_set(err, ENOMEM, "Out of memory");
        for (guint i = 0; i < len; i++) {
                _cleanup_free_ char *msg = NULL;
                JsonNode *e = json_array_get_element(a, i);
                SpecMount *m = &s->mounts[i];
                m->source_mnt_fd = -EBADF;
                static const JsonField fields[] = {
                        { "destination", JSON_FIELD_STRING, offsetof(SpecMount, destination), JSON_MANDATORY,
                          NULL },
                        { "type", JSON_FIELD_STRING, offsetof(SpecMount, type), 0, NULL },
                        { "source", JSON_FIELD_STRING, offsetof(SpecMount, source), 0, NULL },
                        { "options", JSON_FIELD_STRV, offsetof(SpecMount, options), JSON_NULLABLE, NULL },
                        {},
                };
                if (!JSON_NODE_HOLDS_OBJECT(e))
                        return berth_error_set(err, EINVAL,
                                               "Invalid runtime spec: mounts[%u] must be an object", i);
                s->n_mounts = i + 1;
                int r = json_dispatch(json_node_get_object(e), fields, m, NULL, &msg);
                if (r < 0)
                        return error_from_json(err, r, TAKE_PTR(msg), "mounts");
                if (m->destination[0] != '/' || !string_ok(m->destination))
                        return berth_error_set(
                                err, EINVAL, "Invalid runtime spec: mount destination '%s' is not absolute",
                                m->destination);
                if (!m->type && !m->source)
                        return berth_error_set(
                                err, EINVAL, "Invalid runtime spec: mount '%s' has neither type nor source",
                                m->destination);
                if (strv_check(m->options, 64) < 0)
                        return berth_error_set(err, E2BIG,
                                               "Invalid runtime spec: mount '%s': too many options",
                                               m->destination);
        }
        return 0;
}

static int parse_strv_member(JsonObject *o, const char *name, char ***ret, BerthError *err) {
        _cleanup_free_ char *msg = NULL;
        const JsonField fields[] = {
                { name, JSON_FIELD_STRV, 0, JSON_NULLABLE, NULL },
                {},
        };
        int r = json_dispatch(o, fields, ret, NULL, &msg);
        if (r < 0)
                return error_from_json(err, r, TAKE_PTR(msg), "linux");
        if (strv_check(*ret, SPEC_PATHS_MAX) < 0)
                return berth_error_set(err, E2BIG, "Invalid runtime spec: linux.%s too long", name);
        STRV_FOREACH(p, *ret)
        if ((*p)[0] != '/')
                return berth_error_set(err, EINVAL, "Invalid runtime spec: linux.%s: '%s' is not absolute",
                                       name, *p);
        return 0;
}

/* One linux.resources.devices[] entry: {allow (mandatory), type "a"|"c"|"b", major, minor (absent or -1:
 * any), access ⊆ "rwm" (absent: all)}. */
static int parse_device_rule(JsonNode *node, SpecDeviceRule *rule, BerthError *err) {
        JsonObject *o;
        JsonNode *n;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return berth_error_set(err, EINVAL,
                                       "Invalid runtime spec: devices[] entry is not an object");
        o = json_node_get_object(node);
        *rule = (SpecDeviceRule){ .type = 'a', .major = -1, .minor = -1, .access = SPEC_DEVICE_ALL };
        n = json_object_get_member(o, "allow");
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
                return berth_error_set(err, EINVAL, "Invalid runtime spec: devices[].allow");
        rule->allow = json_node_get_boolean(n);
        n = json_object_get_member(o, "type");
        if (n && !JSON_NODE_HOLDS_NULL(n)) {
                const char *t = JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
                                        ? json_node_get_string(n)
                                        : NULL;
                if (!t || strlen(t) != 1 || !strchr("acb", t[0]))
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: devices[].type");
                rule->type = t[0];
        }
        for (int i = 0; i < 2; i++) {
                const char *name = i == 0 ? "major" : "minor";
                int64_t *v = i == 0 ? &rule->major : &rule->minor;
                n = json_object_get_member(o, name);
                if (n && !JSON_NODE_HOLDS_NULL(n) && (get_int(n, v) < 0 || *v < -1 || *v > UINT32_MAX))
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: devices[].%s", name);
        }
        n = json_object_get_member(o, "access");
        if (n && !JSON_NODE_HOLDS_NULL(n)) {
                const char *a = JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING
                                        ? json_node_get_string(n)
                                        : NULL;
                if (!a || strlen(a) > 3)
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: devices[].access");
                rule->access = 0;
                for (const char *c = a; *c; c++) {
                        unsigned bit = *c == 'r'   ? SPEC_DEVICE_READ
                                       : *c == 'w' ? SPEC_DEVICE_WRITE
                                       : *c == 'm' ? SPEC_DEVICE_MKNOD
                                                   : 0;
                        if (bit == 0 || (rule->access & bit))
                                return berth_error_set(err, EINVAL,
                                                       "Invalid runtime spec: devices[].access '%s'", a);
                        rule->access |= bit;
                }
        }
        return 0;
}

static int parse_devices(JsonNode *n, SpecResources *res, BerthError *err) {
        JsonArray *a;
        guint len;
        int r;

        if (!JSON_NODE_HOLDS_ARRAY(n))
                return berth_error_set(err, EINVAL, "Invalid runtime spec: linux.resources.devices");
        a = json_node_get_array(n);
        len = json_array_get_length(a);
        if (len > SPEC_DEVICE_RULES_MAX)
                return berth_error_set(err, E2BIG, "Invalid runtime spec: more than %u device rules",
                                       SPEC_DEVICE_RULES_MAX);
        res->devices = calloc(len ?: 1, sizeof(SpecDeviceRule));
        if (!res->devices)
                return berth_error_set(err, ENOMEM, "Out of memory");
        for (guint i = 0; i < len; i++) {
                r = parse_device_rule(json_array_get_element(a, i), &res->devices[i], err);
                if (r < 0)
                        return r;
                res->n_devices++;
        }
        return 0;
}

static int parse_resources(JsonObject *o, SpecResources *res, BerthError *err) {
        JsonNode *n;
        JsonObject *m;
        int r;

        n = json_object_get_member(o, "devices");
        if (n && !JSON_NODE_HOLDS_NULL(n) && (r = parse_devices(n, res, err)) < 0)
                return r;

        n = json_object_get_member(o, "memory");
        if (n && JSON_NODE_HOLDS_OBJECT(n)) {
                m = json_node_get_object(n);
                if (json_object_has_member(m, "limit") &&
                    (get_int(json_object_get_member(m, "limit"), &res->memory_limit) < 0 ||
                     res->memory_limit < 0))
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: memory.limit");
                if (json_object_has_member(m, "swap") &&
                    (get_int(json_object_get_member(m, "swap"), &res->memory_swap) < 0 ||
                     res->memory_swap < -1))
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: memory.swap");
        }
        n = json_object_get_member(o, "cpu");
        if (n && JSON_NODE_HOLDS_OBJECT(n)) {
                m = json_node_get_object(n);
                if (json_object_has_member(m, "quota") &&
                    (get_int(json_object_get_member(m, "quota"), &res->cpu_quota) < 0 ||
                     res->cpu_quota < -1))
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: cpu.quota");
                if (json_object_has_member(m, "period") &&
                    (get_uint(json_object_get_member(m, "period"), 1000000, &res->cpu_period) < 0 ||
                     (res->cpu_period != 0 && res->cpu_period < 1000)))
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: cpu.period");
        }
        n = json_object_get_member(o, "pids");
        if (n && JSON_NODE_HOLDS_OBJECT(n)) {
                m = json_node_get_object(n);
                if (json_object_has_member(m, "limit") &&
                    (get_int(json_object_get_member(m, "limit"), &res->pids_limit) < 0 ||
                     res->pids_limit < -1))
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: pids.limit");
        }
        return 0;
}

int spec_sysctl_check(const Spec *spec, const char *key, const char *value, BerthError *err) {
        /* SECURITY: only sysctls that live in a namespace the container owns (CVE-2022-0811: a value
         * smuggling "+kernel.core_pattern=…" must never reach a host-wide key). The key is a dotted
         * name of [a-z0-9_] words: no '/', no "..", no '=' — it becomes a path under the container's
         * own /proc/sys. The value is one line without control bytes. */
        static const char *const prefixes[] = { "kernel.shm", "kernel.msg", "fs.mqueue.", "net." };
        static const char *const exact[] = { "kernel.sem", "kernel.domainname", "kernel.hostname" };
        bool ok = false;

        if (isempty(key) || strlen(key) > 255 || key[0] == '.' || key[strlen(key) - 1] == '.' ||
            strstr(key, ".."))
                return berth_error_set(err, EINVAL, "sysctl '%s': invalid key", key);
        for (const char *c = key; *c; c++)
                if (!(islower((unsigned char) *c) || isdigit((unsigned char) *c) || *c == '_' || *c == '.' ||
                      *c == '-'))
                        return berth_error_set(err, EINVAL, "sysctl '%s': invalid key", key);
        for (size_t i = 0; i < ELEMENTSOF(exact); i++)
                if (streq(key, exact[i]))
                        ok = true;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0)
                        ok = true;
        if (strncmp(key, "net.", 4) == 0 &&
            (!spec->namespaces[SPEC_NS_NET].enabled || spec->namespaces[SPEC_NS_NET].path))
                /* Only in a network namespace of its own; a joined one may be the host's. */
                ok = false;
        if ((strncmp(key, "kernel.", 7) == 0 || strncmp(key, "fs.mqueue.", 10) == 0) &&
            !(spec->namespaces[SPEC_NS_IPC].enabled && !spec->namespaces[SPEC_NS_IPC].path) &&
            !streq(key, "kernel.domainname") && !streq(key, "kernel.hostname"))
                ok = false;
        if ((streq(key, "kernel.domainname") || streq(key, "kernel.hostname")) &&
            !(spec->namespaces[SPEC_NS_UTS].enabled && !spec->namespaces[SPEC_NS_UTS].path))
                ok = false;
        if (!ok)
                return berth_error_set(err, EPERM, "sysctl '%s' is not namespaced for this container", key);
        if (!value || strlen(value) > 4096)
                return berth_error_set(err, EINVAL, "sysctl '%s': invalid value", key);
        for (const char *c = value; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return berth_error_set(err, EINVAL,
                                               "sysctl '%s': value contains a control character", key);
        return 0;
}

static int parse_linux(JsonObject *l, Spec *s, BerthError *err) {
        JsonArray *a;
        JsonNode *n;
        int r;

        a = json_object_get_array_or_null(l, "namespaces");
        if (a) {
                for (guint i = 0; i < json_array_get_length(a); i++) {
                        JsonNode *e = json_array_get_element(a, i);
                        if (!JSON_NODE_HOLDS_OBJECT(e))
                                return berth_error_set(err, EINVAL,
                                                       "Invalid runtime spec: linux.namespaces[%u]", i);
                        JsonObject *eo = json_node_get_object(e);
                        JsonNode *t = json_object_get_member(eo, "type");
                        JsonNode *p = json_object_get_member(eo, "path");
                        const char *tn =
                                t && JSON_NODE_HOLDS_VALUE(t) && json_node_get_value_type(t) == G_TYPE_STRING
                                        ? json_node_get_string(t)
                                        : "";
                        int type = -1;
                        for (int k = 0; k < _SPEC_NS_MAX; k++)
                                if (streq(ns_names[k], tn))
                                        type = k;
                        if (type < 0)
                                return berth_error_set(err, EINVAL,
                                                       "Invalid runtime spec: unknown namespace type '%s'",
                                                       tn);
                        if (s->namespaces[type].enabled)
                                return berth_error_set(err, EINVAL,
                                                       "Invalid runtime spec: namespace '%s' listed twice",
                                                       tn);
                        s->namespaces[type].enabled = true;
                        if (p && JSON_NODE_HOLDS_VALUE(p) && json_node_get_value_type(p) == G_TYPE_STRING &&
                            !isempty(json_node_get_string(p))) {
                                s->namespaces[type].path = strdup(json_node_get_string(p));
                                if (!s->namespaces[type].path)
                                        return berth_error_set(err, ENOMEM, "Out of memory");
                        }
                }
        }
        if (s->namespaces[SPEC_NS_USER].enabled)
                /* The slot is reserved (engine.c: step_userns_*); maps arrive with the userns issue. */
                return berth_error_set(err, EOPNOTSUPP, "User namespaces are not supported yet");
        if (!s->namespaces[SPEC_NS_MOUNT].enabled || s->namespaces[SPEC_NS_MOUNT].path)
                /* pivot_root in the caller's mount namespace would move the host's root. */
                return berth_error_set(err, EINVAL,
                                       "Invalid runtime spec: a new mount namespace is required");

        n = json_object_get_member(l, "cgroupsPath");
        if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING &&
            !isempty(json_node_get_string(n))) {
                const char *p = json_node_get_string(n);
                if (strstr(p, "..") || strlen(p) > 1024)
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: cgroupsPath '%s'", p);
                s->cgroups_path = strdup(p);
                if (!s->cgroups_path)
                        return berth_error_set(err, ENOMEM, "Out of memory");
        }

        n = json_object_get_member(l, "resources");
        if (n && JSON_NODE_HOLDS_OBJECT(n) &&
            (r = parse_resources(json_node_get_object(n), &s->resources, err)) < 0)
                return r;

        n = json_object_get_member(l, "sysctl");
        if (n && JSON_NODE_HOLDS_OBJECT(n)) {
                JsonObject *so = json_node_get_object(n);
                guint len = json_object_get_size(so);
                if (len > SPEC_SYSCTL_MAX)
                        return berth_error_set(err, E2BIG, "Invalid runtime spec: too many sysctls");
                s->sysctls = calloc(len ?: 1, sizeof(SpecSysctl));
                if (!s->sysctls)
                        return berth_error_set(err, ENOMEM, "Out of memory");
                JsonObjectIter it;
                const char *k;
                JsonNode *v;
                json_object_iter_init(&it, so);
                while (json_object_iter_next(&it, &k, &v)) {
                        if (!JSON_NODE_HOLDS_VALUE(v) || json_node_get_value_type(v) != G_TYPE_STRING)
                                return berth_error_set(err, EINVAL,
                                                       "Invalid runtime spec: sysctl '%s' must be a string",
                                                       k);
                        SpecSysctl *e = &s->sysctls[s->n_sysctls++];
                        e->key = strdup(k);
                        e->value = strdup(json_node_get_string(v));
                        if (!e->key || !e->value)
                                return berth_error_set(err, ENOMEM, "Out of memory");
                }
        }

        if ((r = parse_strv_member(l, "maskedPaths", &s->masked_paths, err)) < 0 ||
            (r = parse_strv_member(l, "readonlyPaths", &s->readonly_paths, err)) < 0)
                return r;

        n = json_object_get_member(l, "seccomp");
        if (n && !JSON_NODE_HOLDS_NULL(n))
                /* Raw OCI seccomp profiles are not taken: berth's spec builder selects the built-in
                 * profile by annotation, so an ill-formed profile can never weaken it. */
                return berth_error_set(err, EOPNOTSUPP,
                                       "Invalid runtime spec: linux.seccomp is not supported, use the "
                                       "'" SPEC_ANNOTATION_SECCOMP "' annotation");
        return 0;
}

int spec_parse(JsonNode *root, Spec *s, BerthError *err) {
        JsonObject *o, *ro;
        JsonNode *n;
        int r;

        *s = (Spec){};
        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return berth_error_set(err, EINVAL, "Invalid runtime spec: not a JSON object");
        o = json_node_get_object(root);

        n = json_object_get_member(o, "root");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return berth_error_set(err, EINVAL, "Invalid runtime spec: root missing");
        ro = json_node_get_object(n);
        {
                _cleanup_free_ char *msg = NULL;
                struct {
                        char *path;
                        bool readonly;
                } v = {};
                static const JsonField fields[] = {
                        { "path", JSON_FIELD_STRING, offsetof(typeof(v), path), JSON_MANDATORY, NULL },
                        { "readonly", JSON_FIELD_BOOL, offsetof(typeof(v), readonly), 0, NULL },
                        {},
                };
                r = json_dispatch(ro, fields, &v, NULL, &msg);
                s->root_path = v.path;
                if (r < 0)
                        return error_from_json(err, r, TAKE_PTR(msg), "root");
                s->root_readonly = v.readonly;
                if (s->root_path[0] != '/')
                        /* The caller mounted it; a relative path would depend on our cwd. */
                        return berth_error_set(err, EINVAL,
                                               "Invalid runtime spec: root.path '%s' is not absolute",
                                               s->root_path);
        }

        n = json_object_get_member(o, "process");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return berth_error_set(err, EINVAL, "Invalid runtime spec: process missing");
        r = parse_process(json_node_get_object(n), s, err);
        if (r < 0)
                return r;

        n = json_object_get_member(o, "hostname");
        if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
                const char *h = json_node_get_string(n);
                if (strlen(h) > 64)
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: hostname too long");
                s->hostname = strdup(h);
                if (!s->hostname)
                        return berth_error_set(err, ENOMEM, "Out of memory");
        }

        JsonArray *a = json_object_get_array_or_null(o, "mounts");
        if (a && (r = parse_mounts(a, s, err)) < 0)
                return r;

        n = json_object_get_member(o, "linux");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return berth_error_set(err, EINVAL, "Invalid runtime spec: linux missing");
        r = parse_linux(json_node_get_object(n), s, err);
        if (r < 0)
                return r;

        if (s->hostname && !isempty(s->hostname) &&
            (!s->namespaces[SPEC_NS_UTS].enabled || s->namespaces[SPEC_NS_UTS].path))
                return berth_error_set(err, EINVAL,
                                       "Invalid runtime spec: hostname needs a new UTS namespace");
        for (size_t i = 0; i < s->n_sysctls; i++)
                if ((r = spec_sysctl_check(s, s->sysctls[i].key, s->sysctls[i].value, err)) < 0)
                        return berth_error_prefix(err, "Invalid runtime spec");

        n = json_object_get_member(o, "annotations");
        if (n && JSON_NODE_HOLDS_OBJECT(n)) {
                JsonNode *sn = json_object_get_member(json_node_get_object(n), SPEC_ANNOTATION_SECCOMP);
                if (sn && JSON_NODE_HOLDS_VALUE(sn) && json_node_get_value_type(sn) == G_TYPE_STRING) {
                        const char *v = json_node_get_string(sn);
                        if (streq(v, "default"))
                                s->seccomp = SPEC_SECCOMP_DEFAULT;
                        else if (streq(v, "unconfined"))
                                s->seccomp = SPEC_SECCOMP_NONE;
                        else
                                return berth_error_set(
                                        err, EINVAL,
                                        "Invalid runtime spec: annotation " SPEC_ANNOTATION_SECCOMP "='%s'",
                                        v);
                }
        }
        return 0;
}

void spec_done(Spec *s) {
        if (!s)
                return;
        free(s->root_path);
        free(s->additional_gids);
        strv_free(s->args);
        strv_free(s->env);
        free(s->cwd);
        free(s->rlimits);
        free(s->hostname);
        for (size_t i = 0; i < s->n_mounts; i++) {
                free(s->mounts[i].destination);
                free(s->mounts[i].type);
                free(s->mounts[i].source);
                strv_free(s->mounts[i].options);
                s->mounts[i].source_mnt_fd = safe_close(s->mounts[i].source_mnt_fd);
        }
        free(s->mounts);
        for (int i = 0; i < _SPEC_NS_MAX; i++)
                free(s->namespaces[i].path);
        free(s->cgroups_path);
        free(s->resources.devices);
        for (size_t i = 0; i < s->n_sysctls; i++) {
                free(s->sysctls[i].key);
                free(s->sysctls[i].value);
        }
        free(s->sysctls);
        strv_free(s->masked_paths);
        strv_free(s->readonly_paths);
        *s = (Spec){};
}
