# shellcheck shell=bash
# Shared helpers for tools/*: package installation and builds. Sourced, not run.
set -euo pipefail

EMBER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages the build and the test suite need (see README.md for why each is there).
# shellcheck disable=SC2034 # for the scripts that source this file
EMBER_BUILD_PACKAGES=(cmake make g++ linux-libc-dev libaio-dev liburing-dev liblzma-dev libcli11-dev libspdlog-dev
  libfmt-dev nlohmann-json3-dev libboost-dev curl libgtest-dev libgmock-dev acpica-tools qemu-system-x86
  busybox-static cpio lz4 fio iperf3 clang libclang-rt-14-dev clang-format shellcheck python3-pyflakes)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs whichever of the given packages are missing (apt-get update only when needed).
ensure_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  log "installing ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# build_ember DIR [cmake args...]: configures, then builds incrementally; every target, or
# only those named in EMBER_TARGETS (space-separated). The build's output goes to DIR/build.log
# and is shown without the progress lines.
build_ember() {
  local dir="$1"
  shift
  # Configured every time (a second or two once the cache exists): a target added to the
  # CMakeLists since the last configure must be known before `--target` can name it.
  cmake -S "$EMBER_ROOT" -B "$dir" "$@" >/dev/null || return 1
  local targets=() rc=0
  local t
  for t in ${EMBER_TARGETS:-}; do targets+=(--target "$t"); done
  cmake --build "$dir" -j"$(nproc)" "${targets[@]}" -- --no-print-directory >"$dir/build.log" 2>&1 || rc=$?
  grep -v -E '^\[ *[0-9]+%\]|^Consolidate|^Scanning' "$dir/build.log" || true
  return "$rc"
}
