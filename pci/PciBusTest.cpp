// PciBus: configuration mechanism #1 and ECAM (every access size, absent functions), BAR mapping
// on the port and MMIO buses (relocation, decode, overlap refusal, bounded accesses), 0xcf9 reset.
// test-labels: threaded
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "kvm/LittleEndian.h"
#include "kvm/Log.h"
#include "pci/PciBus.h"
#include "pci/testing/PciTestSupport.h"

namespace ember::pci {
namespace {

using testing::RecordingRegion;

constexpr uint64_t kRamEnd = 2ULL << 30;  // RAM is [0, 2 GiB)
constexpr uint64_t kEcamBase = 0xb0000000, kEcamSize = 256ULL << 20;
constexpr uint16_t kPorts = 0xcf8;

const PciIds kIds{0x1af4, 0x1001, 0x1af4, 2, 0, 0x010000};

// A device with an I/O BAR0 (0x40), a 32-bit memory BAR1 (0x1000) and a 64-bit BAR2 (0x4000),
// which records where the bus says its BARs are.
class BarDevice : public PciDevice {
 public:
  explicit BarDevice(std::string name = "bars") : PciDevice(std::move(name), kIds) {
    for (auto& r : regions) r = std::make_shared<RecordingRegion>();
    setBar(0, BarSpec{BarKind::Io, 0x40, false, regions[0]});
    setBar(1, BarSpec{BarKind::Memory32, 0x1000, false, regions[1]});
    setBar(2, BarSpec{BarKind::Memory64, 0x4000, false, regions[2]});
  }
  void barMoved(int index, std::optional<uint64_t> address) override {
    moves.emplace_back(index, address);
  }
  std::array<std::shared_ptr<RecordingRegion>, 3> regions;
  std::vector<std::pair<int, std::optional<uint64_t>>> moves;
};

struct Rig {
  Bus pio{"pio"};
  Bus mmio{"mmio"};
  PciBus pci{pio, mmio, [](uint64_t addr, uint64_t) { return addr < kRamEnd; }};
  std::shared_ptr<BarDevice> dev = std::make_shared<BarDevice>();
  int resets = 0;

  Rig() {
    EXPECT_TRUE(pio.insert(kPorts, 8, pci.configPorts()).ok());
    EXPECT_TRUE(mmio.insert(kEcamBase, kEcamSize, pci.ecam()).ok());
    auto slot = pci.addDevice(dev);
    EXPECT_TRUE(slot.ok());
    EXPECT_EQ(*slot, 1);
    pci.setResetHandler([this] { ++resets; });
  }

