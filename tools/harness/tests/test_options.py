import unittest

from harness import options
from harness.output import UsageError


def parse(*argv, env=None):
    return options.parse(list(argv), env or {})


class ParseTest(unittest.TestCase):
    def test_defaults(self):
        o = parse()
        self.assertEqual((o.mode, o.timeout, o.monitor, o.ioeventfd), ("auto", 300, "ember", "on"))
        self.assertTrue(o.devices)
        self.assertEqual((o.cpus, o.memory, o.ember_args), ("1", "256M", []))
        self.assertTrue(o.cache.endswith("build/linux"))

    def test_cache_from_the_environment(self):
        self.assertEqual(parse(env={"EMBER_LINUX_CACHE": "/c"}).cache, "/c")
        self.assertEqual(parse("--cache", "/d", env={"EMBER_LINUX_CACHE": "/c"}).cache, "/d")

    def test_values_both_ways(self):
        o = parse("--timeout=180", "--ember", "/e", "--ioeventfd=off", "--monitor", "ember",
                  "--cache=/c")
        self.assertEqual((o.timeout, o.ember, o.ioeventfd, o.cache), (180, "/e", "off", "/c"))

    def test_cpus_and_memory_are_expectations_and_ember_options(self):
        o = parse("--cpus", "2", "--memory", "512M", "--net", "tap=x")
        self.assertEqual((o.cpus, o.memory), ("2", "512M"))
        self.assertEqual(o.ember_args, ["--cpus", "2", "--memory", "512M", "--net", "tap=x"])
        self.assertTrue(o.other_ember_args)
        o = parse("--cpus=3", "-m", "1G")
        self.assertEqual((o.cpus, o.memory, o.ember_args), ("3", "1G", ["--cpus=3", "-m", "1G"]))
        self.assertFalse(o.other_ember_args)

    def test_harness_options_do_not_reach_ember(self):
        o = parse("--l1", "--legacy", "--no-devices", "--rng", "--disk", "a.img,readonly",
                  "--disk=b.img", "--cmdline", "quiet=1", "--log-level", "info", "--verbose")
        self.assertEqual(o.ember_args, [])
        self.assertEqual((o.mode, o.legacy, o.devices, o.user_rng), ("l1", True, False, True))
        self.assertEqual(o.user_disks, ["a.img,readonly", "b.img"])
        self.assertEqual((o.user_cmdline, o.log_level, o.verbose), ("quiet=1", "info", True))

    def test_an_empty_cmdline_is_a_value(self):
        self.assertEqual(parse("--cmdline", "").user_cmdline, "")

    def test_help_wins_over_later_errors(self):
        self.assertTrue(parse("--help", "--timeout", "x").help)
        self.assertTrue(parse("-h").help)

    def test_usage_errors(self):
        for argv, message in [
            (["--kernel", "k"], "boots its own kernel"),
            (["--initrd=i"], "boots its own kernel"),
            (["--timeout", "0"], "positive number"),
            (["--timeout", "5s"], "positive number"),
            (["--cpus", "two"], "wants a number"),
            (["--ioeventfd", "maybe"], "on or off"),
            (["--monitor", "kvmtool"], "ember or qemu"),
            (["--monitor", "qemu"], "bare machine"),
            (["--monitor", "qemu", "--no-devices", "--net", "tap=x"], "bare machine"),
            (["--memory", "12X"], "not a size"),
            (["--memory", "5B"], "not a size"),
            (["--ember"], "--ember needs a path"),
            (["--disk", ""], "--disk needs"),
        ]:
            with self.subTest(argv=argv):
                with self.assertRaises(UsageError) as cm:
                    parse(*argv)
                self.assertIn(message, str(cm.exception))
                self.assertEqual(cm.exception.status, 2)

    def test_qemu_with_a_bare_machine(self):
        o = parse("--monitor", "qemu", "--no-devices", "--cpus", "2", "--memory", "512M")
        self.assertEqual(o.monitor, "qemu")


class ModeTest(unittest.TestCase):
    def test_auto(self):
        o = parse()
        options.resolve_mode(o, hardware_virt=False)
        self.assertEqual(o.mode, "l1")
        o = parse()
        options.resolve_mode(o, hardware_virt=True)
        self.assertEqual(o.mode, "direct")

    def test_net_balloon_needs_the_l1(self):
        o = parse("--direct", "--net-balloon")
        with self.assertRaises(UsageError):
            options.resolve_mode(o, hardware_virt=True)
        o = parse("--net-balloon")
        options.resolve_mode(o, hardware_virt=False)
        self.assertEqual(o.mode, "l1")

    def test_cpu_flags(self):
        self.assertTrue(options.hardware_virt("flags\t: fpu vme svm lahf_lm\n"))
        self.assertTrue(options.hardware_virt("flags\t: fpu vmx\n"))
        self.assertFalse(options.hardware_virt("flags\t: fpu vme svmx xsave\n"))


class MemoryTest(unittest.TestCase):
    def test_sizes_as_ember_reads_them(self):
        self.assertEqual(options.memory_kib("512M"), 512 * 1024)
        self.assertEqual(options.memory_kib("512"), 512 * 1024)
        self.assertEqual(options.memory_kib("2g"), 2 << 20)
        self.assertEqual(options.memory_kib("1GiB"), 1 << 20)
        self.assertEqual(options.memory_kib("64K"), 64)
        self.assertEqual(options.memory_kib("1T"), 1 << 30)


if __name__ == "__main__":
    unittest.main()
