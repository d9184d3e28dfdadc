/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "berth-limits.h"
#include "broker.h"
#include "bus-names.h"
#include "image-store.h"
#include "log.h"
#include "oci-ref.h"
#include "transfer.h"

/* What every handler of the public API needs: references as users write them, polkit details, the
 * transfer limits, and the image record a reference names. */

/* Parses a user's reference and returns its normalised spelling, or sets InvalidReference saying
 * what is wrong. */
int broker_normalise_reference(const char *s, ImageReference **ret_ref, char **ret, sd_bus_error *error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *msg = NULL;
        char *n;
        int r;

        if (strlen(s) > REFERENCE_LENGTH_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Reference is longer than %u bytes.", REFERENCE_LENGTH_MAX);
        r = image_reference_parse(s, &ref, &msg);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Invalid reference '%.200s': %s", s, msg ?: "malformed");
        n = image_reference_to_string(ref);
        if (!n)
                return -ENOMEM;
        *ret = n;
        if (ret_ref)
                *ret_ref = TAKE_PTR(ref);
        return 0;
}

int broker_authorize_reference(sd_bus_message *m, broker_continuation_t cont, Manager *manager,
                               sd_bus_error *error) {
        ReferenceArgs a = {};
        int r;

        r = sd_bus_message_read(m, "sst", &a.reference, &a.platform, &a.flags);
        if (r < 0)
                return r;
        const char *details[] = { "reference", broker_detail(a.reference), "platform",
                                  broker_detail(a.platform), NULL };
        return broker_authorize(m, details, cont, manager, &a, sizeof(a), NULL, error);
}

const char *broker_detail(const char *s) {
        /* polkit details are for humans and rules; an oversized argument is refused later anyway. */
        return strlen(s) <= BUS_STRING_MAX ? s : "";
}

/* The global and per-user limits on running transfers (pulls and unpacks alike). */
int broker_check_transfer_limits(Manager *manager, uid_t uid, sd_bus_error *error) {
        if (transfer_count_running(manager, true, 0) >= TRANSFERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many transfers running (limit %u).",
                                         TRANSFERS_MAX);
        if (transfer_count_running(manager, false, uid) >= TRANSFERS_PER_USER_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT,
                                         "Too many transfers of yours running (limit %u).",
                                         TRANSFERS_PER_USER_MAX);
        return 0;
}

/* The platform of a record this machine runs: the one matching the default platform, or the only one
 * (a single-manifest image is taken whatever its platform, as pulls do); with `wanted`, that one. */
const ImagePlatform *broker_image_platform(const Image *i, const Platform *wanted) {
        _cleanup_(platform_done) Platform def = {};

        if (!wanted) {
                if (platform_default(&def) < 0)
                        return i->n_platforms == 1 ? &i->platforms[0] : NULL;
                wanted = &def;
        }
        for (size_t k = 0; k < i->n_platforms; k++) {
                _cleanup_(platform_done) Platform p = {};

                if (platform_parse(i->platforms[k].platform, &p, NULL) >= 0 && platform_matches(wanted, &p))
                        return &i->platforms[k];
        }
        return wanted == &def && i->n_platforms == 1 ? &i->platforms[0] : NULL;
}

int broker_lookup_image(Manager *manager, const char *reference, Image **ret, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Image *i;
        int r;

        r = broker_normalise_reference(reference, NULL, &name, error);
        if (r < 0)
                return r;
        i = image_store_get(manager->images, name);
        if (!i)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No image '%s'.", name);
        *ret = i;
        return 0;
}

BrokerRequest *broker_request_new(Manager *manager, sd_bus_message *message) {
        BrokerRequest *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->manager = manager;
        r->message = sd_bus_message_ref(message);
        return r;
}

BrokerRequest *broker_request_free(BrokerRequest *r) {
        if (!r)
                return NULL;
        sd_bus_message_unref(r->message);
        return mfree(r);
}

void broker_send_built_reply(sd_bus_message *request, sd_bus_message *reply, int r, const char *what) {
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to %s: %m", what);
                (void) sd_bus_reply_method_errorf(request, BERTH_ERROR_IO, "Failed to %s: %s", what,
                                                  strerror(-r));
        }
}
