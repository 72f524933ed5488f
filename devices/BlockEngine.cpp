// Choosing an engine by kind.
#include "devices/BlockEngine.h"

#include "devices/AioEngine.h"
#include "devices/SyncEngine.h"
#include "devices/UringEngine.h"

namespace ember::devices {

const char* blockEngineName(BlockEngineKind kind) {
  switch (kind) {
    case BlockEngineKind::LibAio:
      return "libaio";
    case BlockEngineKind::IoUring:
      return "io_uring";
    case BlockEngineKind::Sync:
      return "sync";
  }
  return "?";
}

Result<std::unique_ptr<BlockEngine>> createBlockEngine(BlockEngineKind kind, unsigned depth,
                                                       unsigned ring_entries) {
  switch (kind) {
    case BlockEngineKind::LibAio:
      return std::unique_ptr<BlockEngine>(EMBER_TRY(AioEngine::create(depth, ring_entries)));
    case BlockEngineKind::IoUring:
      return std::unique_ptr<BlockEngine>(EMBER_TRY(UringEngine::create(depth, ring_entries)));
    case BlockEngineKind::Sync:
      return std::unique_ptr<BlockEngine>(EMBER_TRY(SyncEngine::create(depth)));
  }
  return makeError(Errc::InvalidArgument, "unknown disk I/O engine");
}

}  // namespace ember::devices
