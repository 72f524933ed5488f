import tempfile
import unittest
from pathlib import Path

from harness import hostchecks, images, options, plan, record

from . import fixtures


def linux_record(change=None):
    obj = fixtures.record("record-linux-poweroff.json")
    if change:
        change(obj)
    return record.parse(obj, "r.json")


def context(*argv, rec=None, status=0, disk_names=("/dev/vda", "/dev/vdb", "/dev/vdc"),
            l1_console="", report="", imgs=None, record_error=""):
    o = options.parse(["--l1", *argv], {})
    options.resolve_mode(o, hardware_virt=False)
    if imgs is None and o.devices:
        imgs = images.GuestImages(Path("/d"), 1, "", Path("/s"), 0, 1, Path("/r"), 1, "")
    p = plan.make(o, imgs if o.devices else None)
    return hostchecks.Context(o, p, imgs, report, status, rec, record_error, l1_console,
                              list(disk_names))


class PowerOffTest(unittest.TestCase):
    def test_acpi_power_off(self):
        self.assertIsNone(hostchecks.host_acpi_poweroff(context(rec=linux_record())))

    def test_a_reset_is_not_a_power_off(self):
        rec = linux_record(lambda o: o["exit"].update(reason="reset", message="guest reset (i8042)"))
        self.assertEqual(hostchecks.host_acpi_poweroff(context(rec=rec)),
                         "ember exited with status 0; its run record says reset: guest reset "
                         "(i8042), status 0")

    def test_a_status_that_disagrees(self):
        self.assertIn("ember exited with status 1",
                      hostchecks.host_acpi_poweroff(context(rec=linux_record(), status=1)))

    def test_no_record_or_status(self):
        self.assertIn("no run record from ember: r.json: no run record",
                      hostchecks.host_acpi_poweroff(context(record_error="r.json: no run record")))
        self.assertIn("exit status is unknown", hostchecks.host_acpi_poweroff(context(status=None)))

    def test_qemu(self):
        c = context("--monitor", "qemu", "--no-devices", status=0)
        self.assertIsNone(hostchecks.host_qemu_exit(c))
        c.monitor_status = 1
        self.assertEqual(hostchecks.host_qemu_exit(c), "QEMU's exit status is 1")


class ActivationTest(unittest.TestCase):
    def check(self, *argv, rec=None, **kw):
        return hostchecks.host_virtio_activation(context(*argv, rec=rec or linux_record(), **kw))

    def test_every_device_as_asked(self):
        self.assertIsNone(self.check())

    def test_the_wrong_face(self):
        reason = self.check("--legacy")
        self.assertIn("virtio-blk /dev/vda should use the legacy interface with ioeventfd on", reason)
        self.assertIn("the run record says: face modern, ioeventfd on, 1 activation(s), "
                      "kicks: 45 through ioeventfds, 0 as userspace exits", reason)

    def test_ioeventfd_off_asked_but_on_recorded(self):
        self.assertIn("with ioeventfd off and its kicks should come as userspace exits",
                      self.check("--ioeventfd=off"))

    def test_ioeventfd_off_with_its_kicks(self):
        def off(o):
            for d in o["devices"]:
                if d["type"] == "virtio-blk":
                    d["ioeventfd"] = False
                    d["kicks"] = {"ioeventfd": 0, "userspace": d["kicks"]["ioeventfd"], "polled": 0}
        self.assertIsNone(self.check("--ioeventfd=off", rec=linux_record(off)))

    def test_kicks_that_came_the_other_way(self):
        def userspace(o):
            o["devices"][3]["kicks"] = {"ioeventfd": 0, "userspace": 3, "polled": 0}
        self.assertIn("virtio-rng should use the modern interface with ioeventfd on and its kicks "
                      "should come through ioeventfds", self.check(rec=linux_record(userspace)))

    def test_never_activated(self):
        def idle(o):
            o["devices"][2].update(face=None, activations=0)
        self.assertIn("face none (never activated), ioeventfd on, 0 activation(s)",
                      self.check(rec=linux_record(idle)))

    def test_a_missing_or_different_device(self):
        def drop(o):
            del o["devices"][3]
        self.assertIn("ember's run record has no rng0 virtio-rng (its devices: blk0 (virtio-blk "
                      "/dev/vda), blk1", self.check(rec=linux_record(drop)))
        self.assertIn("has no blk1 virtio-blk /dev/vdx",
                      self.check(disk_names=("/dev/vda", "/dev/vdx", "/dev/vdc")))

    def test_the_l1_did_not_name_a_disk(self):
        self.assertIn("the L1 did not say which of its devices is /s",
                      self.check(disk_names=("/dev/vda", None, "/dev/vdc")))

    def test_net_and_balloon(self):
        expected = hostchecks.expected_devices(context("--net-balloon"))
        self.assertEqual([(e.id, e.name, e.ioeventfd) for e in expected[3:]],
                         [("rng0", "virtio-rng", True), ("net0", "virtio-net ember0", True),
                          ("balloon0", "virtio-balloon", True)])
        expected = hostchecks.expected_devices(context("--net-balloon", "--ioeventfd=off",
                                                       "--net", "tap=mine"))
        self.assertEqual([(e.id, e.ioeventfd) for e in expected[4:]],
                         [("net1", False), ("balloon0", True)])

    def test_no_record(self):
        self.assertEqual(hostchecks.host_virtio_activation(context(record_error="x: empty")),
                         "no run record from ember: x: empty")