  // Raw port access; returns false when the bus did not dispatch it.
  bool portRead(uint16_t port, size_t size, uint32_t* out) {
    uint8_t b[4] = {0xde, 0xad, 0xbe, 0xef};
    bool ok = pio.read(port, std::span<uint8_t>(b, size));
    *out = loadLe<uint32_t>(std::span(b, size));
    return ok;
  }
  bool portWrite(uint16_t port, size_t size, uint32_t v) {
    uint8_t b[4];
    storeLe(std::span(b), v);
    return pio.write(port, std::span<const uint8_t>(b, size));
  }
  void setAddress(uint8_t device, uint8_t reg, bool enable = true, uint8_t bus = 0,
                  uint8_t function = 0) {
    uint32_t v = (enable ? 0x80000000u : 0) | (uint32_t{bus} << 16) | (uint32_t{device} << 11) |
                 (uint32_t{function} << 8) | reg;
    EXPECT_TRUE(portWrite(kPorts, 4, v));
  }
  uint32_t cf8Read(uint8_t device, uint8_t reg, size_t size, uint8_t function = 0, uint8_t bus = 0,
                   bool enable = true) {
    setAddress(device, reg & 0xfc, enable, bus, function);
    uint32_t v = 0;
    EXPECT_TRUE(portRead(static_cast<uint16_t>(0xcfc + (reg & 3)), size, &v));
    return v;
  }
  void cf8Write(uint8_t device, uint8_t reg, size_t size, uint32_t value) {
    setAddress(device, reg & 0xfc);
    EXPECT_TRUE(portWrite(static_cast<uint16_t>(0xcfc + (reg & 3)), size, value));
  }
  uint64_t ecamOffset(uint8_t bus, uint8_t device, uint8_t function, uint16_t reg) {
    return (uint64_t{bus} << 20) | (uint64_t{device} << 15) | (uint64_t{function} << 12) | reg;
  }
  uint64_t ecamRead(uint64_t offset, size_t size) {
    std::vector<uint8_t> b(size, 0x5a);
    EXPECT_TRUE(mmio.read(kEcamBase + offset, b));
    return loadLe<uint64_t>(b);
  }
  void ecamWrite(uint64_t offset, size_t size, uint64_t value) {
    std::vector<uint8_t> b(size);
    storeLe(std::span(b), value);
    EXPECT_TRUE(mmio.write(kEcamBase + offset, b));
  }
  // Whether an access of `size` at `addr` reaches a device.
  bool mmioHits(uint64_t addr, size_t size = 4) {
    std::vector<uint8_t> b(size);
    return mmio.read(addr, b);
  }
  bool pioHits(uint64_t addr, size_t size = 1) {
    std::vector<uint8_t> b(size);
    return pio.read(addr, b);
  }
};

// ---- address decode ----

TEST(PciBus, ConfigAddressDecodesEveryField) {
  // Enable, bus 0xa5, device 0x1b, function 5, dword register 0xe8.
  constexpr uint32_t kAddress = 0x80000000u | (0xa5u << 16) | (0x1bu << 11) | (5u << 8) | 0xe8;
  EXPECT_EQ(decodeConfigAddress(kAddress, 0), (ConfigTarget{0xa5, 0x1b, 5, 0xe8}));
  // CONFIG_DATA byte k reaches register + k; bits 1:0 of the address select nothing.
  EXPECT_EQ(decodeConfigAddress(kAddress, 3), (ConfigTarget{0xa5, 0x1b, 5, 0xeb}));
  EXPECT_EQ(decodeConfigAddress(kAddress | 0x3, 1), (ConfigTarget{0xa5, 0x1b, 5, 0xe9}));
  // Reserved bits 30:24 are ignored.
  EXPECT_EQ(decodeConfigAddress(kAddress | 0x7f000000, 0), (ConfigTarget{0xa5, 0x1b, 5, 0xe8}));
  // Every field at its widest and at zero.
  EXPECT_EQ(decodeConfigAddress(0xffffffff, 3), (ConfigTarget{0xff, 31, 7, 0xff}));
  EXPECT_EQ(decodeConfigAddress(0x80000000, 0), (ConfigTarget{0, 0, 0, 0}));
  // Without the enable bit CONFIG_DATA decodes nothing.
  EXPECT_FALSE(decodeConfigAddress(kAddress & ~0x80000000u, 0).has_value());
  EXPECT_FALSE(decodeConfigAddress(0x7fffffff, 0).has_value());
}

TEST(PciBus, EcamOffsetDecodesEveryField) {
  EXPECT_EQ(decodeEcamOffset((0xa5ULL << 20) | (0x1bULL << 15) | (5ULL << 12) | 0x9ab),
            (ConfigTarget{0xa5, 0x1b, 5, 0x9ab}));
  EXPECT_EQ(decodeEcamOffset(0), (ConfigTarget{0, 0, 0, 0}));
  EXPECT_EQ(decodeEcamOffset(kEcamSize - 1), (ConfigTarget{0xff, 31, 7, 0xfff}));
}

// ---- mechanism #1 ----

TEST(PciBus, Mechanism1ReadsIdentityOfHostBridgeAndDevice) {
  Rig r;
  EXPECT_EQ(r.cf8Read(0, 0, 4), 0x00081b36u);  // the host bridge at 00:00.0
  EXPECT_EQ(r.cf8Read(0, cfg::kRevision, 4) >> 8, 0x060000u);
  EXPECT_EQ(r.cf8Read(1, 0, 4), 0x10011af4u);
  EXPECT_EQ(r.cf8Read(1, 0, 2), 0x1af4u);
  EXPECT_EQ(r.cf8Read(1, 2, 2), 0x1001u);
  EXPECT_EQ(r.cf8Read(1, 3, 1), 0x10u);
}

TEST(PciBus, ConfigAddressRegisterOnlyDecodesDwords) {
  Rig r;
  EXPECT_TRUE(r.portWrite(kPorts, 4, 0xffffffff));
  uint32_t v = 0;
  EXPECT_TRUE(r.portRead(kPorts, 4, &v));
  EXPECT_EQ(v, 0x80fffffcu);  // reserved bits read as zero
  r.setAddress(1, 0);
  EXPECT_TRUE(r.portWrite(kPorts, 1, 0x55));  // byte writes to 0xcf8 do not change the address
  EXPECT_TRUE(r.portWrite(kPorts + 2, 2, 0x5555));
  EXPECT_TRUE(r.portRead(kPorts, 4, &v));
  EXPECT_EQ(v, 0x80000800u);
  EXPECT_TRUE(r.portRead(kPorts, 1, &v));  // and byte/word reads are not the address register
  EXPECT_EQ(v, 0xffu);
  EXPECT_TRUE(r.portRead(kPorts + 2, 2, &v));
  EXPECT_EQ(v, 0xffffu);
}

TEST(Hostile, Case21_Mechanism1EveryAccessSizeAndOffset) {
  Rig r;
  r.dev->setCommand(0x0006);
  for (uint8_t reg = 0; reg < 16; reg += 4) {
    for (size_t size : {1u, 2u, 4u}) {
      for (uint16_t port = 0xcfc; port < 0xd00; ++port) {
        r.setAddress(1, reg);
        uint32_t v = 0;
        bool dispatched = r.portRead(port, size, &v);
        if (port + size > 0xd00) {
          EXPECT_FALSE(dispatched) << "access past 0xcff at " << std::hex << port;
          continue;
        }
        ASSERT_TRUE(dispatched);
        // CONFIG_DATA + k reaches register (address & 0xfc) + k, unaligned offsets included.
        uint16_t off = static_cast<uint16_t>(reg + (port - 0xcfc));
        EXPECT_EQ(v, r.dev->PciDevice::configRead(off, static_cast<uint8_t>(size)))
            << "reg " << int(reg) << " port " << std::hex << port << " size " << size;
      }
    }
  }
  // Unaligned word write at 0xcfd (register 5..6: command high byte and status low byte).
  r.setAddress(1, cfg::kCommand);
  EXPECT_TRUE(r.portWrite(0xcfd, 2, 0x0004));  // INTx disable lives in command bit 10
  EXPECT_EQ(r.dev->command(), 0x0406);
}

TEST(Hostile, Case21_Mechanism1EnableBitClearReadsOnesWritesIgnored) {
  Rig r;
  EXPECT_EQ(r.cf8Read(1, 0, 4, 0, 0, /*enable=*/false), 0xffffffffu);
  EXPECT_EQ(r.cf8Read(1, 0, 2, 0, 0, false), 0xffffu);
  EXPECT_EQ(r.cf8Read(1, 0, 1, 0, 0, false), 0xffu);
  r.setAddress(1, cfg::kCommand, /*enable=*/false);
  EXPECT_TRUE(r.portWrite(0xcfc, 2, cfg::kCommandMemory));
  EXPECT_EQ(r.dev->command(), 0);
}

TEST(Hostile, Case21_AbsentBusDeviceFunctionReadAllOnes) {
  Rig r;
  for (size_t size : {1u, 2u, 4u}) {
    uint32_t ones = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    EXPECT_EQ(r.cf8Read(7, 0, size), ones) << "absent device";
    EXPECT_EQ(r.cf8Read(31, 0, size), ones) << "absent device 31";
    EXPECT_EQ(r.cf8Read(1, 0, size, /*function=*/3), ones) << "absent function";
    EXPECT_EQ(r.cf8Read(0, 0, size, 1), ones) << "absent host bridge function";
    EXPECT_EQ(r.cf8Read(1, 0, size, 0, /*bus=*/1), ones) << "absent bus";
    EXPECT_EQ(r.cf8Read(1, 0, size, 0, 255), ones) << "absent bus 255";
  }
  // Writes to absent functions go nowhere (and do not reach the device in slot 1).
  r.setAddress(1, cfg::kCommand, true, 0, 5);
  EXPECT_TRUE(r.portWrite(0xcfc, 2, 0x7));
  r.setAddress(1, cfg::kCommand, true, 2, 0);
  EXPECT_TRUE(r.portWrite(0xcfc, 2, 0x7));
  EXPECT_EQ(r.dev->command(), 0);
}

TEST(Hostile, Case21_RandomAccessesOnConfigPortsAndEcam) {
  Rig r;
  std::mt19937_64 rng(21);
  for (int i = 0; i < 20000; ++i) {
    size_t size = size_t{1} << (rng() % 3);
    uint16_t port = static_cast<uint16_t>(kPorts + rng() % 8);
    uint32_t value = static_cast<uint32_t>(rng());
    if (rng() % 2) {
      uint32_t v = 0;
      (void)r.portRead(port, size, &v);
    } else {
      (void)r.portWrite(port, size, value);
    }
    size_t esize = size_t{1} << (rng() % 4);
    uint64_t off = rng() % kEcamSize;
    std::vector<uint8_t> b(esize, 0);
    if (rng() % 2) {
      (void)r.mmio.read(kEcamBase + off, b);
    } else {
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      (void)r.mmio.write(kEcamBase + off, b);
    }
  }
  // The identity registers are untouched and the bus still answers.
  EXPECT_EQ(r.cf8Read(1, 0, 4), 0x10011af4u);
  EXPECT_EQ(r.cf8Read(0, 0, 4), 0x00081b36u);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0), 4), 0x10011af4u);
}

