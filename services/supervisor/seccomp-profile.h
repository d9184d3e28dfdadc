/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

typedef struct SeccompCapGroup {
        int capability; /* -1 ends the table */
        const char *const *names;
} SeccompCapGroup;

extern const char *const seccomp_default_allow[];
extern const SeccompCapGroup seccomp_default_cap_groups[];
extern const char *const seccomp_default_allow_modern_kernel[];
extern const char *const seccomp_default_allow_arch[];
extern const unsigned long seccomp_default_personality[];
extern const size_t seccomp_default_personality_count;
extern const unsigned long seccomp_default_clone_ns_mask;
extern const int seccomp_default_socket_denied_family;
extern const unsigned long seccomp_default_denied_ioctls[];
extern const size_t seccomp_default_denied_ioctls_count;
