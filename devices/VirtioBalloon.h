// virtio-balloon (virtio 1.2, 5.5): the host sets a target (num_pages); the guest inflates by
// handing page frame numbers over the inflate queue, which Ember gives back to the host kernel
// (MADV_DONTNEED on the backing memory), and deflates over the deflate queue (nothing to do: the
// pages fault back in on use). The statistics queue is read when the guest offers it.
//
// Every PFN is checked against RAM before anything is released; repeated and out-of-range PFNs
// are counted and skipped (hostile-guest case 35), and one buffer is processed in bounded steps.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "virtio/VirtioDevice.h"

namespace ember::devices {

struct BalloonStats {
  uint64_t inflated_pages = 0;               // pages released to the host so far (net of deflates)
  uint64_t invalid_pfns = 0;                 // outside RAM
  uint64_t repeated_pfns = 0;                // already in the balloon
  std::map<uint16_t, uint64_t> guest_stats;  // the guest's last statistics (5.5.6.3 tags)
};

class VirtioBalloon : public virtio::VirtioDevice {
 public:
  static constexpr uint16_t kInflateQueue = 0, kDeflateQueue = 1, kStatsQueue = 2;
  static constexpr uint32_t kPageSize = 4096;

  // DEFLATE_ON_OOM: VIRTIO_BALLOON_F_DEFLATE_ON_OOM offered (5.5.3: the driver may deflate when
  // the guest runs out of memory; Firecracker's deflate_on_oom).
  explicit VirtioBalloon(uint64_t target_bytes, bool deflate_on_oom = false);

  std::string name() const override { return "virtio-balloon"; }
  uint16_t deviceType() const override;
  uint64_t features() const override;
  uint16_t queueCount() const override { return 3; }
  uint32_t configSize() const override { return 8; }
  void readConfig(uint32_t offset, std::span<uint8_t> data) override;
  void writeConfig(uint32_t offset, std::span<const uint8_t> data) override;

  Result<void> activate(virtio::Activation activation) override;
  void notify(uint16_t queue) override;
  virtio::QueueSet reset() override;
  // A snapshot: the target and `actual`, which pages are in the balloon (one bitmap per RAM
  // region), its counts and the guest's last statistics. A statistics buffer the device holds
  // goes back to the ring (its queue saved a position earlier) and is taken again after the
  // restore.
  Result<virtio::QueuePositions> saveState(StateWriter& w) override;
  void loadState(StateReader& r) override;

  // A new target (pages); raises a configuration-change interrupt.
  void setTargetBytes(uint64_t bytes);
  uint32_t targetPages() const { return target_pages_.load(); }
  uint32_t actualPages() const { return actual_.load(); }
  bool deflateOnOom() const { return deflate_on_oom_; }
  // Asks the guest for fresh statistics by returning the buffer it posted (5.5.6.3).
  void requestStats();
  BalloonStats stats() const;
  // requests: inflate, deflate and statistics buffers processed; bytes: their bytes read;
  // errors: PFNs outside RAM; dropped: PFNs already in the balloon (skipped).
  virtio::DeviceCounters counters() const override;

 private:
  void processPfnsLocked(uint16_t queue, bool inflate);
  void processStatsLocked();

  const bool deflate_on_oom_;
  mutable std::mutex mutex_;
  std::optional<virtio::Activation> act_;
  std::atomic<uint32_t> target_pages_;
  std::atomic<uint32_t> actual_{0};
  // One bit per page of RAM, per region: whether the page is in the balloon. Sized by RAM, not
  // by what the guest sends, so the guest cannot make the host allocate. testAndSet sets page
  // `pfn`'s bit to `value` and returns its old value, or nothing when `pfn` is not a page of RAM.
  std::optional<bool> testAndSet(uint64_t pfn, bool value);
  std::vector<std::vector<uint64_t>> bitmaps_;
  std::optional<uint16_t> stats_head_;  // the guest's statistics buffer, held until wanted
  BalloonStats stats_;
  uint64_t buffers_ = 0, buffer_bytes_ = 0;
};

}  // namespace ember::devices