TEST(Hostile, Case21_ConcurrentConfigAccessesFromSeveralVcpus) {
  // vCPUs exit and dispatch in parallel: one guest CPU rewrites the command register and a BAR
  // through ECAM while another reads config space. Under TSan this must be free of data races.
  Rig r;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      r.ecamWrite(r.ecamOffset(0, 1, 0, cfg::kCommand), 2, i % 2 ? cfg::kCommandMemory : 0);
      r.ecamWrite(r.ecamOffset(0, 1, 0, cfg::kBar0 + 4), 4, 0xfe000000u + 0x1000u * (i % 4));
    }
    stop = true;
  });
  // At least one round of reads, even when the writer is done before this thread gets a core.
  do {
    EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0), 4), 0x10011af4u);
    (void)r.ecamRead(r.ecamOffset(0, 1, 0, cfg::kCommand), 4);
    (void)r.ecamRead(r.ecamOffset(0, 1, 0, cfg::kBar0 + 4), 4);
  } while (!stop);
  writer.join();
}

// ---- ECAM ----

TEST(Hostile, Case21_EcamSizesAbsentFunctionsAndExtendedSpace) {
  Rig r;
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0), 4), 0x10011af4u);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 2), 2), 0x1001u);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 1), 2), 0x011au);  // unaligned word
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 3), 1), 0x10u);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0), 8), ~0ULL);           // qwords are not decoded
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0xfe), 4), 0xffffffffu);  // runs past 256
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0x100), 4), 0u);          // no extended capabilities
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0xffc), 4), 0u);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 9, 0, 0), 4), 0xffffffffu);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 9, 0, 0x100), 2), 0xffffu);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 7, 0), 1), 0xffu);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(5, 1, 0, 0), 4), 0xffffffffu);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(255, 31, 7, 0xffc), 4), 0xffffffffu);
  // Writes: dword command write lands; qword and extended-space writes are ignored.
  r.ecamWrite(r.ecamOffset(0, 1, 0, cfg::kCommand), 8, 0x7);
  EXPECT_EQ(r.dev->command(), 0);
  r.ecamWrite(r.ecamOffset(0, 1, 0, 0x104), 4, 0xffffffff);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0x104), 4), 0u);
  r.ecamWrite(r.ecamOffset(0, 1, 0, cfg::kCommand), 2, cfg::kCommandIo);
  EXPECT_EQ(r.dev->command(), cfg::kCommandIo);
  // The host bridge ignores writes.
  r.ecamWrite(r.ecamOffset(0, 0, 0, cfg::kCommand), 2, 0x7);
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 0, 0, cfg::kCommand), 2), 0u);
}

