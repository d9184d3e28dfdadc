/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* The fetcher's own system call allow-list (issue 12, finding 6), installed once the service is set up:
 * what libcurl, OpenSSL, the resolver, sd-bus/sd-event, GLib, the content store and the archive child's
 * sandbox setup call, measured with strace over pulls (TLS, token auth, redirects), logins, imports and
 * exports. Anything else fails with EPERM: no execve (the fetcher never runs a program), no ptrace or
 * process_vm_*, no bpf, perf, keyctl, kernel modules, open_by_handle_at, userfaultfd, io_uring. Under
 * systemd the unit's SystemCallFilter= applies as well. */
int fetcher_install_seccomp(char *err, size_t err_size);
