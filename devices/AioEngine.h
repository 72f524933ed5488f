// The libaio engine (`aio=libaio`): Linux native AIO, one io_context for one disk queue. Each tag
// owns one iocb; queued iocbs go to io_submit(2) in one batch, finished ones signal the engine's
// eventfd (IOCB_FLAG_RESFD) and are collected with io_getevents(2). A flush is an
// IOCB_CMD_FDSYNC, fdatasync(2) run by the kernel's AIO workqueue.
#pragma once

#include <libaio.h>

#include <memory>
#include <vector>

#include "devices/BlockEngine.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class AioEngine final : public BlockEngine {
 public:
  // `depth` tags; an io_context for `context_events` requests in flight (0: `depth`).
  static Result<std::unique_ptr<AioEngine>> create(unsigned depth, unsigned context_events = 0);
  ~AioEngine() override;

  BlockEngineKind kind() const override { return BlockEngineKind::LibAio; }
  int eventFd() const override { return event_->fd(); }
  void enqueue(const BlockEngineRequest& request) override;
  void submit() override;
  void reap(std::vector<BlockCompletion>& out) override;
  void drain() override;

 private:
  explicit AioEngine(unsigned depth) : cbs_(depth) {}
  void refuseFront(int err);

  io_context_t ctx_ = nullptr;
  std::unique_ptr<EventFd> event_;
  std::vector<iocb> cbs_;                 // one per tag
  std::vector<iocb*> queued_;             // prepared, not yet accepted by io_submit
  std::vector<BlockCompletion> refused_;  // requests io_submit refused, reported by reap()
  size_t in_flight_ = 0;                  // accepted by the kernel, not yet collected
};

}  // namespace ember::devices
