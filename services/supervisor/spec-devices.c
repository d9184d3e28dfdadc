/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* linux.devices of the runtime spec: host device nodes to give the container (devices.c binds them).
 * berth's spec builder lists devices only for a privileged container (every host device, as podman
 * --privileged does: host-devices.c) and then allows them all in linux.resources.devices, the device
 * cgroup's rules, which spec.c parses with the other resources. */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "spec.h"

static bool device_path_ok(const char *p) {
        /* SECURITY: only nodes under /dev, named without "." or ".." components or empty ones: the engine
         * creates them inside the container's own /dev tmpfs and binds the host node of the same path. */
        if (!p || strncmp(p, "/dev/", 5) != 0 || strlen(p) <= 5 || strlen(p) >= 256)
                return false;
        for (const char *c = p + 5; *c;) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n;
                if (*c == '/')
                        c++;
                if (*c == '\0' && c[-1] == '/')
                        return false;
        }
        return true;
}

static int get_u32(JsonObject *o, const char *name, unsigned *ret) {
        JsonNode *n = json_object_get_member(o, name);

        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
                return -EINVAL;
        gint64 v = json_node_get_int(n);
        if (v < 0 || v > UINT32_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

static int parse_device_list(JsonArray *a, Spec *s, BerthError *err) {
        guint n = json_array_get_length(a);

        if (n > SPEC_DEVICES_MAX)
                return berth_error_set(err, E2BIG, "Invalid runtime spec: more than %u devices",
                                       SPEC_DEVICES_MAX);
        s->devices = calloc(n ?: 1, sizeof(SpecDevice));
        if (!s->devices)
                return berth_error_set(err, ENOMEM, "Out of memory");
        for (guint i = 0; i < n; i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                SpecDevice *d = &s->devices[s->n_devices];
                const char *path = o ? json_object_get_string_member_with_default(o, "path", NULL) : NULL;
                const char *type = o ? json_object_get_string_member_with_default(o, "type", NULL) : NULL;

                if (!device_path_ok(path) || !type || (!streq(type, "c") && !streq(type, "b")) ||
                    get_u32(o, "major", &d->major) < 0 || get_u32(o, "minor", &d->minor) < 0)
                        return berth_error_set(err, EINVAL, "Invalid runtime spec: linux.devices[%u]", i);
                d->type = type[0];
                d->path = strdup(path);
                if (!d->path)
                        return berth_error_set(err, ENOMEM, "Out of memory");
                s->n_devices++;
        }
        return 0;
}

int spec_parse_devices(JsonObject *l, Spec *s, BerthError *err) {
        JsonNode *n = json_object_get_member(l, "devices");

        if (!n || JSON_NODE_HOLDS_NULL(n))
                return 0;
        if (!JSON_NODE_HOLDS_ARRAY(n))
                return berth_error_set(err, EINVAL, "Invalid runtime spec: linux.devices");
        return parse_device_list(json_node_get_array(n), s, err);
}
