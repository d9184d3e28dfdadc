/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "container-cgroup.h"
#include "freezer.h"

typedef struct FreezerFile {
        char dir[PATH_MAX];
        bool v1; /* freezer.state, else cgroup.freeze */
} FreezerFile;

static int freezer_find(int state_dir_fd, FreezerFile *ret) {
        ContainerCgroup cg;
        int r;

        r = container_cgroup_find(state_dir_fd, &cg);
        if (r < 0)
                return r;
        /* The v1 freezer where there is one (v1 and this machine's hybrid layout); otherwise v2's. */
        r = container_cgroup_dir(&cg, "freezer", ret->dir, sizeof(ret->dir));
        if (r >= 0) {
                ret->v1 = true;
                return 0;
        }
        ret->v1 = false;
        return container_cgroup_dir(&cg, NULL, ret->dir, sizeof(ret->dir));
}

static int freezer_read(const FreezerFile *f, bool *ret_frozen, bool *ret_settled) {
        char buf[512];
        int r;

        if (f->v1) {
                r = cgroup_read_text(f->dir, "freezer.state", buf, sizeof(buf));
                if (r < 0)
                        return r;
                *ret_frozen = strncmp(buf, "FROZEN", 6) == 0;
                *ret_settled = strncmp(buf, "FREEZING", 8) != 0;
                return 0;
        }
        r = cgroup_read_text(f->dir, "cgroup.events", buf, sizeof(buf));
        if (r < 0)
                return r;
        const char *p = strstr(buf, "frozen ");
        if (!p)
                return -EOPNOTSUPP; /* a kernel before 5.2: no v2 freezer */
        *ret_frozen = p[7] == '1';
        *ret_settled = true;
        return 0;
}

int freezer_get(int state_dir_fd, bool *ret) {
        FreezerFile f;
        bool settled;
        int r;

        r = freezer_find(state_dir_fd, &f);
        if (r < 0)
                return r;
        return freezer_read(&f, ret, &settled);
}

int freezer_set(int state_dir_fd, bool frozen) {
        FreezerFile f;
        int r;

        r = freezer_find(state_dir_fd, &f);
        if (r < 0)
                return r;
        if (f.v1)
                r = cgroup_write(f.dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
        else
                r = cgroup_write(f.dir, "cgroup.freeze", frozen ? "1" : "0");
        if (r < 0)
                return r;
        /* Freezing is asynchronous: v1 passes through FREEZING, v2 reports in cgroup.events. */
        for (int waited = 0;; waited++) {
                bool now, settled;

                r = freezer_read(&f, &now, &settled);
                if (r < 0)
                        return r;
                if (settled && now == frozen)
                        return 0;
                if (waited >= FREEZER_TIMEOUT_MSEC)
                        break;
                if (f.v1 && frozen && settled && !now)
                        /* v1 falls back to THAWED when a task could not be frozen: ask again. */
                        (void) cgroup_write(f.dir, "freezer.state", "FROZEN");
                (void) usleep(1000);
        }
        if (frozen)
                /* Never leave a half-frozen container behind. */
                (void) (f.v1 ? cgroup_write(f.dir, "freezer.state", "THAWED")
                             : cgroup_write(f.dir, "cgroup.freeze", "0"));
        return -ETIMEDOUT;
}
