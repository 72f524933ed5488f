# shellcheck shell=bash
# The Debian kernel of the Linux boot tests: downloads the package pinned in tools/linux-version
# with apt-get, unpacks it with dpkg-deb and extracts the vmlinux ELF (which Ember boots through
# its PVH note) from the bzImage. Everything is cached in one directory and guarded by a lock, so
# concurrent test runs share one download. Sourced (after tools/lib.sh), not run.
#
# linux_prepare CACHE_DIR sets:
#   LINUX_RELEASE  the kernel release, e.g. 6.1.0-50-cloud-amd64
#   LINUX_BZIMAGE  the bzImage (the L1 kernel QEMU boots)
#   LINUX_VMLINUX  the uncompressed ELF extracted from it (the kernel Ember boots)
#   LINUX_MODULES  the release's module tree (lib/modules/<release>/kernel); its parent also
#                  holds modules.dep, which the package leaves to the installing machine's
#                  depmod, made here with `depmod -b` (for ember exec, which reads it)

# shellcheck source=../../tools/linux-version
source "$EMBER_ROOT/tools/linux-version"

# Little-endian unsigned integer of WIDTH (1, 2 or 4) bytes at OFFSET in FILE.
linux_read_le() {
  local file="$1" offset="$2" width="$3"
  od -An -t "u$width" --endian=little -j "$offset" -N "$width" "$file" | tr -d ' \n'
}

# Extracts the kernel ELF from a bzImage. The boot protocol header (Documentation/x86/boot.rst)
# says where the compressed payload is: it starts payload_offset (0x248) bytes into the
# protected-mode code, which follows the (setup_sects (0x1f1) + 1) * 512 bytes of real-mode
# setup, and is payload_length (0x24c) bytes long. arch/x86/boot/compressed/Makefile appends the
# uncompressed size as 4 little-endian bytes to every payload format except gzip (whose own
# trailer already ends in it); those bytes are not part of the compressed stream, so they are cut
# before decompressing and used to check the result.
linux_extract_vmlinux() {
  local bzimage="$1" out="$2"
  if [[ "$(od -An -c -j $((0x202)) -N 4 "$bzimage" | tr -d ' \n')" != "HdrS" ]]; then
    log "error: $bzimage is not a bzImage (no 'HdrS' boot protocol magic at 0x202)"
    return 1
  fi
  local version setup_sects payload_offset payload_length start
  version="$(linux_read_le "$bzimage" $((0x206)) 2)"
  if ((version < 0x208)); then
    log "error: $bzimage uses boot protocol $((version >> 8)).$((version & 0xff)); payload fields need 2.08"
    return 1
  fi
  setup_sects="$(linux_read_le "$bzimage" $((0x1f1)) 1)"
  ((setup_sects == 0)) && setup_sects=4 # boot.rst: 0 means 4
  payload_offset="$(linux_read_le "$bzimage" $((0x248)) 4)"
  payload_length="$(linux_read_le "$bzimage" $((0x24c)) 4)"
  start=$(((setup_sects + 1) * 512 + payload_offset))
  local magic decompress trailer=4
  magic="$(od -An -t x1 -j "$start" -N 6 "$bzimage" | tr -d ' \n')"
  case "$magic" in
  02214c18*) decompress=(lz4 -d -c) ;; # LZ4 legacy frame, what `lz4 -l` writes (Debian's choice)
  04224d18*) decompress=(lz4 -d -c) ;; # LZ4 frame format
  1f8b*) decompress=(gzip -d -c) trailer=0 ;;
  fd377a585a00) decompress=(xz -d -c) ;;
  28b52ffd*) decompress=(zstd -d -c -q) ;;
  *)
    log "error: unknown compression in $bzimage (payload at $start starts with $magic)"
    return 1
    ;;
  esac
  local expected
  expected="$(linux_read_le "$bzimage" $((start + payload_length - 4)) 4)"
  dd if="$bzimage" iflag=skip_bytes,count_bytes skip="$start" count=$((payload_length - trailer)) \
    bs=1M status=none | "${decompress[@]}" >"$out.tmp"
  local size
  size="$(stat -c %s "$out.tmp")"
  if [[ "$size" != "$expected" ]]; then
    log "error: decompressed ${decompress[0]} payload of $bzimage is $size bytes, the bzImage says $expected"
    return 1
  fi
  if [[ "$(od -An -c -N 4 "$out.tmp" | tr -d ' \n')" != '177ELF' ]]; then
    log "error: the payload of $bzimage is not an ELF file"
    return 1
  fi
  mv "$out.tmp" "$out"
}

