// The synchronous engine (`aio=sync`): every request runs with preadv(2), pwritev(2) or
// fdatasync(2) in submit(), on the thread that serves the queue (the event-loop thread, or the
// vCPU thread with ioeventfd=off), and its completion is signalled on the eventfd like the
// asynchronous engines'. Simple and slow: a reference for the others and for debugging.
#pragma once

#include <memory>
#include <vector>

#include "devices/BlockEngine.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class SyncEngine final : public BlockEngine {
 public:
  static Result<std::unique_ptr<SyncEngine>> create(unsigned depth);

  BlockEngineKind kind() const override { return BlockEngineKind::Sync; }
  int eventFd() const override { return event_->fd(); }
  void enqueue(const BlockEngineRequest& request) override;
  void submit() override;
  void reap(std::vector<BlockCompletion>& out) override;
  void drain() override;

 private:
  SyncEngine() = default;

  std::unique_ptr<EventFd> event_;
  std::vector<BlockEngineRequest> queued_;
  std::vector<BlockCompletion> done_;
};

}  // namespace ember::devices
