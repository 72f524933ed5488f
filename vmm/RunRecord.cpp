// The run record's JSON (nlohmann-json) and its file.
#include "vmm/RunRecord.h"

#include <fcntl.h>

#include <nlohmann/json.hpp>

#include "kvm/Vcpu.h"

namespace ember::vmm {

using json = nlohmann::ordered_json;

namespace {

json exitJson(const devices::ExitRequest& e) {
  json j = {
      {"reason", devices::exitReasonName(e.reason)}, {"status", e.status}, {"message", e.message}};
  switch (e.reason) {
    case devices::ExitReason::DebugExit:
      j["debug_exit_value"] = e.debug_exit_value;
      break;
    case devices::ExitReason::Signal: {
      const char* name = sigabbrev_np(e.signal);
      j["signal"] = name != nullptr ? std::string(name) : std::to_string(e.signal);
      break;
    }
    case devices::ExitReason::VcpuCrash:
      if (e.crash) {
        j["vcpu"] = e.crash->vcpu;
        j["exit_reason"] = e.crash->exit_reason;
        j["rip"] = e.crash->rip ? json(fmt::format("{:#x}", *e.crash->rip)) : json(nullptr);
      }
      break;
    default:
      break;
  }
  return j;
}

json deviceJson(const DeviceRecord& d) {
  const auto& t = d.transport;
  return json{
      {"id", d.id},
      {"pci", d.pci},
      {"type", d.type},
      {"name", d.name},
      {"face", t.legacy ? json(*t.legacy ? "legacy" : "modern") : json(nullptr)},
      {"ioeventfd", d.ioeventfd},
      {"activations", t.activations},
      {"kicks",
       {{"ioeventfd", t.kicks_ioeventfd},
        {"userspace", t.kicks_userspace},
        {"polled", t.kicks_polled}}},
      {"interrupts", {{"msix", t.interrupts_msix}, {"intx", t.interrupts_intx}}},
      {"requests", d.device.requests},
      {"bytes", d.device.bytes},
      {"errors", d.device.errors},
      {"dropped", d.device.dropped},
  };
}

// {"0x3f8": exits, ...} in the order the sites first exited, and "other" for the exits beyond
// ExitSites::kMaxSites distinct sites, when there were any.
json sitesJson(const std::vector<ExitSites::Site>& sites, uint64_t other) {
  json j = json::object();
  for (const auto& s : sites) {
    j[fmt::format("{:#x}", s.address)] = s.exits;
  }
  if (other != 0) {
    j["other"] = other;
  }
  return j;
}

json vcpusJson(const RunRecord& record, bool with_sites) {
  json vcpus = json::array();
  for (const auto& v : record.vcpus) {
    json exits = json::object();
    for (size_t k = 0; k < v.exits.size(); ++k) {
      exits[kvm::exitKindName(k)] = v.exits[k];
    }
    json vcpu = {{"id", v.id}, {"exits", exits}};
    if (with_sites) {
      vcpu["io_ports"] = sitesJson(v.sites.ports(), v.sites.portOther());
      vcpu["mmio_pages"] = sitesJson(v.sites.mmioPages(), v.sites.mmioOther());
    }
    vcpus.push_back(std::move(vcpu));
  }
  return vcpus;
}

json devicesJson(const RunRecord& record) {
  json devices = json::array();
  for (const auto& d : record.devices) {
    devices.push_back(deviceJson(d));
  }
  return devices;
}

json loopJson(const RunRecord& record) {
  return {{"polled", record.loop_polled}, {"slept", record.loop_slept}};
}

// Guest-influenced strings (the kernel path, a tap name) are escaped by the library; bytes that
// are not UTF-8 are replaced rather than making dump() throw.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string formatRunRecord(const RunRecord& record) {
  return dump({{"ember", {{"version", EMBER_VERSION}}},
               {"exit", exitJson(record.exit)},
               {"run_time_s", record.run_time_s},
               {"vcpus", vcpusJson(record, /*with_sites=*/true)},
               {"devices", devicesJson(record)},
               {"event_loop", loopJson(record)}});
}

std::string formatLiveCounters(const RunRecord& record) {
  return dump({{"run_time_s", record.run_time_s},
               {"vcpus", vcpusJson(record, /*with_sites=*/false)},
               {"devices", devicesJson(record)},
               {"event_loop", loopJson(record)}});
}

Result<RunReportFile> RunReportFile::create(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error::fromErrno(Errc::Io, fmt::format("--report {}: cannot create the file", path));
  }
  return RunReportFile(UniqueFd(fd), path);
}

Result<void> RunReportFile::write(const RunRecord& record) {
  std::string text = formatRunRecord(record) + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd_.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return Error::fromErrno(Errc::Io, fmt::format("--report {}: cannot write the record", path_));
    }
    done += static_cast<size_t>(n);
  }
  fd_.reset();
  return {};
}

}  // namespace ember::vmm
