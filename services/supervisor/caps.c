/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

static const char *const cap_names[] = {
        [CAP_CHOWN] = "CAP_CHOWN",
        [CAP_DAC_OVERRIDE] = "CAP_DAC_OVERRIDE",
        [CAP_DAC_READ_SEARCH] = "CAP_DAC_READ_SEARCH",
        [CAP_FOWNER] = "CAP_FOWNER",
        [CAP_FSETID] = "CAP_FSETID",
        [CAP_KILL] = "CAP_KILL",
        [CAP_SETGID] = "CAP_SETGID",
        [CAP_SETUID] = "CAP_SETUID",
        [CAP_SETPCAP] = "CAP_SETPCAP",
        [CAP_LINUX_IMMUTABLE] = "CAP_LINUX_IMMUTABLE",
        [CAP_NET_BIND_SERVICE] = "CAP_NET_BIND_SERVICE",
        [CAP_NET_BROADCAST] = "CAP_NET_BROADCAST",
        [CAP_NET_ADMIN] = "CAP_NET_ADMIN",
        [CAP_NET_RAW] = "CAP_NET_RAW",
        [CAP_IPC_LOCK] = "CAP_IPC_LOCK",
        [CAP_IPC_OWNER] = "CAP_IPC_OWNER",
        [CAP_SYS_MODULE] = "CAP_SYS_MODULE",
        [CAP_SYS_RAWIO] = "CAP_SYS_RAWIO",
        [CAP_SYS_CHROOT] = "CAP_SYS_CHROOT",
        [CAP_SYS_PTRACE] = "CAP_SYS_PTRACE",
        [CAP_SYS_PACCT] = "CAP_SYS_PACCT",
        [CAP_SYS_ADMIN] = "CAP_SYS_ADMIN",
        [CAP_SYS_BOOT] = "CAP_SYS_BOOT",
        [CAP_SYS_NICE] = "CAP_SYS_NICE",
        [CAP_SYS_RESOURCE] = "CAP_SYS_RESOURCE",
        [CAP_SYS_TIME] = "CAP_SYS_TIME",
        [CAP_SYS_TTY_CONFIG] = "CAP_SYS_TTY_CONFIG",
        [CAP_MKNOD] = "CAP_MKNOD",
        [CAP_LEASE] = "CAP_LEASE",
        [CAP_AUDIT_WRITE] = "CAP_AUDIT_WRITE",
        [CAP_AUDIT_CONTROL] = "CAP_AUDIT_CONTROL",
        [CAP_SETFCAP] = "CAP_SETFCAP",
        [CAP_MAC_OVERRIDE] = "CAP_MAC_OVERRIDE",
        [CAP_MAC_ADMIN] = "CAP_MAC_ADMIN",
        [CAP_SYSLOG] = "CAP_SYSLOG",
        [CAP_WAKE_ALARM] = "CAP_WAKE_ALARM",
        [CAP_BLOCK_SUSPEND] = "CAP_BLOCK_SUSPEND",
        [CAP_AUDIT_READ] = "CAP_AUDIT_READ",
        [CAP_PERFMON] = "CAP_PERFMON",
        [CAP_BPF] = "CAP_BPF",
        [CAP_CHECKPOINT_RESTORE] = "CAP_CHECKPOINT_RESTORE",
};

int cap_from_spec_name(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(cap_names); i++)
                if (cap_names[i] && streq(cap_names[i], name))
                        return (int) i;
        return -EINVAL;
}

int cap_last_cap(void) {
        static int cached = -1;
        FILE *f;
        int v;

        if (cached >= 0)
                return cached;
        f = fopen("/proc/sys/kernel/cap_last_cap", "re");
        if (!f)
                return CAP_LAST_CAP;
        if (fscanf(f, "%d", &v) != 1 || v < 0 || v > 63)
                v = CAP_LAST_CAP;
        fclose(f);
        cached = v;
        return v;
}

int caps_drop_bounding(const SpecCaps *caps, BerthError *err) {
        int last = cap_last_cap();

        for (int c = 0; c <= last; c++) {
                if (caps->bounding & (UINT64_C(1) << c))
                        continue;
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                        return berth_error_setm(err, errno,
                                                "Failed to drop capability %d from the bounding set", c);
        }
        return 0;
}

int caps_apply(const SpecCaps *caps, BerthError *err) {
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[2] = {};
        int last = cap_last_cap();

        /* SECURITY: inheritable and ambient come only from the spec (empty by default):
         * CVE-2022-24769 / CVE-2022-29162 — a non-empty inheritable set lets execve of a file with
         * inheritable file capabilities gain them. */
        data[0].effective = (uint32_t) caps->effective;
        data[1].effective = (uint32_t) (caps->effective >> 32);
        data[0].permitted = (uint32_t) caps->permitted;
        data[1].permitted = (uint32_t) (caps->permitted >> 32);
        data[0].inheritable = (uint32_t) caps->inheritable;
        data[1].inheritable = (uint32_t) (caps->inheritable >> 32);
        if (syscall(SYS_capset, &hdr, data) < 0)
                return berth_error_setm(err, errno, "Failed to set capabilities");

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                return berth_error_setm(err, errno, "Failed to clear the ambient capabilities");
        for (int c = 0; c <= last; c++) {
                if (!(caps->ambient & (UINT64_C(1) << c)))
                        continue;
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
                        return berth_error_setm(err, errno, "Failed to raise ambient capability %d", c);
        }
        return 0;
}
