// A raw disk image file opened for the block device: size, read-only state and the O_DIRECT
// capability of the file system it lives on.
//
// Two descriptors are kept: one opened with O_DIRECT (when the file system allows it, and with
// the alignment it demands) for aligned requests, and a buffered one for everything else, so that
// the guest's unaligned buffers never make a request fail.
#pragma once

#include <cstdint>
#include <string>

#include "kvm/Result.h"
#include "kvm/UniqueFd.h"

namespace ember::devices {

class BlockFile {
 public:
  static Result<BlockFile> open(const std::string& path, bool read_only);

  const std::string& path() const { return path_; }
  bool readOnly() const { return read_only_; }
  uint64_t sizeBytes() const { return size_; }
  int bufferedFd() const { return buffered_.get(); }
  // -1 when O_DIRECT is not available.
  int directFd() const { return direct_.valid() ? direct_.get() : -1; }
  // Required alignment of buffer addresses, offsets and lengths for directFd().
  uint32_t directAlignment() const { return direct_alignment_; }
  // fdatasync(2) of the image.
  Result<void> sync() const;

 private:
  std::string path_;
  bool read_only_ = false;
  uint64_t size_ = 0;
  UniqueFd buffered_;
  UniqueFd direct_;
  uint32_t direct_alignment_ = 0;
};

}  // namespace ember::devices
