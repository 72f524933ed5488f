import hashlib
import time
import unittest
from pathlib import Path

from harness import options, plan
from harness.images import GuestImages

IMAGES = GuestImages(Path("/w/data.img"), 5243392, "d" * 64, Path("/w/scratch.img"), 1048576,
                     4194304, Path("/w/readonly.img"), 1048576, "r" * 64)


def make(*argv, mode="l1"):
    o = options.parse(list(argv), {})
    options.resolve_mode(o, hardware_virt=(mode == "direct"))
    return o, plan.make(o, IMAGES if o.devices else None)


def words(cmdline):
    return dict(w.split("=", 1) for w in cmdline.split() if "=" in w)


class PlanTest(unittest.TestCase):
    def test_the_linux_boot_ctest(self):
        o, p = make("--cpus", "2", "--memory", "512M")
        self.assertEqual(p.variant, "l1")
        self.assertEqual([(d.path, d.options, d.own) for d in p.disks], [
            ("/w/data.img", ",serial=ember-data", True),
            ("/w/scratch.img", ",serial=ember-scratch", True),
            ("/w/readonly.img", ",readonly,serial=ember-readonly", True)])
        self.assertTrue(all(d.ioeventfd for d in p.disks))
        self.assertEqual([d.readonly for d in p.disks], [False, False, True])
        self.assertEqual(p.ember_args, ["--cpus", "2", "--memory", "512M", "--rng",
                                        "--log-level", "debug"])
        self.assertEqual(p.checks, ["virtio-transport", "blk-data", "blk-scratch", "blk-readonly",
                                    "rng", "msi", "keyboard"])
        self.assertEqual(p.virtio_modules, ["virtio_ring", "virtio", "virtio_pci_legacy_dev",
                                            "virtio_pci_modern_dev", "virtio_pci", "virtio_blk",
                                            "virtio-rng"])
        w = words(p.cmdline)
        self.assertEqual((w["ember.cpus"], w["ember.mem"], w["ember.transport"]),
                         ("2", "524288K", "modern"))
        self.assertEqual(w["ember.blk-data"], "ember-data:5243392:" + "d" * 64)
        self.assertEqual(w["ember.blk-scratch"], "ember-scratch:1048576:4194304")
        self.assertTrue(p.cmdline.startswith("console=ttyS0 panic=-1 reboot=k quiet "))
        self.assertEqual(p.transport, "modern")
        self.assertLessEqual(abs(int(w["ember.host-time"]) - time.time()), 60)

    def test_the_cmdline_word_is_the_length_and_md5_of_what_precedes_it(self):
        _, p = make("--cmdline", "i8042.noprobe é")
        before, word = p.cmdline.rsplit(" ember.cmdline=", 1)
        raw = before.encode()
        self.assertEqual(word, f"{len(raw)}-{hashlib.md5(raw).hexdigest()}")
        self.assertIn(" i8042.noprobe é ", before)

    def test_legacy_and_ioeventfd_off(self):
        o, p = make("--legacy", "--ioeventfd=off", "--disk", "u.img,ioeventfd=on", mode="direct")
        self.assertEqual(p.variant, "direct-legacy-ioeventfd-off")
        self.assertEqual(plan.title(o), "linux-boot --direct --legacy --ioeventfd=off")
        self.assertIn(" virtio_pci.force_legacy=1 ", p.cmdline)
        self.assertEqual(words(p.cmdline)["ember.transport"], "legacy")
        self.assertEqual(p.transport, "legacy")
        self.assertEqual([d.ioeventfd for d in p.disks], [False, False, False, True])
        self.assertEqual(p.disks[3], plan.Disk("u.img", ",ioeventfd=on", False))

    def test_bare(self):
        o, p = make("--no-devices", "--cpus", "1")
        self.assertEqual((p.variant, p.disks, p.rng, p.checks, p.virtio_modules),
                         ("l1-bare", [], False, ["keyboard"], []))
        self.assertIn("ember.checks=keyboard ", p.cmdline)
        self.assertEqual(p.ember_args, ["--cpus", "1", "--log-level", "debug"])

    def test_bare_with_the_users_rng(self):
        _, p = make("--no-devices", "--rng", "--log-level", "info")
        self.assertEqual(p.checks, ["virtio-transport", "rng", "msi", "keyboard"])
        self.assertEqual(p.ember_args, ["--rng", "--log-level", "info"])

    def test_no_keyboard_check_without_an_i8042_to_probe(self):
        _, p = make("--no-devices", "--monitor", "qemu")
        self.assertEqual(p.checks, [])
        _, p = make("--no-devices", "--cmdline", "i8042.noprobe")
        self.assertEqual(p.checks, [])

    def test_net_balloon(self):
        o, p = make("--net-balloon", "--ioeventfd=off", "--memory", "512M")
        self.assertEqual(p.variant, "l1-ioeventfd-off-net-balloon")
        self.assertEqual(p.balloon_kib, 32768)
        self.assertIn("--net", p.ember_args)
        net = p.ember_args[p.ember_args.index("--net") + 1]
        self.assertEqual(net, "tap=ember0,mac=52:54:00:e3:be:01,ioeventfd=off")
        self.assertEqual(p.ember_args[p.ember_args.index("--balloon") + 1], "32768K")
        self.assertEqual(p.checks, ["blk-data", "blk-scratch", "blk-readonly", "rng",
                                    "net-address", "net-ping", "net-to-guest", "net-from-guest",
                                    "balloon", "virtio-transport", "msi", "keyboard"])
        self.assertEqual(p.virtio_modules[-5:], ["failover", "net_failover", "virtio_net",
                                                 "virtio-rng", "virtio_balloon"])
        self.assertEqual(words(p.cmdline)["ember.late-modules"], "virtio_balloon")

    def test_no_msi_check_beside_a_users_quiet_device(self):
        _, p = make("--net", "tap=t0")
        self.assertNotIn("msi", p.checks)
        _, p = make("--console", "virtio")
        self.assertNotIn("msi", p.checks)
        self.assertIn("virtio_console", p.virtio_modules)

    def test_qemu_monitor(self):
        o, p = make("--monitor", "qemu", "--no-devices")
        self.assertEqual(p.variant, "l1-bare-qemu")
        self.assertEqual(plan.title(o), "linux-boot --l1 --no-devices --monitor qemu")


class OptionLookupTest(unittest.TestCase):
    def test_has_and_count(self):
        args = ["--net", "tap=a", "--net=tap=b", "--console", "virtio", "--balloon=8M"]
        self.assertEqual(plan.count_option(args, "--net"), 2)
        self.assertTrue(plan.has_option(args, "--console", "virtio"))
        self.assertFalse(plan.has_option(args, "--console", "serial"))
        self.assertTrue(plan.has_option(args, "--balloon"))
        self.assertTrue(plan.has_option(args, "--net", "tap=b"))
        self.assertFalse(plan.has_option(args, "--netx"))


if __name__ == "__main__":
    unittest.main()
