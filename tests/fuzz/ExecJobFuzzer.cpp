// Fuzzes the guest init's inputs from the host: the job bytes (ExecJob::decode, which the init
// reads as PID 1, where a crash would end the VM with a kernel panic) and the status line
// (ExecStatus::parse, which ember exec reads from the guest). Properties: no crash; an accepted
// job is valid and survives encode/decode unchanged; an accepted status line is what its
// encode() writes (a setup error's carriage returns aside), reparses the same, and maps to an
// exit status from 0 to 255.
#include <cstdlib>
#include <string>
#include <string_view>

#include "vmm/init/ExecJob.h"
#include "vmm/init/ExecStatus.h"

using namespace ember::init;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);  // the input's bytes as text
  std::string error;
  if (std::optional<ExecJob> job = ExecJob::decode(bytes, &error)) {
    if (job->validate().has_value()) abort();
    std::optional<ExecJob> again = ExecJob::decode(job->encode(), nullptr);
    if (!again || !(*again == *job)) abort();
  } else if (error.empty()) {
    abort();
  }
  if (std::optional<ExecStatus> status = ExecStatus::parse(bytes, nullptr)) {
    if (status->kind() != ExecStatus::Kind::SetupError && status->encode() != bytes) abort();
    std::optional<ExecStatus> again = ExecStatus::parse(status->encode(), nullptr);
    if (!again || !(*again == *status)) abort();
    int exit_status = exitStatusFor(*status);
    if (exit_status < 0 || exit_status > 255) abort();
  }
  return 0;
}