// ---- BAR mapping ----

TEST(PciBus, BarRelocationMovesTheMapping) {
  Rig r;
  EXPECT_FALSE(r.pioHits(0xc000));
  r.cf8Write(1, cfg::kBar0, 4, 0xc000);
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0xfebf0000);
  EXPECT_FALSE(r.pioHits(0xc000)) << "decode is off";
  r.cf8Write(1, cfg::kCommand, 2, cfg::kCommandIo | cfg::kCommandMemory);
  EXPECT_TRUE(r.pioHits(0xc000 + 4));
  EXPECT_TRUE(r.mmioHits(0xfebf0000 + 0x10));
  ASSERT_FALSE(r.dev->regions[0]->accesses().empty());
  EXPECT_EQ(r.dev->regions[0]->accesses().back().offset, 4u);  // the offset, not the address
  EXPECT_EQ(r.dev->regions[1]->accesses().back().offset, 0x10u);

  r.dev->moves.clear();
  r.cf8Write(1, cfg::kBar0, 4, 0xc100);
  EXPECT_FALSE(r.pioHits(0xc000));
  EXPECT_TRUE(r.pioHits(0xc100));
  ASSERT_EQ(r.dev->moves.size(), 2u);
  EXPECT_EQ(r.dev->moves[0], std::make_pair(0, std::optional<uint64_t>()));
  EXPECT_EQ(r.dev->moves[1], std::make_pair(0, std::optional<uint64_t>(0xc100)));

  // 64-bit BAR: both halves.
  r.cf8Write(1, cfg::kBar0 + 8, 4, 0xfe000000);
  r.cf8Write(1, cfg::kBar0 + 12, 4, 0x80);
  EXPECT_TRUE(r.mmioHits(0x80fe000000ULL));
  EXPECT_FALSE(r.mmioHits(0xfe000000ULL));
  EXPECT_EQ(r.dev->barAddress(2), 0x80fe000000ULL);
  r.cf8Write(1, cfg::kBar0 + 12, 4, 0x0);
  EXPECT_TRUE(r.mmioHits(0xfe000000ULL));
  EXPECT_FALSE(r.mmioHits(0x80fe000000ULL));
}

