/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine's runtime-spec reader (services/supervisor/spec.c): any input either parses into a spec the
 * engine could run, or fails with an error message; never a crash, never a spec that breaks its own
 * invariants (absolute paths, caps within 64 bits, soft <= hard). */
#include <stdint.h>
#include <string.h>

#include "json-util.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *msg = NULL;
        BerthError e = {};
        Spec s;

        if (json_parse_bounded((const char *) data, size, 1024 * 1024, &root, &msg) < 0)
                return 0;
        if (spec_parse(root, &s, &e) < 0) {
                if (e.error <= 0 || e.message[0] == '\0')
                        abort();
                spec_done(&s);
                return 0;
        }
        if (!s.root_path || s.root_path[0] != '/' || !s.args || !s.args[0] || !s.cwd || s.cwd[0] != '/' ||
            s.uid == (uid_t) -1 || s.gid == (gid_t) -1)
                abort();
        for (size_t i = 0; i < s.n_mounts; i++)
                if (s.mounts[i].destination[0] != '/')
                        abort();
        for (size_t i = 0; i < s.n_rlimits; i++)
                if (s.rlimits[i].soft > s.rlimits[i].hard)
                        abort();
        for (size_t i = 0; i < s.n_sysctls; i++)
                if (spec_sysctl_check(&s, s.sysctls[i].key, s.sysctls[i].value, &e) < 0)
                        abort();
        spec_done(&s);
        return 0;
}
