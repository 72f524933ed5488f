// The deterministic disk pattern shared by the test guest and the host tests: the byte at disk
// offset `offset` (in bytes from the start of the disk, not from the tested region) written by a
// run with seed `seed` is pattern_byte(seed, offset). Little-endian 8-byte words, 64 per 512-byte
// sector: word 0 of sector s is a tag unique to (seed, s) — a bijection of s, so no two sectors
// of a disk are alike and a sector written to the wrong place is caught — and words 1-63 are the
// seed's 63 distinct body words rotated by s mod 63, so a word moved within a sector is caught
// too. The body makes the guest's fill a copy (`rep movsq`) per sector instead of arithmetic per
// word: guest kernel code is instruction-emulated on the project's machines, where a string
// instruction costs a fraction of a loop. Pure, header-only and free of any library, so host
// C++ can include it unchanged (pattern_fill assumes a little-endian machine).
#pragma once

#include <stdint.h>

namespace pattern_detail {
constexpr uint64_t kSeedMul = 0x9e3779b97f4a7c15ULL, kStep = 0xbf58476d1ce4e5b9ULL;
constexpr uint64_t kSectorWords = 64, kBodyWords = 63;

inline uint64_t tag(uint64_t seed, uint64_t sector) {
  return (sector + seed * kSeedMul) * kStep;
}

// Body word j (0-62) of `seed`: a bijective mix of a value distinct for each j.
inline uint64_t body(uint64_t seed, uint64_t j) {
  uint64_t x = ((j + 1) * kStep) ^ (seed * kSeedMul);
  x ^= x >> 31;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 29);
}
}  // namespace pattern_detail

// The value of the aligned word holding disk bytes [8 * index, 8 * index + 8).
inline uint64_t pattern_qword(uint64_t seed, uint64_t index) {
  using namespace pattern_detail;
  uint64_t sector = index / kSectorWords, w = index % kSectorWords;
  if (w == 0) return tag(seed, sector);
  return body(seed, (w - 1 + sector) % kBodyWords);
}

inline uint8_t pattern_byte(uint64_t seed, uint64_t offset) {
  return static_cast<uint8_t>(pattern_qword(seed, offset >> 3) >> ((offset & 7) * 8));
}

// Fills `len` bytes at `buf` with the pattern of disk bytes [offset, offset + len); offset and
// len are multiples of 8, buf is 8-byte aligned.
inline void pattern_fill(uint64_t seed, uint64_t offset, void* buf, uint64_t len) {
  using namespace pattern_detail;
  uint64_t table[2 * kBodyWords];  // the body twice, so every rotation is one contiguous run
  for (uint64_t j = 0; j < 2 * kBodyWords; ++j) table[j] = body(seed, j % kBodyWords);
  uint64_t* w = static_cast<uint64_t*>(buf);
  uint64_t index = offset / 8, n = len / 8;
  while (n != 0) {
    uint64_t sector = index / kSectorWords, in_sector = index % kSectorWords;
    if (in_sector == 0) {
      *w++ = tag(seed, sector);
      ++index;
      --n;
      continue;
    }
    uint64_t count = kSectorWords - in_sector < n ? kSectorWords - in_sector : n;
    __builtin_memcpy(w, &table[(in_sector - 1 + sector) % kBodyWords], count * 8);
    w += count;
    index += count;
    n -= count;
  }
}

// The index of the first byte of `buf` that differs from the pattern of disk bytes
// [offset, offset + len), or len when all match (same alignment rules as pattern_fill).
inline uint64_t pattern_mismatch(uint64_t seed, uint64_t offset, const void* buf, uint64_t len) {
  const uint8_t* b = static_cast<const uint8_t*>(buf);
  for (uint64_t i = 0; i < len; ++i) {
    if (b[i] != pattern_byte(seed, offset + i)) return i;
  }
  return len;
}
