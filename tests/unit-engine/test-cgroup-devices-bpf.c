/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cgroup v2 device filter: the program built from device rules is run here by a small interpreter of
 * the instructions it uses, against the v1 controller's semantics, and handed to the kernel's verifier
 * when we may load programs (root). */
#include <errno.h>
#include <glib.h>
#include <unistd.h>

#include "cgroup-devices-bpf.h"
#include "macro.h"

/* Runs prog on one request; fails the test on an instruction the builder should never emit or a jump out
 * of the program. */
static int run(const struct bpf_insn *p, size_t n, int type, int access, uint32_t major, uint32_t minor) {
        uint64_t reg[11] = {};
        uint32_t ctx[3] = { (uint32_t) type | ((uint32_t) access << 16), major, minor };

        for (size_t pc = 0; pc < n; pc++) {
                const struct bpf_insn *i = &p[pc];
                uint64_t *d = &reg[i->dst_reg];
                switch (i->code) {
                case BPF_LDX | BPF_MEM | BPF_W:
                        g_assert_cmpint(i->src_reg, ==, BPF_REG_1);
                        g_assert_true(i->off >= 0 && i->off <= 8 && i->off % 4 == 0);
                        *d = ctx[i->off / 4];
                        break;
                case BPF_ALU | BPF_MOV | BPF_X:
                        *d = (uint32_t) reg[i->src_reg];
                        break;
                case BPF_ALU | BPF_AND | BPF_K:
                        *d = (uint32_t) *d & (uint32_t) i->imm;
                        break;
                case BPF_ALU | BPF_RSH | BPF_K:
                        *d = (uint32_t) *d >> i->imm;
                        break;
                case BPF_ALU64 | BPF_MOV | BPF_K:
                        *d = (uint64_t) (int64_t) i->imm;
                        break;
                case BPF_JMP32 | BPF_JNE | BPF_K:
                        if ((uint32_t) *d != (uint32_t) i->imm)
                                pc += i->off;
                        break;
                case BPF_JMP32 | BPF_JEQ | BPF_K:
                        if ((uint32_t) *d == (uint32_t) i->imm)
                                pc += i->off;
                        break;
                case BPF_JMP | BPF_JA:
                        pc += i->off;
                        break;
                case BPF_JMP | BPF_EXIT:
                        g_assert_true(reg[0] <= 1);
                        return (int) reg[0];
                default:
                        g_assert_not_reached();
                }
                g_assert_cmpuint(pc + 1, <=, n);
        }
        g_assert_not_reached();
}

#define C BPF_DEVCG_DEV_CHAR
#define B BPF_DEVCG_DEV_BLOCK
#define R BPF_DEVCG_ACC_READ
#define W BPF_DEVCG_ACC_WRITE
#define M BPF_DEVCG_ACC_MKNOD

static const SpecDeviceRule defaults[] = {
        { false, 'a', -1, -1, SPEC_DEVICE_ALL },  { true, 'c', -1, -1, SPEC_DEVICE_MKNOD },
        { true, 'b', -1, -1, SPEC_DEVICE_MKNOD }, { true, 'c', 1, 3, SPEC_DEVICE_ALL },
        { true, 'c', 136, -1, SPEC_DEVICE_ALL },
};

static void test_defaults(void) {
        g_autofree struct bpf_insn *p = NULL;
        size_t n;

        g_assert_cmpint(cgroup_devices_bpf_build(defaults, ELEMENTSOF(defaults), &p, &n), ==, 0);
        /* /dev/null in every way; the pts of any minor */
        g_assert_cmpint(run(p, n, C, R | W, 1, 3), ==, 1);
        g_assert_cmpint(run(p, n, C, M, 1, 3), ==, 1);
        g_assert_cmpint(run(p, n, C, R, 136, 7), ==, 1);
        /* a disk: mknod yes (rule "b *:* m"), open no */
        g_assert_cmpint(run(p, n, B, M, 8, 0), ==, 1);
        g_assert_cmpint(run(p, n, B, R, 8, 0), ==, 0);
        g_assert_cmpint(run(p, n, B, R | W, 8, 0), ==, 0);
        /* 1:3 as a block device is not /dev/null; a neighbour of 1:3 is not either */
        g_assert_cmpint(run(p, n, B, R, 1, 3), ==, 0);
        g_assert_cmpint(run(p, n, C, R, 1, 4), ==, 0);
        g_assert_cmpint(run(p, n, C, W, 4, 3), ==, 0);
        /* mknod plus read of a char device: read denied */
        g_assert_cmpint(run(p, n, C, M | R, 10, 200), ==, 0);
}

