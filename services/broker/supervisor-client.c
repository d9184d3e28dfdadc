/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "supervisor-client.h"

DEFINE_INTERNAL_CLIENT(supervisor, internal_supervisor)
