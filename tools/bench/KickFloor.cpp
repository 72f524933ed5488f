// The kick-cost floor: a bare KVM monitor that boots the test guest and does nothing but count
// its queue kicks, so that tools/bench can set Ember's and QEMU's kick costs against the least a
// monitor can possibly spend.
//
// It offers the guest a COM1 output port, the debug-exit port, a kick port (0x6000) and a kick
// MMIO page (0xd0000000). With --ioeventfd the kick addresses are KVM ioeventfds (2-byte writes
// of 0) drained by one epoll thread, exactly as a VMM would; without, each kick is a userspace
// exit that the vCPU loop counts. No PCI, no devices. --no-drain leaves the ioeventfds unread
// until the end: then a kick wakes nobody and costs only KVM's in-kernel signalling (the
// absolute floor; a real VMM's thread has to wake up, so the default drains).
//
// With --irq every counted kick is answered with an interrupt: an irqfd on a GSI routed as an MSI
// to the boot CPU's local APIC, vector kKickVector (passed to the guest as kick.irq=), written by
// whichever thread counted the kick (the epoll thread with --ioeventfd, else the vCPU thread). This
// is the floor of the kick -> device -> MSI-X interrupt round trip (the guest's bench-irq).
//
// --tsc-khz prints KVM's TSC frequency for a vCPU of this host (KVM_GET_TSC_KHZ) and exits:
// tools/bench converts every monitor's TSC cycle counts with it.
//
//   kick-floor --kernel testguest.elf [--ioeventfd [--no-drain]] [--irq] [--cmdline "tests=..."]
//   kick-floor --tsc-khz
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <thread>

#include "kvm/GuestMemory.h"
#include "kvm/KvmSystem.h"
#include "kvm/UniqueFd.h"
#include "kvm/Vcpu.h"
#include "kvm/Vm.h"
#include "vmm/BootCpu.h"
#include "vmm/Cpuid.h"
#include "vmm/ElfLoader.h"
#include "vmm/MemoryLayout.h"
#include "vmm/PvhBoot.h"

using namespace ember;

namespace {
constexpr uint16_t kKickPort = 0x6000;
constexpr uint64_t kKickMmio = 0xd0000000;
constexpr uint16_t kCom1 = 0x3f8, kDebugExit = 0xf4;
constexpr uint8_t kKickVector = 0x60;

int fail(const std::string& what) {
  std::fprintf(stderr, "kick-floor: error: %s\n", what.c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Minimal KVM monitor that counts the test guest's kicks (benchmark floor)"};
  std::string kernel, cmdline = "tests=bench-kick";
  bool use_ioeventfd = false, use_irq = false, print_tsc_khz = false, no_drain = false;
  app.add_option("--kernel", kernel, "PVH ELF test guest");
  app.add_option("--cmdline", cmdline, "Guest command line");
  app.add_flag("--ioeventfd", use_ioeventfd, "Serve kicks with KVM ioeventfds");
  app.add_flag("--irq", use_irq, "Answer every kick with an MSI through an irqfd");
  app.add_flag("--no-drain", no_drain,
               "With --ioeventfd: nobody waits on the eventfds (counted once at exit), so a kick "
               "costs only KVM's in-kernel signalling, no wake-up");
  app.add_flag("--tsc-khz", print_tsc_khz, "Print KVM's vCPU TSC frequency in kHz and exit");
  CLI11_PARSE(app, argc, argv);

  auto kvm = kvm::KvmSystem::open("/dev/kvm");
  if (!kvm) return fail(kvm.error().message);
  auto vm = kvm::Vm::create(*kvm);
  if (!vm) return fail(vm.error().message);
  if (print_tsc_khz) {
    auto vcpu = kvm::Vcpu::create(**vm, 0);
    if (!vcpu) return fail(vcpu.error().message);
    int khz = ioctl((*vcpu)->fd(), KVM_GET_TSC_KHZ, 0);
    if (khz <= 0) return fail("KVM_GET_TSC_KHZ failed");
    std::printf("%d\n", khz);
    return 0;
  }
  if (kernel.empty()) return fail("--kernel is required");
  if (auto r = (*vm)->setUpIrqchip(vmm::layout::kTssAddress, vmm::layout::kIdentityMapAddress); !r)
    return fail(r.error().message);
  auto layout = vmm::MemoryLayout::forSize(64ULL << 20);
  auto mem = GuestMemory::create(layout->ramRegions());
  if (!mem) return fail(mem.error().message);
  for (uint32_t slot = 0; slot < mem->regions().size(); ++slot) {
    const auto& r = mem->regions()[slot];
    if (auto s = (*vm)->setMemorySlot(slot, r.start.raw, r.size, r.mapping.data()); !s)
      return fail(s.error().message);
  }
  auto image_bytes = vmm::readImageFile(kernel, 64 << 20, "kernel");
  if (!image_bytes) return fail(image_bytes.error().message);
  auto image = vmm::parseElf(*image_bytes);
  if (!image || !image->pvh_entry) return fail("kernel is not a PVH ELF");
  if (auto r = vmm::loadElf(*image, *image_bytes, *mem, vmm::layout::kHighMemoryStart); !r)
    return fail(r.error().message);
  std::string full = cmdline + " kick.port=" + std::to_string(kKickPort) +
                     " kick.mmio=" + std::to_string(kKickMmio);
  if (use_irq) full += " kick.irq=" + std::to_string(kKickVector);
  auto si = vmm::writePvhStartInfo(*mem, *layout, full, {}, 0);
  if (!si) return fail(si.error().message);
  auto vcpu = kvm::Vcpu::create(**vm, 0);
  if (!vcpu) return fail(vcpu.error().message);
  if (auto r = (*vcpu)->setCpuid(vmm::buildCpuid(kvm->supportedCpuid(), 0, 1)); !r)
    return fail(r.error().message);
  if (auto r = vmm::setPvhEntryState(**vcpu, *image->pvh_entry, static_cast<uint32_t>(*si)); !r)
    return fail(r.error().message);

  // --irq: one irqfd on an MSI route to APIC 0, vector kKickVector (fixed delivery, edge).
  std::optional<EventFd> irq_fd;
  if (use_irq) {
    auto e = EventFd::create();
    if (!e) return fail("eventfd");
    irq_fd.emplace(std::move(*e));
    auto gsi = (*vm)->allocateMsiGsi();
    if (!gsi) return fail(gsi.error().message);
    if (auto r = (*vm)->setMsiRoute(*gsi, 0xfee00000, kKickVector); !r)
      return fail(r.error().message);
    if (auto r = (*vm)->addIrqfd(*gsi, irq_fd->fd()); !r) return fail(r.error().message);
  }
  auto answer = [&] {
    if (irq_fd) {
      uint64_t one = 1;
      (void)!write(irq_fd->fd(), &one, sizeof one);
    }
  };

  // ioeventfd mode: one eventfd per kick address, drained by a counting thread.
  std::atomic<uint64_t> counted{0};
  std::atomic<bool> stop{false};
  std::optional<EventFd> pio_fd, mmio_fd;
  UniqueFd epfd;
  std::thread counter;
  if (use_ioeventfd) {
    auto a = EventFd::create(), b = EventFd::create();
    if (!a || !b) return fail("eventfd");
    pio_fd.emplace(std::move(*a));
    mmio_fd.emplace(std::move(*b));
    if (auto r = (*vm)->addIoEvent({true, kKickPort, 2, 0}, pio_fd->fd()); !r)
      return fail(r.error().message);
    if (auto r = (*vm)->addIoEvent({false, kKickMmio, 2, 0}, mmio_fd->fd()); !r)
      return fail(r.error().message);
    epfd.reset(epoll_create1(EPOLL_CLOEXEC));
    for (int fd : {pio_fd->fd(), mmio_fd->fd()}) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd, &ev);
    }
    if (!no_drain)
      counter = std::thread([&] {
        epoll_event evs[2];
        while (!stop.load()) {
          int n = epoll_wait(epfd.get(), evs, 2, 100);
          for (int i = 0; i < n; ++i) {
            uint64_t v = 0;
            if (read(evs[i].data.fd, &v, sizeof v) == sizeof v) {
              counted += v;
              answer();
            }
          }
        }
      });
  }