static void test_order_and_access(void) {
        g_autofree struct bpf_insn *p = NULL, *q = NULL, *e = NULL;
        size_t n, m, k;

        /* The last matching rule decides, per access bit: allow all, deny writes to 1:3, then allow
         * 1:3 again only for reading. */
        const SpecDeviceRule rules[] = {
                { true, 'a', -1, -1, SPEC_DEVICE_ALL },
                { false, 'c', 1, 3, SPEC_DEVICE_WRITE },
                { true, 'c', 1, 3, SPEC_DEVICE_READ },
        };
        g_assert_cmpint(cgroup_devices_bpf_build(rules, ELEMENTSOF(rules), &p, &n), ==, 0);
        g_assert_cmpint(run(p, n, C, R, 1, 3), ==, 1);
        g_assert_cmpint(run(p, n, C, W, 1, 3), ==, 0);
        g_assert_cmpint(run(p, n, C, R | W, 1, 3), ==, 0);
        g_assert_cmpint(run(p, n, C, R | W, 1, 5), ==, 1);

        /* Allow before deny: the deny wins; and a major beyond INT32_MAX is compared as u32. */
        const SpecDeviceRule rules2[] = {
                { true, 'c', 4294967295LL, -1, SPEC_DEVICE_ALL },
                { false, 'c', -1, 9, SPEC_DEVICE_ALL },
        };
        g_assert_cmpint(cgroup_devices_bpf_build(rules2, ELEMENTSOF(rules2), &q, &m), ==, 0);
        g_assert_cmpint(run(q, m, C, R, 4294967295U, 1), ==, 1);
        g_assert_cmpint(run(q, m, C, R, 4294967295U, 9), ==, 0);
        g_assert_cmpint(run(q, m, C, R, 2147483647U, 1), ==, 1); /* no rule matches: allowed */

        /* No rules: everything allowed (as a fresh v1 cgroup under an unrestricted parent). */
        g_assert_cmpint(cgroup_devices_bpf_build(NULL, 0, &e, &k), ==, 0);
        g_assert_cmpint(run(e, k, B, R | W | M, 8, 0), ==, 1);
}

static void test_refused(void) {
        g_autofree struct bpf_insn *p = NULL;
        size_t n;
        const SpecDeviceRule bad_type[] = { { true, 'x', -1, -1, SPEC_DEVICE_ALL } };
        const SpecDeviceRule bad_access[] = { { true, 'c', -1, -1, 8 } };

        g_assert_cmpint(cgroup_devices_bpf_build(bad_type, 1, &p, &n), ==, -EINVAL);
        g_assert_cmpint(cgroup_devices_bpf_build(bad_access, 1, &p, &n), ==, -EINVAL);
        g_assert_cmpint(cgroup_devices_bpf_build(defaults, SPEC_DEVICE_RULES_MAX + 1, &p, &n), ==, -E2BIG);
}

static void test_max_rules_fit(void) {
        g_autofree SpecDeviceRule *rules = g_new0(SpecDeviceRule, SPEC_DEVICE_RULES_MAX);
        g_autofree struct bpf_insn *p = NULL;
        size_t n;

        for (size_t i = 0; i < SPEC_DEVICE_RULES_MAX; i++)
                rules[i] = (SpecDeviceRule){ i % 2 == 0, 'c', (int64_t) i, (int64_t) i, SPEC_DEVICE_ALL };
        g_assert_cmpint(cgroup_devices_bpf_build(rules, SPEC_DEVICE_RULES_MAX, &p, &n), ==, 0);
        g_assert_cmpint(run(p, n, C, R, 254, 254), ==, 1);
        g_assert_cmpint(run(p, n, C, R, 255, 255), ==, 0);
}

static void test_kernel_verifier_accepts(void) {
        BerthError err = {};
        int fd = -1;

        if (geteuid() != 0) {
                g_test_skip("loading a BPF_PROG_TYPE_CGROUP_DEVICE program needs root");
                return;
        }
        int r = cgroup_devices_bpf_load(defaults, ELEMENTSOF(defaults), &fd, &err);
        if (r == -EPERM || r == -ENOSYS) {
                g_test_skip(err.message);
                return;
        }
        g_assert_cmpstr(err.message, ==, "");
        g_assert_cmpint(r, ==, 0);
        g_assert_cmpint(fd, >=, 0);
        close(fd);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cgroup-devices-bpf/defaults", test_defaults);
        g_test_add_func("/cgroup-devices-bpf/order-and-access", test_order_and_access);
        g_test_add_func("/cgroup-devices-bpf/refused", test_refused);
        g_test_add_func("/cgroup-devices-bpf/max-rules-fit", test_max_rules_fit);
        g_test_add_func("/cgroup-devices-bpf/kernel-verifier-accepts", test_kernel_verifier_accepts);
        return g_test_run();
}
