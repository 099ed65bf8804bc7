/* SPDX-License-Identifier: MIT */
/*
 * keyfile.h — the rcmd pre-shared key file (docs/rcmd-protocol.md §2.1).
 *
 *   # comment
 *   identity rcmd-3f9a0c1d2e4b5a69
 *   key <64 hex digits>
 *
 * Read only from a regular file with no group/other permission bit (as ssh
 * insists for private keys); written only to a new file, mode 0600.
 * Any thread.
 */
#ifndef RCMD_KEYFILE_H
#define RCMD_KEYFILE_H

#include "sockserve.h"

#include <stddef.h>

#define RCMD_KEY_MIN 16
#define RCMD_KEY_MAX 64
#define RCMD_KEY_GEN 32
#define RCMD_IDENTITY_MAX 128
#define RCMD_KEYFILE_MAX 4096

typedef struct rcmd_key {
    unsigned char key[RCMD_KEY_MAX];
    size_t key_len;
    char identity[RCMD_IDENTITY_MAX + 1];
} rcmd_key;

/*
 * Load `path` into *k. Returns 0, or:
 *   -EACCES   the file has a group/other permission bit (err->msg says
 *             "key file 'P' is accessible by others (mode 0644); chmod 600 it")
 *   -EINVAL   not a regular file
 *   -EPERM    owned by another user than us or root (as OpenSSH refuses it)
 *   SS_EUSAGE malformed content (err->msg names the line)
 *   -errno    from open/read (err->msg names the file)
 * On failure *k is wiped.
 */
int rcmd_key_load(rcmd_key *k, const char *path, ss_error *err);

/*
 * Parse key file text (no permission checks: rcmd_key_load does those).
 * `name` is used in messages. Returns 0 or SS_EUSAGE.
 */
int rcmd_key_parse(rcmd_key *k, const char *text, size_t len, const char *name, ss_error *err);

/* The identity used when the file names none: "rcmd-" + 16 hex digits of
 * SHA-256("sockserve-rcmd-identity" || key). `out` holds >= 22 bytes. */
void rcmd_key_default_identity(const unsigned char *key, size_t len, char *out);

/*
 * Write a fresh key (RCMD_KEY_GEN bytes from RAND_bytes) to the new file
 * `path`, mode 0600, created with O_CREAT|O_EXCL|O_NOFOLLOW: an existing
 * file (or symlink) is never touched (-EEXIST). A partly written file is
 * removed. Returns 0 or a negative code with err->msg naming the file.
 */
int rcmd_key_generate(const char *path, ss_error *err);

/*
 * Check that the secret at `path` (`what` names it in messages, e.g.
 * "private key") is a regular file nobody but its owner may read, as
 * rcmd_key_load checks key files: 0, -EACCES, -EPERM, -EINVAL or -errno.
 */
int rcmd_check_private_file(const char *path, const char *what, ss_error *err);

/* Erase the secret from memory (OPENSSL_cleanse). */
void rcmd_key_wipe(rcmd_key *k);

#endif
