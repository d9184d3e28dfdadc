/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libarchive for the fetcher's archive children (ImportArchive, ExportArchive), loaded with dlopen() in
 * the forked child only (lib/dlopen-util.h): the fetcher itself never maps libarchive and what it
 * pulls in (libxml2, ICU, libstdc++, the decompressors). Include this instead of <archive.h>. */

#include <archive.h>
#include <archive_entry.h>

/* Loads libarchive and resolves every function used; idempotent. < 0 when it cannot, with *ret_error
 * (may be NULL) saying why. */
int archive_dl_open(const char **ret_error);

#define ARCHIVE_DL_FUNCTIONS(X)                                                                             \
        X(archive_entry_filetype)                                                                           \
        X(archive_entry_free)                                                                               \
        X(archive_entry_hardlink)                                                                           \
        X(archive_entry_new)                                                                                \
        X(archive_entry_pathname)                                                                           \
        X(archive_entry_set_filetype)                                                                       \
        X(archive_entry_set_gid)                                                                            \
        X(archive_entry_set_mtime)                                                                          \
        X(archive_entry_set_pathname)                                                                       \
        X(archive_entry_set_perm)                                                                           \
        X(archive_entry_set_size)                                                                           \
        X(archive_entry_set_uid)                                                                            \
        X(archive_entry_size)                                                                               \
        X(archive_entry_size_is_set)                                                                        \
        X(archive_entry_symlink)                                                                            \
        X(archive_errno)                                                                                    \
        X(archive_error_string)                                                                             \
        X(archive_read_data)                                                                                \
        X(archive_read_data_skip)                                                                           \
        X(archive_read_free)                                                                                \
        X(archive_read_new)                                                                                 \
        X(archive_read_next_header)                                                                         \
        X(archive_read_open)                                                                                \
        X(archive_read_support_filter_gzip)                                                                 \
        X(archive_read_support_filter_none)                                                                 \
        X(archive_read_support_filter_zstd)                                                                 \
        X(archive_read_support_format_tar)                                                                  \
        X(archive_set_error)                                                                                \
        X(archive_write_add_filter_none)                                                                    \
        X(archive_write_close)                                                                              \
        X(archive_write_data)                                                                               \
        X(archive_write_free)                                                                               \
        X(archive_write_header)                                                                             \
        X(archive_write_new)                                                                                \
        X(archive_write_open)                                                                               \
        X(archive_write_set_bytes_in_last_block)                                                            \
        X(archive_write_set_format_pax_restricted)

#define ARCHIVE_DL_DECLARE(f) extern typeof(f) *sym_##f;
ARCHIVE_DL_FUNCTIONS(ARCHIVE_DL_DECLARE)
#undef ARCHIVE_DL_DECLARE

#ifndef ARCHIVE_DL_IMPLEMENTATION
#define archive_entry_filetype sym_archive_entry_filetype
#define archive_entry_free sym_archive_entry_free
#define archive_entry_hardlink sym_archive_entry_hardlink
#define archive_entry_new sym_archive_entry_new
#define archive_entry_pathname sym_archive_entry_pathname
#define archive_entry_set_filetype sym_archive_entry_set_filetype
#define archive_entry_set_gid sym_archive_entry_set_gid
#define archive_entry_set_mtime sym_archive_entry_set_mtime
#define archive_entry_set_pathname sym_archive_entry_set_pathname
#define archive_entry_set_perm sym_archive_entry_set_perm
#define archive_entry_set_size sym_archive_entry_set_size
#define archive_entry_set_uid sym_archive_entry_set_uid
#define archive_entry_size sym_archive_entry_size
#define archive_entry_size_is_set sym_archive_entry_size_is_set
#define archive_entry_symlink sym_archive_entry_symlink
#define archive_errno sym_archive_errno
#define archive_error_string sym_archive_error_string
#define archive_read_data sym_archive_read_data
#define archive_read_data_skip sym_archive_read_data_skip
#define archive_read_free sym_archive_read_free
#define archive_read_new sym_archive_read_new
#define archive_read_next_header sym_archive_read_next_header
#define archive_read_open sym_archive_read_open
#define archive_read_support_filter_gzip sym_archive_read_support_filter_gzip
#define archive_read_support_filter_none sym_archive_read_support_filter_none
#define archive_read_support_filter_zstd sym_archive_read_support_filter_zstd
#define archive_read_support_format_tar sym_archive_read_support_format_tar
#define archive_set_error sym_archive_set_error
#define archive_write_add_filter_none sym_archive_write_add_filter_none
#define archive_write_close sym_archive_write_close
#define archive_write_data sym_archive_write_data
#define archive_write_free sym_archive_write_free
#define archive_write_header sym_archive_write_header
#define archive_write_new sym_archive_write_new
#define archive_write_open sym_archive_write_open
#define archive_write_set_bytes_in_last_block sym_archive_write_set_bytes_in_last_block
#define archive_write_set_format_pax_restricted sym_archive_write_set_format_pax_restricted
#endif
