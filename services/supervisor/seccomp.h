/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>

#include "berth-error.h"
#include "spec.h"

/* The loader of the default profile (data in seccomp-profile.c). The filters are compiled to BPF in the
 * caller, before the clone, so that a broken profile fails engine_create() early and the init child only
 * installs ready programs. Two filters stack (the kernel applies the stricter verdict of all): the
 * allow-list, and a default-allow filter that refuses TIOCSTI/TIOCLINUX by the low 32 bits of the ioctl
 * command, which libseccomp cannot express inside an allow-list that must also allow ioctl. */

#define SECCOMP_PROGRAMS_MAX 2

typedef struct SeccompPrograms {
        struct sock_fprog progs[SECCOMP_PROGRAMS_MAX];
        size_t n;
} SeccompPrograms;

int seccomp_build(const Spec *spec, SeccompPrograms *ret, BerthError *err);
void seccomp_programs_done(SeccompPrograms *p);

/* Child side. Needs no_new_privs set before, or CAP_SYS_ADMIN still held (engine.c orders this). */
int seccomp_install(const SeccompPrograms *p, BerthError *err);
