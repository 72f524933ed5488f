import tempfile
import unittest
from pathlib import Path

from harness import initramfs, options, plan, qemu
from harness.images import GuestImages

LDD = """\
\tlinux-vdso.so.1 (0x00007ffc5b3f2000)
\tlibpixman-1.so.0 => /lib/x86_64-linux-gnu/libpixman-1.so.0 (0x00007f0e1c3a4000)
\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0e1c385000)
\tlibmissing.so.2 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0e1d0f8000)
"""
IMAGES = GuestImages(Path("/w/data.img"), 1, "d", Path("/w/s,x.img"), 0, 1, Path("/w/r.img"), 1, "r")


def make(*argv):
    o = options.parse(["--l1", *argv], {})
    options.resolve_mode(o, hardware_virt=False)
    return o, plan.make(o, IMAGES if o.devices else None)


class L1ImageTest(unittest.TestCase):
    def test_qemus_libraries_from_ldd(self):
        self.assertEqual(initramfs.ldd_libraries(LDD), [
            "/lib/x86_64-linux-gnu/libpixman-1.so.0", "/lib/x86_64-linux-gnu/libz.so.1",
            "/lib64/ld-linux-x86-64.so.2"])

    def test_embers_args_one_per_line(self):
        o, p = make("--cpus", "2")
        args = initramfs.l1_args(p, "ember", o.cpus, o.mem_kib)
        self.assertEqual(args[:6], ["run", "--kernel", "/ember/vmlinux", "--initrd",
                                    "/ember/l2-initramfs.cpio", "--cmdline"])
        self.assertEqual(args[6], p.cmdline)
        self.assertEqual(args[7:13], ["--disk", "@l1disk:ember-l1-disk0,serial=ember-data",
                                      "--disk", "@l1disk:ember-l1-disk1,serial=ember-scratch",
                                      "--disk", "@l1disk:ember-l1-disk2,readonly,serial=ember-readonly"])
        self.assertEqual(args[13:], ["--cpus", "2", "--rng", "--log-level", "debug"])

    def test_qemus_args(self):
        o, p = make("--monitor", "qemu", "--no-devices", "--memory", "512M", "--cpus", "2")
        args = initramfs.l1_args(p, "qemu", o.cpus, o.mem_kib)
        self.assertEqual(args[:8], ["-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host",
                                    "-smp", "2"])
        self.assertEqual(args[args.index("-m") + 1], "512M")
        self.assertEqual(args[-4:], ["-initrd", "/ember/l2-initramfs.cpio", "-append", p.cmdline])
        self.assertNotIn("--log-level", args)

    def test_a_newline_cannot_go_through(self):
        o, p = make("--cmdline", "a\nb")
        with self.assertRaises(options.UsageError):
            initramfs.l1_args(p, "ember", o.cpus, o.mem_kib)

    def test_modules_and_net(self):
        _, p = make()
        self.assertEqual(initramfs.l1_modules(p, False)[-4:],
                         ["virtio_blk", "irqbypass", "kvm", "kvm-amd"])
        _, p = make("--no-devices")
        self.assertEqual(initramfs.l1_modules(p, True), ["irqbypass", "kvm", "kvm-amd", "tun"])
        self.assertEqual(initramfs.net_settings(),
                         "tap=ember0 addr=10.0.2.1/24 guest=10.0.2.15 port=5000 bytes=67108864\n")


class QemuTest(unittest.TestCase):
    def test_drives(self):
        with tempfile.TemporaryDirectory() as d:
            mine = str(Path(d) / "mine.img")
            Path(mine).touch()
            disks = [plan.Disk("/w/s,x.img", ",serial=ember-scratch", True),
                     plan.Disk("/w/r.img", ",readonly,serial=ember-readonly", True),
                     plan.Disk(mine, ",readonly", False)]
            args = qemu.l1_drives(disks)
        self.assertEqual(args[1], "if=none,id=disk0,format=raw,file.driver=file,"
                                  "file.filename=/w/s,,x.img")
        self.assertEqual(args[3], "virtio-blk-pci,drive=disk0,serial=ember-l1-disk0")
        self.assertNotIn("readonly=on", args[5])  # the harness's own: read-write to the L1
        self.assertTrue(args[9].endswith(",readonly=on"))  # the user's readonly disk

    def test_the_l1(self):
        cmd = qemu.l1_command(Path("/k"), Path("/i"), qemu.l1_append(False), Path("/l1"),
                              Path("/l2"), [])
        self.assertIn("-no-reboot", cmd)
        self.assertEqual(cmd[cmd.index("-cpu") + 1], "qemu64,+svm,+npt")
        self.assertEqual(cmd[cmd.index("-append") + 1], "console=ttyS0 panic=-1 tsc=reliable quiet")
        self.assertEqual([cmd[i + 1] for i, a in enumerate(cmd) if a == "-serial"],
                         ["file:/l1", "file:/l2"])
        self.assertNotIn("quiet", qemu.l1_append(True))


if __name__ == "__main__":
    unittest.main()
