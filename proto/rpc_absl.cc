// rpc_absl: the one setting of Abseil, the library under the gRPC C core,
// that the RPC module changes: its Mutex deadlock detector (see rpc_absl.h).
// C++ only because Abseil's setting is a C++ function; nothing else of the
// module is C++.
#include <absl/synchronization/mutex.h>

#include "proto/rpc_absl.h"

extern "C" void rpc_absl_tune(void) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