TEST(PciBus, DecodeDisabledUnmaps) {
  Rig r;
  r.cf8Write(1, cfg::kBar0, 4, 0xc000);
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0xfebf0000);
  r.cf8Write(1, cfg::kCommand, 2, cfg::kCommandIo | cfg::kCommandMemory);
  ASSERT_TRUE(r.pioHits(0xc000));
  ASSERT_TRUE(r.mmioHits(0xfebf0000));
  r.dev->moves.clear();
  r.cf8Write(1, cfg::kCommand, 2, cfg::kCommandIo);
  EXPECT_TRUE(r.pioHits(0xc000));
  EXPECT_FALSE(r.mmioHits(0xfebf0000));
  ASSERT_EQ(r.dev->moves.size(), 1u);
  EXPECT_EQ(r.dev->moves[0], std::make_pair(1, std::optional<uint64_t>()));
  r.cf8Write(1, cfg::kCommand, 2, 0);
  EXPECT_FALSE(r.pioHits(0xc000));
  // Moving a BAR while decoding is off maps it at the new place once decoding is back.
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0xfeb00000);
  r.cf8Write(1, cfg::kCommand, 2, cfg::kCommandMemory);
  EXPECT_TRUE(r.mmioHits(0xfeb00000));
  EXPECT_FALSE(r.mmioHits(0xfebf0000));
}

TEST(Hostile, Case23_BarMovedOntoRamIsRefusedUntilMovedAway) {
  Rig r;
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0xfebf0000);
  r.cf8Write(1, cfg::kCommand, 2, cfg::kCommandMemory);
  ASSERT_TRUE(r.mmioHits(0xfebf0000));
  log::ScopedLogCapture logs;
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0x10000000);  // inside RAM
  EXPECT_FALSE(r.mmioHits(0x10000000));
  EXPECT_FALSE(r.mmioHits(0xfebf0000)) << "a stale mapping stayed at the old address";
  EXPECT_EQ(r.cf8Read(1, cfg::kBar0 + 4, 4), 0x10000000u);
  EXPECT_TRUE(logs.contains("overlaps RAM")) << ::testing::PrintToString(logs.lines());
  EXPECT_TRUE(logs.contains("pci bars: BAR 1"));
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0xfea00000);
  EXPECT_TRUE(r.mmioHits(0xfea00000));
}

