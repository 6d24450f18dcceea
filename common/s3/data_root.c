/* data_root: --data-dir and the storage flags (data_root.h). */
#include "common/s3/data_root.h"

#include <stdlib.h>
#include <string.h>

#include "common/s3/env_s3.h"

const char data_root_usage[] =
    "  --s3-endpoint URL        S3 service for an s3://BUCKET/PREFIX data\n"
    "                           root (default $AWS_ENDPOINT_URL_S3, then\n"
    "                           $AWS_ENDPOINT_URL, else AWS for the region)\n"
    "  --s3-region NAME         signing region (default $AWS_REGION, then\n"
    "                           $AWS_DEFAULT_REGION, else us-east-1)\n"
    "  --s3-access-key ID, --s3-secret-key KEY, --s3-session-token TOKEN\n"
    "                           credentials (default $AWS_ACCESS_KEY_ID,\n"
    "                           $AWS_SECRET_ACCESS_KEY, $AWS_SESSION_TOKEN;\n"
    "                           prefer the environment: ps shows flags)\n"
    "  --s3-addressing path|virtual  bucket in the path or in the host name\n"
    "                           (default virtual on AWS, path with an endpoint)\n"
    "  --s3-deadline-ms MS      one storage operation, retries included\n"
    "                           (default 30000)\n"
    "  --s3-attempt-timeout-ms MS  one request (default 10000)\n"
    "  --cache-dir DIR          local disk cache of S3 object data under the\n"
    "                           block cache (default none)\n"
    "  --cache-size SIZE        its budget (default 1G)\n";

const char *const data_root_flag_names[] = {
    "--s3-endpoint", "--s3-region", "--s3-access-key", "--s3-secret-key",
    "--s3-session-token", "--s3-addressing", "--s3-deadline-ms",
    "--s3-attempt-timeout-ms", "--cache-dir", "--cache-size", NULL};

bool data_root_is_flag(const char *flag) {
  for (size_t i = 0; data_root_flag_names[i] != NULL; i++)
    if (strcmp(flag, data_root_flag_names[i]) == 0) return true;
  return false;
}

mica_err *data_root_flags_add(data_root_flags *f, const char *flag,
                              const char *value) {
  const char *known = NULL;
  for (size_t i = 0; data_root_flag_names[i] != NULL; i++)
    if (strcmp(flag, data_root_flag_names[i]) == 0)
      known = data_root_flag_names[i];
  if (known == NULL)
    return err_new(MICA_INVALID_ARGUMENT, "%s is not a storage flag", flag);
  if (f->n == sizeof f->names / sizeof f->names[0])
    return err_new(MICA_INVALID_ARGUMENT, "%s: too many storage flags", flag);
  f->names[f->n] = known;
  f->values[f->n++] = value;
  return NULL;
}

mica_err *data_root_open(const char *data_dir, const data_root_flags *f,
                         env **out, bool *is_s3) {
  *out = NULL;
  *is_s3 = false;
  if (!env_s3_is_path(data_dir)) {
    if (f != NULL && f->n > 0)
      return err_new(MICA_INVALID_ARGUMENT,
                     "%s applies only to an s3://BUCKET/PREFIX --data-dir, "
                     "not to '%s'", f->names[0], data_dir);
    *out = env_posix();
    return NULL;
  }
  char *bucket = NULL, *key = NULL;
  mica_err *err = env_s3_parse(data_dir, &bucket, &key);
  free(bucket);
  free(key);
  if (err != NULL) return err_wrap(err, "--data-dir");
  s3_config c;
  err = s3_config_from_environ(&c);
  for (size_t i = 0; err == NULL && f != NULL && i < f->n; i++) {
    const char *name = f->names[i] + 2; /* "--s3-x" -> "x"; "--cache-x" */
    if (strncmp(name, "s3-", 3) == 0) name += 3;
    err = s3_config_set(&c, name, f->values[i]);
    if (err != NULL) err = err_wrap(err, "%s", f->names[i]);
  }
  if (err == NULL) err = env_s3_new(&c, out);
  s3_config_free(&c);
  if (err != NULL) return err;
  *is_s3 = true;
  return NULL;
}

mica_err *data_root_open_other(const char *what, const char *path,
                               const char *root, env *root_env, env **out,
                               bool *owned) {
  *out = NULL;
  *owned = false;
  if (path == NULL || path[0] == '\0')
    return err_new(MICA_INVALID_ARGUMENT, "%s: empty: name an absolute "
                   "directory or an s3://BUCKET/PREFIX", what);
  if (!env_s3_is_path(path)) {
    if (path[0] != '/')
      return err_new(MICA_INVALID_ARGUMENT, "%s '%s': not an absolute path "
                     "or an s3://BUCKET/PREFIX (a directory is named as the "
                     "server sees it, from /)", what, path);
    *out = env_posix();
    return NULL;
  }
  char *bucket = NULL, *key = NULL;
  mica_err *err = env_s3_parse(path, &bucket, &key);
  free(bucket);
  free(key);
  if (err != NULL) return err_wrap(err, "%s", what);
  if (root != NULL && env_s3_is_path(root)) {
    *out = root_env;
    return NULL;
  }
  s3_config c;
  err = s3_config_from_environ(&c);
  if (err == NULL && (c.access_key == NULL || c.access_key[0] == '\0' ||
                      c.secret_key == NULL || c.secret_key[0] == '\0'))
    err = err_new(MICA_INVALID_ARGUMENT, "this server's data root is not on "
                  "S3 and its environment has no S3 credentials "
                  "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), so it "
                  "cannot reach s3:// paths");
  if (err == NULL) err = env_s3_new(&c, out);
  s3_config_free(&c);
  if (err != NULL) return err_wrap(err, "%s '%s'", what, path);
  *owned = true;
  return NULL;
}

void data_root_close(env *e, bool is_s3) {
  if (is_s3) env_s3_free(e);
}
