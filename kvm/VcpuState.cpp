// Capturing and restoring a vCPU's state with the KVM ioctls (see VcpuState.h).
#include "kvm/VcpuState.h"

#include <sys/ioctl.h>

#include "kvm/Vcpu.h"

namespace ember::kvm {

namespace {

template <typename T>
Result<void> get(const Vcpu& vcpu, unsigned long request, const char* name, T* out) {
  if (::ioctl(vcpu.fd(), request, out) < 0) return Error::fromErrno(Errc::Kvm, name);
  return okResult();
}

template <typename T>
Result<void> set(Vcpu& vcpu, unsigned long request, const char* name, const T& value) {
  if (::ioctl(vcpu.fd(), request, &value) < 0) {
    return Error::fromErrno(Errc::Kvm, fmt::format("vCPU {}: {}", vcpu.id(), name));
  }
  return okResult();
}

// KVM_GET_MSRS reads entries in order and stops at the first it cannot read: the ones before
// are kept, that one is left out, and the rest are read again.
Result<std::vector<kvm_msr_entry>> readMsrs(const Vcpu& vcpu, std::span<const uint32_t> indices) {
  std::vector<kvm_msr_entry> out;
  size_t next = 0;
  while (next < indices.size()) {
    std::vector<kvm_msr_entry> want(indices.size() - next);
    for (size_t i = 0; i < want.size(); ++i) want[i].index = indices[next + i];
    abi::FlexBuffer<kvm_msr_entry> buf{std::span<const kvm_msr_entry>(want)};
    int n = ::ioctl(vcpu.fd(), abi::kGetMsrs, buf.data());
    if (n < 0) return Error::fromErrno(Errc::Kvm, "KVM_GET_MSRS");
    auto got = buf.entries();
    out.insert(out.end(), got.begin(), got.begin() + n);
    next += static_cast<size_t>(n) + 1;  // skip the one that failed
  }
  return out;
}

}  // namespace

Result<VcpuState> VcpuState::capture(const Vcpu& vcpu, std::span<const uint32_t> msr_indices,
                                     bool with_xcrs) {
  VcpuState s;
  EMBER_TRY(get(vcpu, KVM_GET_REGS, "KVM_GET_REGS", &s.regs));
  EMBER_TRY(get(vcpu, KVM_GET_SREGS, "KVM_GET_SREGS", &s.sregs));
  EMBER_TRY(get(vcpu, abi::kGetXsave, "KVM_GET_XSAVE", &s.xsave));
  if (with_xcrs) EMBER_TRY(get(vcpu, KVM_GET_XCRS, "KVM_GET_XCRS", &s.xcrs));
  s.msrs = EMBER_TRY(readMsrs(vcpu, msr_indices));
  EMBER_TRY(get(vcpu, KVM_GET_LAPIC, "KVM_GET_LAPIC", &s.lapic));
  EMBER_TRY(get(vcpu, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", &s.events));
  EMBER_TRY(get(vcpu, KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", &s.debugregs));
  EMBER_TRY(get(vcpu, KVM_GET_MP_STATE, "KVM_GET_MP_STATE", &s.mp_state));
  return s;
}

Result<void> VcpuState::restore(Vcpu& vcpu) const {
  EMBER_TRY(set(vcpu, KVM_SET_REGS, "KVM_SET_REGS", regs));
  EMBER_TRY(set(vcpu, abi::kSetXsave, "KVM_SET_XSAVE", xsave));
  if (xcrs.nr_xcrs > 0) EMBER_TRY(set(vcpu, KVM_SET_XCRS, "KVM_SET_XCRS", xcrs));
  EMBER_TRY(set(vcpu, KVM_SET_SREGS, "KVM_SET_SREGS", sregs));
  EMBER_TRY(vcpu.setMsrs(msrs));
  EMBER_TRY(set(vcpu, KVM_SET_LAPIC, "KVM_SET_LAPIC", lapic));
  // KVM_SET_VCPU_EVENTS applies the parts whose flags KVM_GET_VCPU_EVENTS set.
  EMBER_TRY(set(vcpu, KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", events));
  EMBER_TRY(set(vcpu, KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", debugregs));
  EMBER_TRY(set(vcpu, KVM_SET_MP_STATE, "KVM_SET_MP_STATE", mp_state));
  return okResult();
}

void VcpuState::encode(StateWriter& w) const {
  w.object(regs);
  w.object(sregs);
  w.object(xsave);
  w.object(xcrs);
  w.u32(static_cast<uint32_t>(msrs.size()));
  for (const auto& m : msrs) {
    w.u32(m.index);
    w.u64(m.data);
  }
  w.object(lapic);
  w.object(events);
  w.object(debugregs);
  w.object(mp_state);
}

VcpuState VcpuState::decode(StateReader& r) {
  VcpuState s;
  s.regs = r.object<kvm_regs>("regs");
  s.sregs = r.object<kvm_sregs>("sregs");
  s.xsave = r.object<abi::Xsave>("xsave");
  s.xcrs = r.object<kvm_xcrs>("xcrs");
  if (r.ok() && s.xcrs.nr_xcrs > KVM_MAX_XCRS) {
    r.fail("xcrs", fmt::format("holds {} XCRs, more than KVM's {}", s.xcrs.nr_xcrs, KVM_MAX_XCRS));
  }
  uint32_t n = r.count("msr count", kMaxMsrs);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    kvm_msr_entry m{};
    m.index = r.u32("msr index");
    m.data = r.u64("msr value");
    s.msrs.push_back(m);
  }
  s.lapic = r.object<kvm_lapic_state>("lapic");
  s.events = r.object<kvm_vcpu_events>("events");
  s.debugregs = r.object<kvm_debugregs>("debugregs");
  s.mp_state = r.object<kvm_mp_state>("mp_state");
  if (r.ok() && s.mp_state.mp_state > KVM_MP_STATE_AP_RESET_HOLD) {
    r.fail("mp_state", fmt::format("is {}, not a KVM run state", s.mp_state.mp_state));
  }
  return s;
}

}  // namespace ember::kvm
