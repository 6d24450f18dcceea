/* data_root: the env a server's --data-dir names, and the flags that
 * configure an S3 one (docs/storage.md).
 *
 * mica-master and mica-tserver take the same storage flags; this module
 * holds their names, their help text and the choice of env, so the two
 * programs cannot drift apart and nothing else needs to know that a root
 * is on S3. A plain path is the POSIX env; "s3://BUCKET/PREFIX" is a new S3
 * env configured from the AWS_* environment variables first and the flags
 * after (flags win).
 *
 * Thread-safety: none needed (used while parsing flags, before threads). */
#ifndef MICA_COMMON_S3_DATA_ROOT_H
#define MICA_COMMON_S3_DATA_ROOT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/env.h"

/* The storage flags, as shown by --help (each line starts with two spaces
 * and ends with a newline). */
extern const char data_root_usage[];

/* The flags themselves ("--s3-endpoint", ..., "--cache-dir",
 * "--cache-size"), NULL-terminated. */
extern const char *const data_root_flag_names[];

/* True if `flag` (with its leading "--") is one of them. */
bool data_root_is_flag(const char *flag);

/* Storage flags as given, in order. Zero-initialize. Names are the
 * static data_root_flag_names entries; values are borrowed (argv). */
typedef struct data_root_flags {
  const char *names[32];
  const char *values[32];
  size_t n;
} data_root_flags;

/* Records one flag; INVALID_ARGUMENT for a flag not in the list or when
 * more than fit (32). */
mica_err *data_root_flags_add(data_root_flags *f, const char *flag,
                              const char *value);

/* The env for `data_dir`: env_posix() for a plain path, else a new S3 env
 * (*is_s3 true). INVALID_ARGUMENT names the flag or variable with a bad
 * value, a malformed s3:// path, or storage flags given with a POSIX
 * root. Caller closes with data_root_close(). */
mica_err *data_root_open(const char *data_dir, const data_root_flags *f,
                         env **out, bool *is_s3);
/* The env for a path outside the data root that a request names (an
 * export's destination, a restore's source: docs/storage.md, "Export and
 * restore"), chosen by that path and not by the root: a plain path is
 * env_posix(); an s3://BUCKET/PREFIX path is `root_env` when the root
 * (`root`) is on S3 as well (same service, credentials and flags), else a
 * new S3 env configured from the AWS_* environment variables alone (*owned
 * true: free it with data_root_close(*out, true)). `what` names the
 * argument in errors ("dest"). INVALID_ARGUMENT for an empty or relative
 * path (relative to what: the server's working directory is nobody's
 * business), a malformed s3:// path, or an s3:// path on a server whose
 * root is not on S3 and whose environment has no S3 credentials. */
mica_err *data_root_open_other(const char *what, const char *path,
                               const char *root, env *root_env, env **out,
                               bool *owned);

/* Frees an env data_root_open made (nothing for the POSIX env). Accepts
 * NULL. */
void data_root_close(env *e, bool is_s3);

#endif
