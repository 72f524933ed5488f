"""The Linux boot harness behind tools/linux-boot, shared with the benchmark (tools/bench).

Standard library only. One concern per module, each testable without booting anything
(tests/ beside them, run by `python3 -m unittest discover -s tools -t tools`):

  output      the tools' log line and their one-line errors
  proc        running a process with a timeout and a watch callback, its status and max RSS
  shell       the shell helpers of tools/lib.sh and tests/boot/kernel.sh (packages, the kernel)
  options     tools/linux-boot's command line
  plan        what a boot attaches and asks: disks, ember's options, the guest's checks,
              its command line and virtio modules
  images      the disk images the guest checks, and the host's checks of them afterwards
  initramfs   tests/boot/build-initramfs for the guest, and the L1 image builder
  moddep      the modules ember exec loads and their files, from modules.dep and modules.builtin
  execsuite   --exec-suite: the L1 image's files for tests/boot/l1-exec, its report, and its
              progress over attempts (--exec-resume)
  qemu        the QEMU command lines: the emulated-SVM L1, and QEMU as the guest's monitor
  watchdog    the host's watch over the console logs while a boot runs
  consoles    what the guest's and the L1's consoles say
  record      ember's run record (ember run --report FILE)
  hostchecks  the checks on the host after the monitor has exited
  flake       the verdict of a boot: passed, failed, stalled or crashed in the L1
  retry       boots tried again after a flake of the emulated-SVM L1
  summary     tools/linux-boot's last line, written and read
  linux_boot  tools/linux-boot itself: the steps above in order
"""