TEST(Hostile, Case23_BarMovedOntoAnotherBarIsRefusedAndMappedOnceFree) {
  Rig r;
  auto other = std::make_shared<BarDevice>("other");
  ASSERT_EQ(*r.pci.addDevice(other), 2);
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0xfebf0000);
  r.cf8Write(1, cfg::kCommand, 2, cfg::kCommandMemory | cfg::kCommandIo);
  r.cf8Write(2, cfg::kBar0 + 4, 4, 0xfeb00000);
  r.cf8Write(2, cfg::kCommand, 2, cfg::kCommandMemory | cfg::kCommandIo);
  ASSERT_TRUE(r.mmioHits(0xfeb00000));

  log::ScopedLogCapture logs;
  r.cf8Write(2, cfg::kBar0 + 4, 4, 0xfebf0800 /* inside device 1's BAR1 */);
  EXPECT_EQ(other->barAddress(1), 0xfebf0000u);  // size alignment drops the low bits
  other->regions[1]->clear();
  r.dev->regions[1]->clear();
  EXPECT_TRUE(r.mmioHits(0xfebf0000));
  EXPECT_EQ(r.dev->regions[1]->accesses().size(), 1u) << "device 1 must keep its BAR";
  EXPECT_TRUE(other->regions[1]->accesses().empty());
  EXPECT_FALSE(r.mmioHits(0xfeb00000));
  EXPECT_TRUE(logs.contains("pci other: BAR 1")) << ::testing::PrintToString(logs.lines());

  // Same device: the 64-bit BAR onto its own BAR1.
  r.cf8Write(1, cfg::kBar0 + 8, 4, 0xfebf0000);
  EXPECT_FALSE(r.dev->barAddress(2) == 0);
  r.dev->regions[1]->clear();
  r.dev->regions[2]->clear();
  EXPECT_TRUE(r.mmioHits(0xfebf0000));
  EXPECT_EQ(r.dev->regions[1]->accesses().size(), 1u);
  EXPECT_TRUE(r.dev->regions[2]->accesses().empty());
  r.cf8Write(1, cfg::kBar0 + 8, 4, 0xfd000000);
  EXPECT_TRUE(r.mmioHits(0xfd000000));

  // An I/O BAR onto the configuration ports.
  r.cf8Write(2, cfg::kBar0, 4, 0xcc0);
  EXPECT_EQ(r.cf8Read(1, 0, 4), 0x10011af4u) << "mechanism #1 must still answer";

  // Device 1's BAR1 moves away: device 2's BAR1 is now mapped where it asked to be.
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0xfe800000);
  other->regions[1]->clear();
  EXPECT_TRUE(r.mmioHits(0xfebf0000));
  EXPECT_EQ(other->regions[1]->accesses().size(), 1u);
  EXPECT_TRUE(r.mmioHits(0xfe800000));
}

TEST(Hostile, Case23_BarLeavingTheAddressSpaceIsRefused) {
  Rig r;
  r.cf8Write(1, cfg::kCommand, 2, cfg::kCommandMemory | cfg::kCommandIo);
  r.cf8Write(1, cfg::kBar0, 4, 0xffc0);  // ends exactly at 64 KiB: fine
  EXPECT_TRUE(r.pioHits(0xffc0));
  log::ScopedLogCapture logs;
  r.cf8Write(1, cfg::kBar0, 4, 0x1ffc0);  // beyond the 64 KiB port space
  EXPECT_FALSE(r.pioHits(0xffc0));
  EXPECT_TRUE(logs.contains("leaves the address space"));
  r.cf8Write(1, cfg::kBar0 + 8, 4, 0xffffc000);
  r.cf8Write(1, cfg::kBar0 + 12, 4, 0xffffffff);  // 64-bit BAR wrapping past 2^64
  EXPECT_FALSE(r.mmioHits(0xffffffffffffc000ULL, 4));
  // Onto the ECAM window.
  r.cf8Write(1, cfg::kBar0 + 4, 4, static_cast<uint32_t>(kEcamBase));
  EXPECT_EQ(r.ecamRead(r.ecamOffset(0, 1, 0, 0), 4), 0x10011af4u);
}