# Downloads, unpacks and extracts under the lock; a second caller finds everything cached.
linux_prepare_locked() {
  local cache="$1"
  local deb="$cache/${LINUX_PACKAGE}_${LINUX_PACKAGE_VERSION}_amd64.deb"
  local tree="$cache/${LINUX_PACKAGE}_${LINUX_PACKAGE_VERSION}"
  if [[ ! -f "$deb" ]]; then
    log "downloading $LINUX_PACKAGE=$LINUX_PACKAGE_VERSION into $cache"
    local dl="$cache/download.tmp"
    rm -rf "$dl" && mkdir -p "$dl"
    # apt-get download runs as the _apt user where it can; the scratch directory must let it in.
    chmod 0777 "$dl"
    if ! (cd "$dl" && apt-get download -q "$LINUX_PACKAGE=$LINUX_PACKAGE_VERSION" >apt.log 2>&1); then
      # A fresh machine has no package lists yet; try once more after refreshing them.
      log "apt-get download failed; running apt-get update and trying again"
      local sudo=()
      if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
      "${sudo[@]}" apt-get update -q >/dev/null 2>&1 || true
      if ! (cd "$dl" && apt-get download -q "$LINUX_PACKAGE=$LINUX_PACKAGE_VERSION" >apt.log 2>&1); then
        cat "$dl/apt.log" >&2
        log "error: cannot download $LINUX_PACKAGE=$LINUX_PACKAGE_VERSION (pinned in tools/linux-version)."
        log "       Versions this machine's apt sources offer:"
        apt-cache policy 'linux-image-*-cloud-amd64' 2>/dev/null | grep -E '^linux-image|Candidate' >&2 || true
        return 1
      fi
    fi
    mv "$dl/$(basename "$deb")" "$deb"
    rm -rf "$dl"
  fi
  if [[ ! -d "$tree" ]]; then
    log "unpacking $(basename "$deb")"
    rm -rf "$tree.tmp"
    dpkg-deb -x "$deb" "$tree.tmp"
    mv "$tree.tmp" "$tree"
  fi
  LINUX_RELEASE="${LINUX_PACKAGE#linux-image-}"
  LINUX_BZIMAGE="$tree/boot/vmlinuz-$LINUX_RELEASE"
  LINUX_MODULES="$tree/lib/modules/$LINUX_RELEASE/kernel"
  LINUX_VMLINUX="$cache/vmlinux-$LINUX_RELEASE-$LINUX_PACKAGE_VERSION"
  if [[ ! -f "$LINUX_BZIMAGE" || ! -d "$LINUX_MODULES" ]]; then
    log "error: $deb has no $LINUX_BZIMAGE or no $LINUX_MODULES; is tools/linux-version a kernel image package?"
    return 1
  fi
  if [[ ! -f "$LINUX_VMLINUX" ]]; then
    log "extracting vmlinux from $(basename "$LINUX_BZIMAGE")"
    linux_extract_vmlinux "$LINUX_BZIMAGE" "$LINUX_VMLINUX"
  fi
  # A Debian kernel package ships modules.order and modules.builtin; modules.dep is written by
  # depmod when the package is installed (its postinst). depmod writes each index to a temporary
  # file and renames it, so a modules.dep that exists is whole (its other indexes go unused).
  if [[ ! -f "$tree/lib/modules/$LINUX_RELEASE/modules.dep" ]]; then
    log "making modules.dep for $LINUX_RELEASE (depmod -b)"
    # depmod is in /sbin (kmod), which a user's PATH may lack.
    if ! PATH="$PATH:/usr/sbin:/sbin" depmod -b "$tree" "$LINUX_RELEASE"; then
      log "error: depmod -b $tree $LINUX_RELEASE failed"
      return 1
    fi
  fi
}

linux_prepare() {
  local cache="$1"
  mkdir -p "$cache"
  exec {linux_lock_fd}>"$cache/.lock"
  flock "$linux_lock_fd"
  # Called plainly (not in an || list) so that errexit stays in force inside; a failure ends the
  # script, and the lock goes with its file descriptor.
  linux_prepare_locked "$cache"
  flock -u "$linux_lock_fd"
  exec {linux_lock_fd}>&-
}