  int status = 3;
  uint64_t exits = 0;
  for (;;) {
    auto exit = (*vcpu)->run();
    if (!exit) {
      std::fprintf(stderr, "kick-floor: %s\n", exit.error().message.c_str());
      break;
    }
    if (auto* out = std::get_if<kvm::exit::IoOut>(&*exit)) {
      if (out->port == kCom1) {
        fwrite(out->data.data(), 1, out->data.size(), stdout);
      } else if (out->port == kDebugExit) {
        status = out->data[0];
        break;
      } else if (out->port == kKickPort) {
        ++exits;
        answer();
      }
    } else if (auto* in = std::get_if<kvm::exit::IoIn>(&*exit)) {
      // COM1 line status: transmitter always empty; everything else reads as a floating bus.
      for (size_t i = 0; i < in->data.size(); ++i) in->data[i] = 0xff;
      if (in->port == kCom1 + 5) in->data[0] = 0x60;
    } else if (auto* w = std::get_if<kvm::exit::MmioWrite>(&*exit)) {
      if (w->addr == kKickMmio) {
        ++exits;
        answer();
      }
    } else if (auto* r = std::get_if<kvm::exit::MmioRead>(&*exit)) {
      std::fill(r->data.begin(), r->data.end(), 0xff);
    } else if (std::holds_alternative<kvm::exit::Hlt>(*exit) ||
               std::holds_alternative<kvm::exit::Interrupted>(*exit)) {
      continue;
    } else {
      std::fprintf(stderr, "kick-floor: unexpected exit\n%s\n", (*vcpu)->describeState().c_str());
      break;
    }
  }
  stop = true;
  if (counter.joinable()) counter.join();
  if (use_ioeventfd && no_drain) {
    for (auto* fd : {&pio_fd, &mmio_fd}) counted += (*fd)->consume();
  }
  fflush(stdout);
  std::fprintf(stderr, "kick-floor: %lu kicks counted by %s\n",
               static_cast<unsigned long>(use_ioeventfd ? counted.load() : exits),
               use_ioeventfd ? "ioeventfd" : "userspace exits");
  return status;
}
