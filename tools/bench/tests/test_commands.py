import unittest
from pathlib import Path

from bench.commands import Commands
from bench.config import Settings


def commands():
    return Commands(Path("/b/ember"), Path("/b/kick-floor"), Path("/b/guest.elf"),
                    Path("/shm/disk.img"), Settings.make(True, None), "cache=none,aio=native")


class CommandsTest(unittest.TestCase):
    def test_ember_writes_its_record(self):
        cmd = commands().ember_cmd(["bench-kick"], "legacy", False, Path("/l/r.json"))
        self.assertEqual(cmd[-2:], ["--report", "/l/r.json"])
        self.assertIn("/shm/disk.img,ioeventfd=off", cmd)
        self.assertIn("tests=bench-kick virtio=legacy kick.count=2000 blk.count=400 irq.count=200",
                      cmd)
        self.assertEqual(commands().ember_cmd(["bench-kick"], "modern", True)[-2],
                         "--cmdline")
        self.assertEqual(commands().ember_startup_cmd(Path("/r"))[-4:],
                         ["--cmdline", "tests=bench-exit", "--report", "/r"])

    def test_the_counts_are_read_when_the_command_is_made(self):
        c = commands()
        c.s.kick_count = 7
        self.assertIn("kick.count=7", c.guest_cmdline(["bench-kick"], "modern"))

    def test_qemu_and_the_floor(self):
        q = commands().qemu_cmd(["bench-blk"], "modern", False)
        self.assertIn("virtio-blk-pci,drive=d0,ioeventfd=off", q)
        self.assertIn("file=/shm/disk.img,if=none,id=d0,format=raw,cache=none,aio=native", q)
        f = commands().floor_cmd(["bench-kick"], "legacy", True, False, drain=False)
        self.assertEqual(f[:5], ["/b/kick-floor", "--kernel", "/b/guest.elf", "--ioeventfd",
                                 "--no-drain"])
        self.assertIn("--irq", commands().floor_cmd(["bench-irq"], "modern", True, True))

    def test_the_boots_of_every_row(self):
        boots = commands().boots(["kick", "blk", "irq"], Path("/l"))
        labels = [(b.label, b.benches) for b in boots]
        self.assertEqual(len(boots), 16)
        self.assertEqual(labels[:4], [
            ("floor legacy ioeventfd=on", ("bench-kick",)),
            ("floor-nodrain legacy ioeventfd=on", ("bench-kick",)),
            ("ember legacy ioeventfd=on", ("bench-kick", "bench-blk", "bench-irq")),
            ("qemu legacy ioeventfd=on", ("bench-kick", "bench-blk", "bench-irq"))])
        ember = [b for b in boots if b.monitor == "ember"]
        self.assertEqual([b.report.name for b in ember], [
            "ember-legacy-ioev.report.json", "ember-legacy-user.report.json",
            "ember-modern-ioev.report.json", "ember-modern-user.report.json"])
        self.assertTrue(all(b.cmd[-1] == str(b.report) for b in ember))
        self.assertEqual({b.ok_status for b in boots if b.monitor == "qemu"}, {1})
        self.assertTrue(all(b.report is None for b in boots if b.monitor != "ember"))

    def test_blk_engines_add_one_blk_boot_per_engine(self):
        c = commands()
        c.blk_engines = ("io_uring", "sync")
        boots = [b for b in c.boots(["blk"], Path("/l")) if b.monitor.startswith("ember aio=")]
        self.assertEqual(len(boots), 2 * 2 * 2)  # engines x faces x ioeventfd settings
        b = next(b for b in boots if b.monitor == "ember aio=io_uring" and b.face == "modern"
                 and not b.ioeventfd)
        self.assertEqual(b.benches, ("bench-blk",))
        self.assertIn("/shm/disk.img,ioeventfd=off,aio=io_uring", b.cmd)
        self.assertEqual(b.cmd[-2:], ["--report", str(b.report)])
        self.assertEqual([b for b in c.boots(["kick"], Path("/l"))
                          if b.monitor.startswith("ember aio=")], [])

    def test_only_the_rows_asked_for(self):
        boots = commands().boots(["irq"], Path("/l"))
        self.assertEqual([(b.monitor, b.face, b.ioeventfd) for b in boots], [
            ("ember", "legacy", True), ("qemu", "legacy", True), ("floor", "legacy", True),
            ("ember", "modern", True), ("qemu", "modern", True), ("floor", "modern", True)])
        self.assertEqual(commands().boots(["startup"], Path("/l")), [])


if __name__ == "__main__":
    unittest.main()
