/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup-devices-bpf.h"
#include "macro.h"

/* Registers of the program:
 *   R1  the context (struct bpf_cgroup_dev_ctx), then scratch
 *   R2  device type (BPF_DEVCG_DEV_BLOCK / _CHAR): access_type & 0xffff
 *   R3  requested access (BPF_DEVCG_ACC_*): access_type >> 16
 *   R4  major, R5 minor
 * Layout: the prologue loads R2–R5; then one section per access bit (mknod, read, write), skipped when
 * the request lacks the bit, holding one block per rule that names the bit, the last rule first: a block
 * whose checks all pass either jumps to the end of its section (allow) or returns 0 (deny). After the
 * three sections the program returns 1. */

#define INSN(c, d, s, o, i)                                                                                 \
        ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define MOV32_REG(dst, src) INSN(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define AND32_IMM(dst, imm) INSN(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)
#define RSH32_IMM(dst, imm) INSN(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define MOV64_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
/* 32-bit compares: major and minor are u32, beyond what a sign-extended 64-bit immediate can name. */
#define JNE32_IMM(dst, imm, off) INSN(BPF_JMP32 | BPF_JNE | BPF_K, dst, 0, off, imm)
#define JEQ32_IMM(dst, imm, off) INSN(BPF_JMP32 | BPF_JEQ | BPF_K, dst, 0, off, imm)
#define JA(off) INSN(BPF_JMP | BPF_JA, 0, 0, off, 0)
#define EXIT_INSN() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

typedef struct Program {
        struct bpf_insn *insns;
        size_t n, allocated; /* sized in advance by program_size() */
} Program;

static void emit(Program *p, struct bpf_insn insn) {
        if (p->n < p->allocated)
                p->insns[p->n] = insn;
        p->n++;
}

static size_t rule_checks(const SpecDeviceRule *r) {
        return (r->type != 'a') + (r->major >= 0) + (r->minor >= 0);
}

static size_t rule_block_size(const SpecDeviceRule *r) {
        return rule_checks(r) + (r->allow ? 1 : 2);
}

static const struct {
        unsigned spec_bit;
        int bpf_bit;
} access_bits[] = {
        { SPEC_DEVICE_MKNOD, BPF_DEVCG_ACC_MKNOD },
        { SPEC_DEVICE_READ, BPF_DEVCG_ACC_READ },
        { SPEC_DEVICE_WRITE, BPF_DEVCG_ACC_WRITE },
};

static size_t section_body_size(const SpecDeviceRule *rules, size_t n, unsigned bit) {
        size_t s = 0;
        for (size_t i = 0; i < n; i++)
                if (rules[i].access & bit)
                        s += rule_block_size(&rules[i]);
        return s;
}

static size_t program_size(const SpecDeviceRule *rules, size_t n) {
        size_t s = 6 + 2; /* prologue, epilogue */
        for (size_t b = 0; b < ELEMENTSOF(access_bits); b++)
                s += 3 + section_body_size(rules, n, access_bits[b].spec_bit);
        return s;
}

/* One rule's block; left: instructions of the section after this block (where an allow jumps to). */
static void emit_rule(Program *p, const SpecDeviceRule *r, size_t left) {
        size_t size = rule_block_size(r), done = 0;
        /* A failed check skips the rest of the block: the next rule (or the section's end). */
#define SKIP_REST ((int16_t) (size - done - 1))
        if (r->type != 'a') {
                emit(p, JNE32_IMM(BPF_REG_2, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK,
                                  SKIP_REST));
                done++;
        }
        if (r->major >= 0) {
                emit(p, JNE32_IMM(BPF_REG_4, (int32_t) (uint32_t) r->major, SKIP_REST));
                done++;
        }
        if (r->minor >= 0) {
                emit(p, JNE32_IMM(BPF_REG_5, (int32_t) (uint32_t) r->minor, SKIP_REST));
                done++;
        }
#undef SKIP_REST
        if (r->allow)
                emit(p, JA((int16_t) left));
        else {
                emit(p, MOV64_IMM(BPF_REG_0, 0));
                emit(p, EXIT_INSN());
        }
}

int cgroup_devices_bpf_build(const SpecDeviceRule *rules, size_t n, struct bpf_insn **ret, size_t *ret_n) {
        Program p = {};
        size_t total;

        if (n > SPEC_DEVICE_RULES_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                if (!strchr("acb", rules[i].type) || rules[i].type == 0 || rules[i].major > UINT32_MAX ||
                    rules[i].minor > UINT32_MAX || (rules[i].access & ~(unsigned) SPEC_DEVICE_ALL))
                        return -EINVAL;
        total = program_size(rules, n);
        /* Jump offsets are 16 bits: a section must fit (it does at SPEC_DEVICE_RULES_MAX). */
        if (total > CGROUP_DEVICES_BPF_INSNS_MAX)
                return -E2BIG;
        p.insns = calloc(total, sizeof(struct bpf_insn));
        if (!p.insns)
                return -ENOMEM;
        p.allocated = total;

        emit(&p, LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type)));
        emit(&p, LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major)));
        emit(&p, LDX_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor)));
        emit(&p, MOV32_REG(BPF_REG_3, BPF_REG_2));
        emit(&p, RSH32_IMM(BPF_REG_3, 16));
        emit(&p, AND32_IMM(BPF_REG_2, 0xffff));

        for (size_t b = 0; b < ELEMENTSOF(access_bits); b++) {
                unsigned bit = access_bits[b].spec_bit;
                size_t body = section_body_size(rules, n, bit);

                /* Not requested: skip the section. */
                emit(&p, MOV32_REG(BPF_REG_1, BPF_REG_3));
                emit(&p, AND32_IMM(BPF_REG_1, access_bits[b].bpf_bit));
                emit(&p, JEQ32_IMM(BPF_REG_1, 0, (int16_t) body));
                /* The last rule first: the first block that matches decides. */
                for (size_t i = n; i-- > 0;) {
                        if (!(rules[i].access & bit))
                                continue;
                        body -= rule_block_size(&rules[i]);
                        emit_rule(&p, &rules[i], body);
                }
        }
        emit(&p, MOV64_IMM(BPF_REG_0, 1));
        emit(&p, EXIT_INSN());
        if (p.n != total) { /* a sizing bug: never load a program whose jumps may be wrong */
                free(p.insns);
                return -EPROTO;
        }

        *ret = p.insns;
        *ret_n = p.n;
        return 0;
}

