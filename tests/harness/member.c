/* member: channels that prove cluster membership (contract in member.h). */
#include "tests/harness/member.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/auth.h"

mica_err *th_member_channel(const char *address, const char *data_root,
                            const rpc_tls *tls, rpc_channel **out) {
  *out = NULL;
  size_t n = strlen(data_root) + sizeof RPC_SECRET_FILE + 2;
  char *path = xmalloc(n);
  snprintf(path, n, "%s/%s", data_root, RPC_SECRET_FILE);
  rpc_secret sec;
  mica_err *err = rpc_secret_read(path, &sec);
  free(path);
  if (err) return err;
  rpc_channel_opts o = {.member = &sec, .tls = tls};
  return rpc_channel_new(address, &o, out);
}