class BalloonTest(unittest.TestCase):
    def test_rss(self):
        l1 = fixtures.text("l1-passed.txt")  # 480124 -> 455000 kB: 25124 kB given back
        self.assertIsNone(hostchecks.host_balloon_rss(
            context("--net-balloon", "--memory", "512M", l1_console=l1)))  # 32 MiB * 3/4
        self.assertIn("25124 kB given back, the balloon holds 65536 kB (at least 49152 kB",
                      hostchecks.host_balloon_rss(context("--net-balloon", "--memory", "1G",
                                                          l1_console=l1)))
        self.assertIn("lacks ember's VmRSS before (none)",
                      hostchecks.host_balloon_rss(context("--net-balloon", l1_console="")))


class NamesTest(unittest.TestCase):
    def test_which_checks_run(self):
        self.assertEqual(hostchecks.names(context()), [
            "host-virtio-activation", "host-blk-data", "host-blk-scratch", "host-blk-readonly",
            "host-acpi-poweroff"])
        self.assertEqual(hostchecks.names(context("--no-devices")), ["host-acpi-poweroff"])
        self.assertEqual(hostchecks.names(context("--no-devices", "--rng")),
                         ["host-virtio-activation", "host-acpi-poweroff"])
        self.assertEqual(hostchecks.names(context("--net-balloon"))[-2:],
                         ["host-balloon-rss", "host-acpi-poweroff"])
        self.assertEqual(hostchecks.names(context("--monitor", "qemu", "--no-devices")),
                         ["host-qemu-exit"])

    def test_run_and_lines(self):
        with tempfile.TemporaryDirectory() as d:
            imgs = images.make(Path(d), data_bytes=4096, scratch_total=8192, scratch_offset=1024,
                               scratch_bytes=2048, readonly_bytes=512)
            c = context(rec=linux_record(), imgs=imgs, report="host: blk-scratch-sha256=" +
                        images.sha256(imgs.scratch, 1024, 2048))
            results = hostchecks.run(c)
            self.assertEqual(hostchecks.lines(results), [
                "PASS host-virtio-activation", "PASS host-blk-data", "PASS host-blk-scratch",
                "PASS host-blk-readonly", "PASS host-acpi-poweroff"])
            imgs.readonly.write_bytes(b"x" * 512)
            c.record = None
            c.record_error = "r.json: no run record (ember did not write one)"
            lines = hostchecks.lines(hostchecks.run(c))
            self.assertTrue(lines[0].startswith("FAIL host-virtio-activation: no run record"))
            self.assertTrue(lines[3].startswith("FAIL host-blk-readonly: the read-only image"))


if __name__ == "__main__":
    unittest.main()
