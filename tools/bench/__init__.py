"""Ember's benchmarks beside QEMU 7.2 and kick-floor (run through tools/bench/run).

Every figure is measured by the test guest (tests/guest/bench*.cpp) in TSC cycles over a timed
loop and converted here with KVM's TSC frequency for this host (kick-floor --tsc-khz), so the
conversion is the same for every monitor. Boots are interleaved: run 1 of every configuration,
then run 2 of every configuration, and so on, so that a change in the machine's load during the
benchmark spreads over all monitors instead of landing on one.

Rows:
  kick     ns per queue kick, tight loop, empty ring (legacy PIO / modern MMIO, ioeventfd on/off)
  blk      ns per 4 KiB virtio-blk read (and requests/s) at queue depth 1 and 32, tmpfs raw file
  irq      kick -> device -> MSI-X -> guest handler round trip (Ember: a 1-byte virtio-rng read)
  startup  process start to exit of a guest that exits at once, and the monitor's max RSS
  snapshot restore against a cold boot to the same point (256 MiB, 2 GiB), snapshot create time,
           the memory file's size (snapshot.py)
  linux    Linux boot in the emulated-SVM L1 (tools/linux-boot), when that tool exists and works
"""
