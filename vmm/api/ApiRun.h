// `ember run` with a control plane (--api-sock, --config-file): the VM comes from the command
// line, from a Firecracker config file, or from a client's InstanceStart, and the API serves
// while it runs. Without --kernel or --config-file, ember waits for InstanceStart; SIGINT, SIGTERM
// or SIGHUP while it waits end ember as they end a running VM (status 128+N).
#pragma once

#include "vmm/Cli.h"
#include "vmm/RunRecord.h"

namespace ember::vmm::api {

RunRecord runWithApi(const MachineConfig& base, const ApiOptions& options);

}  // namespace ember::vmm::api
