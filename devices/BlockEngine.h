// The interface of a virtio-blk I/O engine (`--disk ...,aio=libaio|io_uring|sync`, QEMU's
// names): vectored reads and writes and data syncs on a file descriptor, handed to the kernel in
// batches, with completions signalled on an eventfd the event loop serves.
//
// Requests are named by a tag in [0, depth) chosen by the caller, unique among its outstanding
// requests; the iovecs a request points at (and the memory behind them) must stay valid until its
// completion has been reaped or drain() has returned. An engine never loses a request: what the
// kernel cannot take yet waits in the engine and goes at the next submit(), and a request the
// kernel refuses comes back as a completion with -errno.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kvm/Result.h"

namespace ember::devices {

enum class BlockEngineKind { LibAio, IoUring, Sync };

// "libaio", "io_uring", "sync" (QEMU's -drive aio= values).
const char* blockEngineName(BlockEngineKind kind);

enum class BlockOp : uint8_t { Read, Write, Flush };

struct BlockEngineRequest {
  uint32_t tag = 0;
  BlockOp op = BlockOp::Read;
  int fd = -1;
  std::span<const iovec> iov;  // empty for Flush
  uint64_t offset = 0;
};

struct BlockCompletion {
  uint32_t tag;
  int64_t result;  // bytes transferred (0 for a flush), or -errno
};

class BlockEngine {
 public:
  virtual ~BlockEngine() = default;
  BlockEngine() = default;
  BlockEngine(const BlockEngine&) = delete;
  BlockEngine& operator=(const BlockEngine&) = delete;

  virtual BlockEngineKind kind() const = 0;
  // Readable when completions wait for reap().
  virtual int eventFd() const = 0;
  // Queues one request for the next submit().
  virtual void enqueue(const BlockEngineRequest& request) = 0;
  // Hands the queued requests to the kernel, as many as it takes now.
  virtual void submit() = 0;
  // Appends the finished requests to `out` without blocking, and clears the eventfd.
  virtual void reap(std::vector<BlockCompletion>& out) = 0;
  // Forgets the queued requests and waits for the submitted ones, discarding every result: when
  // it returns, the kernel no longer touches any request's memory (reset, shutdown).
  virtual void drain() = 0;
};

// The engine of `kind` for up to `depth` outstanding requests. An io_uring that cannot be set up
// fails with one line naming the fix.
// `ring_entries` sizes the io_uring ring or the libaio context (0: `depth`); sync ignores it.
Result<std::unique_ptr<BlockEngine>> createBlockEngine(BlockEngineKind kind, unsigned depth,
                                                       unsigned ring_entries = 0);

}  // namespace ember::devices
