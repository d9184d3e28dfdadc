/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* CVE-2019-5736: the container's init is a clone of the calling process, so during its final execve()
 * /proc/self/exe is the caller's executable. An image whose entrypoint is "#!/proc/self/exe" runs that
 * executable inside the container, where root can reopen it for writing once it exits: if it were the
 * host's berth-supervisor file, the container would overwrite the host's root daemon.
 *
 * So the process that calls engine_create() must itself run from a sealed, anonymous copy of its binary
 * (runc's "cloned binary"): exe_seal_reexec() copies /proc/self/exe into a memfd, seals it against any
 * write, grow or shrink, and fexecve()s it with the same argv and environment. It is a no-op when the
 * image is sealed already, so the cost is one copy per daemon start, not per container. Call it first
 * thing in main(). */

/* true when /proc/self/exe is a memfd sealed against writes, growth, shrinking and further seals. */
bool exe_is_sealed(void);

/* Returns 0 when already sealed; otherwise re-executes and returns only on failure (-errno). */
int exe_seal_reexec(char **argv);