TEST(Hostile, Case24_AccessRunningPastBarEndIsNotDispatched) {
  Rig r;
  r.cf8Write(1, cfg::kBar0, 4, 0xc000);
  r.cf8Write(1, cfg::kBar0 + 4, 4, 0xfebf0000);
  r.cf8Write(1, cfg::kCommand, 2, cfg::kCommandMemory | cfg::kCommandIo);
  r.dev->regions[0]->clear();
  r.dev->regions[1]->clear();
  EXPECT_TRUE(r.mmioHits(0xfebf0000 + 0x1000 - 4, 4));
  EXPECT_TRUE(r.mmioHits(0xfebf0000 + 0x1000 - 8, 8));
  EXPECT_FALSE(r.mmioHits(0xfebf0000 + 0x1000 - 2, 4));
  EXPECT_FALSE(r.mmioHits(0xfebf0000 + 0x1000 - 4, 8));
  EXPECT_FALSE(r.mmioHits(0xfebf0000 - 2, 4));  // starting before it
  EXPECT_TRUE(r.pioHits(0xc000 + 0x3c, 4));
  EXPECT_FALSE(r.pioHits(0xc000 + 0x3e, 4));
  EXPECT_FALSE(r.pioHits(0xc000 + 0x3f, 2));
  for (const auto& a : r.dev->regions[1]->accesses()) {
    EXPECT_LE(a.offset + a.size, 0x1000u);
  }
  EXPECT_EQ(r.dev->regions[1]->accesses().size(), 2u);
  EXPECT_EQ(r.dev->regions[0]->accesses().size(), 1u);
  uint8_t b[4];
  EXPECT_FALSE(r.mmio.write(0xfebf0000 + 0xffe, b));
}

TEST(PciBus, ResetControlRegister) {
  Rig r;
  EXPECT_TRUE(r.portWrite(0xcf9, 1, 0x02));  // hard-reset select alone does nothing
  EXPECT_EQ(r.resets, 0);
  EXPECT_TRUE(r.portWrite(0xcf9, 1, 0x06));
  EXPECT_EQ(r.resets, 1);
  EXPECT_TRUE(r.portWrite(0xcf9, 1, 0x04));
  EXPECT_EQ(r.resets, 2);
  EXPECT_TRUE(r.portWrite(0xcf9, 2, 0x0404));  // only byte writes are the reset register
  EXPECT_TRUE(r.portWrite(0xcfa, 1, 0x04));
  EXPECT_EQ(r.resets, 2);
  uint32_t v = 0;
  EXPECT_TRUE(r.portRead(0xcf9, 1, &v));
  EXPECT_EQ(v, 0xffu);
  // Mechanism #1's address register is unaffected by the reset register.
  r.setAddress(1, 0);
  EXPECT_TRUE(r.portWrite(0xcf9, 1, 0x00));
  EXPECT_TRUE(r.portRead(kPorts, 4, &v));
  EXPECT_EQ(v, 0x80000800u);
  // Without a handler a reset request is harmless.
  r.pci.setResetHandler(nullptr);
  EXPECT_TRUE(r.portWrite(0xcf9, 1, 0x06));
}

TEST(PciBus, AssignResourcesPlacesAndMapsEveryBar) {
  Rig r;
  ASSERT_TRUE(r.pci.assignResources(0xc000, 0x1000, 0xe0000000, 0x100000).ok());
  EXPECT_EQ(r.dev->command() & (cfg::kCommandIo | cfg::kCommandMemory),
            cfg::kCommandIo | cfg::kCommandMemory);
  uint64_t io = r.dev->barAddress(0), m32 = r.dev->barAddress(1), m64 = r.dev->barAddress(2);
  EXPECT_EQ(io % 0x40, 0u);
  EXPECT_EQ(m32 % 0x1000, 0u);
  EXPECT_EQ(m64 % 0x4000, 0u);
  EXPECT_GE(io, 0xc000u);
  EXPECT_GE(m32, 0xe0000000u);
  EXPECT_TRUE(m64 + 0x4000 <= m32 || m32 + 0x1000 <= m64);
  EXPECT_TRUE(r.pioHits(io));
  EXPECT_TRUE(r.mmioHits(m32));
  EXPECT_TRUE(r.mmioHits(m64));
  // A window too small for the BARs is an error.
  Rig small;
  EXPECT_FALSE(small.pci.assignResources(0xc000, 0x20, 0xe0000000, 0x100000).ok());
}

