/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one place where bus names, object paths, interfaces, error names and polkit action ids are
 * spelled. dbus/, polkit/ and docs/ must match these (tests/unit/test-bus-names.c checks the files). */

#define BERTH_BROKER_NAME "org.berth.Broker1"
#define BERTH_BROKER_PATH "/org/berth/Broker1"
#define BERTH_BROKER_MANAGER_IFACE "org.berth.Broker1.Manager"
#define BERTH_BROKER_IMAGE_IFACE "org.berth.Broker1.Image"
#define BERTH_BROKER_CONTAINER_IFACE "org.berth.Broker1.Container"
#define BERTH_BROKER_TRANSFER_IFACE "org.berth.Broker1.Transfer"
#define BERTH_BROKER_IMAGE_PREFIX BERTH_BROKER_PATH "/image"
#define BERTH_BROKER_CONTAINER_PREFIX BERTH_BROKER_PATH "/container"
#define BERTH_BROKER_TRANSFER_PREFIX BERTH_BROKER_PATH "/transfer"

#define BERTH_FETCHER_NAME "org.berth.Fetcher1"
#define BERTH_FETCHER_PATH "/org/berth/Fetcher1"
#define BERTH_FETCHER_IFACE "org.berth.Fetcher1"

#define BERTH_UNPACKER_NAME "org.berth.Unpacker1"
#define BERTH_UNPACKER_PATH "/org/berth/Unpacker1"
#define BERTH_UNPACKER_IFACE "org.berth.Unpacker1"

#define BERTH_SUPERVISOR_NAME "org.berth.Supervisor1"
#define BERTH_SUPERVISOR_PATH "/org/berth/Supervisor1"
#define BERTH_SUPERVISOR_IFACE "org.berth.Supervisor1"

/* Polkit actions. */
#define BERTH_ACTION_IMAGE_PULL "org.berth.image-pull"
#define BERTH_ACTION_IMAGE_REMOVE "org.berth.image-remove"
#define BERTH_ACTION_IMAGE_IMPORT "org.berth.image-import"
#define BERTH_ACTION_CONTAINER_RUN "org.berth.container-run"
#define BERTH_ACTION_CONTAINER_MANAGE "org.berth.container-manage"
#define BERTH_ACTION_CONTAINER_MANAGE_ANY "org.berth.container-manage-any"
#define BERTH_ACTION_CONTAINER_PRIVILEGED "org.berth.container-privileged"
#define BERTH_ACTION_REGISTRY_LOGIN "org.berth.registry-login"
#define BERTH_ACTION_MAINTENANCE "org.berth.maintenance"
#define BERTH_ACTION_IMAGE_MOUNT "org.berth.image-mount"
#define BERTH_ACTION_NETWORK_MANAGE "org.berth.network-manage"
/* Read-only queries (GetInfo, listing what the caller may see). */
#define BERTH_ACTION_INFO "org.berth.info"

/* Named errors; the CLI prints their message as one line. */
#define BERTH_ERROR_PREFIX "org.berth.Error."
#define BERTH_ERROR_ACCESS_DENIED "org.berth.Error.AccessDenied"
#define BERTH_ERROR_NOT_BROKER "org.berth.Error.NotBroker"
#define BERTH_ERROR_SERVICE_UNAVAILABLE "org.berth.Error.ServiceUnavailable"
#define BERTH_ERROR_INVALID_REFERENCE "org.berth.Error.InvalidReference"
#define BERTH_ERROR_NOT_FOUND "org.berth.Error.NotFound"
#define BERTH_ERROR_EXISTS "org.berth.Error.Exists"
#define BERTH_ERROR_LIMIT "org.berth.Error.LimitExceeded"
#define BERTH_ERROR_DIGEST_MISMATCH "org.berth.Error.DigestMismatch"
#define BERTH_ERROR_REGISTRY "org.berth.Error.Registry"
#define BERTH_ERROR_AUTH "org.berth.Error.Authentication"
#define BERTH_ERROR_UNSUPPORTED "org.berth.Error.Unsupported"
#define BERTH_ERROR_BAD_CONTENT "org.berth.Error.BadContent"
#define BERTH_ERROR_CANCELLED "org.berth.Error.Cancelled"
#define BERTH_ERROR_BUSY "org.berth.Error.Busy"
#define BERTH_ERROR_IO "org.berth.Error.IO"
#define BERTH_ERROR_INVALID_ARGS "org.berth.Error.InvalidArgs"
#define BERTH_ERROR_NOT_ALLOWED "org.berth.Error.NotAllowed"
#define BERTH_ERROR_EXEC_FAILED "org.berth.Error.ExecFailed"
#define BERTH_ERROR_IMAGE_NOT_RUNNABLE "org.berth.Error.ImageNotRunnable"