static int bpf_call(int cmd, union bpf_attr *attr) {
        long r = syscall(__NR_bpf, cmd, attr, sizeof(*attr));
        return r < 0 ? -errno : (int) r;
}

int cgroup_devices_bpf_load(const SpecDeviceRule *rules, size_t n, int *ret_fd, BerthError *err) {
        _cleanup_free_ struct bpf_insn *insns = NULL;
        char log[4096] = "";
        union bpf_attr attr;
        size_t n_insns;
        int r, fd;

        r = cgroup_devices_bpf_build(rules, n, &insns, &n_insns);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot build the device filter from %zu rules", n);

        memset(&attr, 0, sizeof(attr));
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.insns = (uint64_t) (uintptr_t) insns;
        attr.insn_cnt = (uint32_t) n_insns;
        attr.license = (uint64_t) (uintptr_t) "GPL";
        attr.log_buf = (uint64_t) (uintptr_t) log;
        attr.log_size = sizeof(log);
        attr.log_level = 1;
        fd = bpf_call(BPF_PROG_LOAD, &attr);
        if (fd == -ENOSPC) { /* the verifier's log did not fit: load again without it */
                attr.log_buf = 0;
                attr.log_size = 0;
                attr.log_level = 0;
                fd = bpf_call(BPF_PROG_LOAD, &attr);
        }
        if (fd == -EPERM || fd == -ENOSYS)
                /* SECURITY: no silent fallback to no filter; the error says what is missing. */
                return berth_error_set(err, -fd,
                                       "Cannot load the cgroup v2 device filter: bpf(BPF_PROG_LOAD) refused "
                                       "(%s); it needs CAP_SYS_ADMIN or CAP_BPF, a kernel with "
                                       "CONFIG_CGROUP_BPF, and no seccomp filter denying bpf()",
                                       strerror(-fd));
        if (fd < 0)
                return berth_error_set(err, -fd, "Cannot load the cgroup v2 device filter: %s%s%.256s",
                                       strerror(-fd), log[0] ? ": " : "", log);
        *ret_fd = fd;
        return 0;
}

int cgroup_devices_bpf_apply(int cgroup_fd, const SpecDeviceRule *rules, size_t n, BerthError *err) {
        _cleanup_close_ int prog_fd = -EBADF;
        union bpf_attr attr;
        int r;

        r = cgroup_devices_bpf_load(rules, n, &prog_fd, err);
        if (r < 0)
                return r;
        memset(&attr, 0, sizeof(attr));
        attr.target_fd = (uint32_t) cgroup_fd;
        attr.attach_bpf_fd = (uint32_t) prog_fd;
        attr.attach_type = BPF_CGROUP_DEVICE;
        attr.attach_flags = BPF_F_ALLOW_MULTI;
        r = bpf_call(BPF_PROG_ATTACH, &attr);
        if (r < 0)
                return berth_error_setm(err, -r,
                                        "Cannot attach the device filter to the container's cgroup");
        return 0;
}