TEST(PciBus, SlotsFillUpAndDestructionUnmaps) {
  Bus pio("pio"), mmio("mmio");
  {
    PciBus pci(pio, mmio, [](uint64_t, uint64_t) { return false; });
    EXPECT_TRUE(pci.occupiedSlots().empty());
    for (int i = 1; i < PciBus::kSlots; ++i) {
      auto slot = pci.addDevice(std::make_shared<BarDevice>());
      ASSERT_TRUE(slot.ok());
      EXPECT_EQ(*slot, i);
      EXPECT_EQ(pci.occupiedSlots().size(), static_cast<size_t>(i));
      EXPECT_EQ(pci.occupiedSlots().back(), i);
    }
    EXPECT_FALSE(pci.addDevice(std::make_shared<BarDevice>()).ok());
    EXPECT_EQ(pci.deviceAt(200), nullptr);
    ASSERT_TRUE(pci.assignResources(0x1000, 0x8000, 0xe0000000, 0x1000000).ok());
    EXPECT_TRUE(pio.overlaps(0x1000, 0x8000));
    EXPECT_TRUE(mmio.overlaps(0xe0000000, 0x1000000));
  }
  EXPECT_FALSE(pio.overlaps(0, 0x10000));
  EXPECT_FALSE(mmio.overlaps(0, ~0ULL));
}

// A snapshot's PCI header (issue 13): loaded into a bus built alike, it maps the BARs where the
// saved guest put them; a device of another ID in the slot is refused, and a BAR the bytes put
// over RAM is refused by the bus as a guest's write would be (hostile-guest case 23).
TEST(Hostile, SavedPciHeaderLoadsOnlyIntoTheSameDeviceAndKeepsBarsOffRam) {
  Rig a;
  a.cf8Write(1, cfg::kBar0, 4, 0xc000);
  a.cf8Write(1, cfg::kBar0 + 4, 4, 0xfebf0000);
  a.cf8Write(1, cfg::kCommand, 2, cfg::kCommandIo | cfg::kCommandMemory);
  StateWriter w;
  ASSERT_TRUE(a.pci.saveDevice(1, w).ok());
  std::vector<uint8_t> bytes = w.take();

  Rig b;
  StateReader r(bytes, "pci");
  ASSERT_TRUE(b.pci.loadDevice(1, r).ok());
  EXPECT_TRUE(r.finish().ok());
  EXPECT_TRUE(b.pioHits(0xc000 + 4));
  EXPECT_TRUE(b.mmioHits(0xfebf0000 + 0x10));

  std::vector<uint8_t> other = bytes;
  other[0] ^= 1;  // the vendor ID
  Rig c;
  StateReader rc(other, "pci");
  auto refused = c.pci.loadDevice(1, rc);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("this machine"), std::string::npos)
      << refused.error().message;
  EXPECT_FALSE(c.pioHits(0xc000 + 4)) << "nothing was written";

  std::vector<uint8_t> onto_ram = bytes;
  storeLe<uint32_t>(std::span(onto_ram).subspan(8, 4), 0x1000);  // BAR1 (after the ID and BAR0)
  Rig d;
  StateReader rd(onto_ram, "pci");
  ASSERT_TRUE(d.pci.loadDevice(1, rd).ok());
  EXPECT_FALSE(d.mmioHits(0x1000 + 0x10)) << "a BAR over RAM";
  EXPECT_FALSE(d.pci.loadDevice(9, rd).ok()) << "an empty slot";
}

}  // namespace
}  // namespace ember::pci
