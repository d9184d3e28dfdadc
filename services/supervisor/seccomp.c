/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "seccomp-profile.h"
#include "seccomp.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(scmp_filter_ctx, seccomp_release);

static int set_compat_policy(scmp_filter_ctx ctx) {
        /* Only the native ABI is allowed. moby adds the compat ABIs (x86 and x32 on x86_64) with the same
         * list; we refuse them outright instead: every int 0x80 and x32 system call fails with ENOSYS
         * before any rule is looked at (libseccomp sends foreign architectures and x32 numbers to the
         * "bad arch" action). Stricter, it costs 32-bit binaries in containers, and it keeps the filter
         * a third of the size: compiling three ABIs took ~12 ms per container on the CI machine. */
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
        if (r < 0)
                return r;
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
        /* The same decisions, laid out as a binary search on the syscall number instead of one comparison
         * per rule in a row: the kernel runs the filter once per syscall number when it is installed (to
         * cache which ones it allows outright), so a row of ~300 rules made each install cost ~0.45 ms
         * against ~0.18 ms, in every container start and every exec; and every syscall the container
         * makes walks fewer of them. A libseccomp without the attribute keeps the row. */
        (void) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
        return 0;
}

static int allow_name(scmp_filter_ctx ctx, const char *name) {
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return 0; /* not a syscall libseccomp knows on any of our architectures */
        int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        return r == -EEXIST ? 0 : r;
}

static bool has_cap(const Spec *spec, int cap) {
        return spec->caps.bounding & (UINT64_C(1) << cap);
}

static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        void *buf;
        int r;

        fd = memfd_create("berth-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
            st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -EBADMSG;
        buf = malloc((size_t) st.st_size);
        if (!buf)
                return -ENOMEM;
        if (pread(fd, buf, (size_t) st.st_size, 0) != st.st_size) {
                free(buf);
                return -EIO;
        }
        ret->filter = buf;
        ret->len = (unsigned short) (st.st_size / sizeof(struct sock_filter));
        return 0;
}

static int build_allow_list(const Spec *spec, struct sock_fprog *ret) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int r;

        ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
        if (!ctx)
                return -ENOMEM;
        if ((r = set_compat_policy(ctx)) < 0)
                return r;

        for (const char *const *n = seccomp_default_allow; *n; n++)
                if ((r = allow_name(ctx, *n)) < 0)
                        return r;
        for (const char *const *n = seccomp_default_allow_arch; *n; n++)
                if ((r = allow_name(ctx, *n)) < 0)
                        return r;
        /* Our kernels are all >= 4.8 (openat2 needs 5.6). */
        for (const char *const *n = seccomp_default_allow_modern_kernel; *n; n++)
                if ((r = allow_name(ctx, *n)) < 0)
                        return r;
        for (const SeccompCapGroup *g = seccomp_default_cap_groups; g->capability >= 0; g++)
                if (has_cap(spec, g->capability))
                        for (const char *const *n = g->names; *n; n++)
                                if ((r = allow_name(ctx, *n)) < 0)
                                        return r;

        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 0);
        if (r < 0)
                return r;
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_NE, (scmp_datum_t) seccomp_default_socket_denied_family));
        if (r < 0)
                return r;
        for (size_t i = 0; i < seccomp_default_personality_count; i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                                     SCMP_A0(SCMP_CMP_EQ, seccomp_default_personality[i]));
                if (r < 0)
                        return r;
        }
        if (!has_cap(spec, CAP_SYS_ADMIN)) {
                /* clone without namespace flags only (the x86 and arm argument order); clone3 hides
                 * its flags in memory, so it answers ENOSYS and libc falls back to clone. */
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, seccomp_default_clone_ns_mask, 0));
                if (r < 0)
                        return r;
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
                if (r < 0)
                        return r;
        }
        return export_bpf(ctx, ret);
}

static int build_ioctl_filter(struct sock_fprog *ret) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int r;

        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        if ((r = set_compat_policy(ctx)) < 0)
                return r;
        for (size_t i = 0; i < seccomp_default_denied_ioctls_count; i++) {
                r = seccomp_rule_add(
                        ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                        SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, seccomp_default_denied_ioctls[i]));
                if (r < 0)
                        return r;
        }
        return export_bpf(ctx, ret);
}

int seccomp_build(const Spec *spec, SeccompPrograms *ret, BerthError *err) {
        int r;

        *ret = (SeccompPrograms){};
        if (spec->seccomp == SPEC_SECCOMP_NONE)
                return 0;
        r = build_allow_list(spec, &ret->progs[0]);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot build the default seccomp profile");
        ret->n = 1;
        r = build_ioctl_filter(&ret->progs[1]);
        if (r < 0) {
                seccomp_programs_done(ret);
                return berth_error_setm(err, -r, "Cannot build the ioctl seccomp filter");
        }
        ret->n = 2;
        return 0;
}

void seccomp_programs_done(SeccompPrograms *p) {
        for (size_t i = 0; i < p->n; i++)
                free(p->progs[i].filter);
        *p = (SeccompPrograms){};
}

int seccomp_install(const SeccompPrograms *p, BerthError *err) {
        for (size_t i = 0; i < p->n; i++)
                if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p->progs[i]) < 0)
                        return berth_error_setm(err, errno, "Cannot install seccomp filter %zu", i);
        return 0;
}
