import unittest

from harness import flake, record
from harness.flake import Boot
from harness.proc import Stop

from . import fixtures

PASSED_L2 = "3 passed, 0 failed"


def boot(**kw):
    """A passing boot in the L1, changed by kw."""
    b = dict(mode="l1", monitor="ember", status=0, stop=None,
             l1_console=fixtures.text("l1-passed.txt"), monitor_status=0, summary=PASSED_L2)
    b.update(kw)
    return Boot(**b)


def vcpu_crash_exit():
    return record.parse(fixtures.record("record-startup-error.json") | {"exit": {
        "reason": "vcpu-crash", "status": 3, "message": "vCPU 1: KVM_EXIT_SHUTDOWN",
        "vcpu": 1, "exit_reason": "KVM_EXIT_SHUTDOWN", "rip": "0xfff0"}}, "r").exit


class ClassifyTest(unittest.TestCase):
    def verdict(self, b, kind, status, *problems):
        v = flake.classify(b)
        self.assertEqual((v.kind, v.status), (kind, status), v.problems)
        for p in problems:
            self.assertTrue(any(p in q for q in v.problems), f"{p!r} not in {v.problems}")
        return v

    def test_passed(self):
        v = self.verdict(boot(), "passed", 0)
        self.assertEqual(v.problems, ())
        self.verdict(boot(mode="direct", l1_console=""), "passed", 0)

    def test_stall_at_the_timeout(self):
        # The guest's console stopped between two checks; the harness ended QEMU at the timeout.
        v = self.verdict(boot(status=None, stop=Stop("timeout", "timed out after 180 s"),
                              l1_console="", monitor_status=None, summary=""),
                         "stall", 3, "timed out after 180 s", "the guest printed no report")
        self.assertEqual(v.problems[0], "timed out after 180 s")

    def test_host_silence_watchdog_directly(self):
        self.verdict(boot(mode="direct", status=None, l1_console="", monitor_status=None,
                          stop=Stop("silence", "the guest's console was silent for 90 s"),
                          summary=""),
                     "stall", 3, "stalled: the guest's console was silent for 90 s and the "
                     "harness ended ember")

    def test_a_frozen_l1(self):
        # The host's rule (watchdog.AllSilent): neither console grew, so the harness ended QEMU.
        v = self.verdict(boot(monitor="l1-exec", status=None, monitor_status=None, summary="",
                              stop=Stop("l1-frozen", "the L1 froze: neither of its consoles grew "
                                        "for 240 s")),
                         "l1-frozen", flake.STALLED, "the guest printed no report")
        self.assertEqual(v.problems[0], "stalled: the L1 froze: neither of its consoles grew for "
                         "240 s, and the harness ended its QEMU")
        self.assertIn(v.status, flake.FLAKES)

    def test_the_l1_watchdog(self):
        self.verdict(boot(l1_console=fixtures.text("l1-watchdog-stall.txt"), monitor_status=143,
                          summary=""),
                     "watchdog-stall", 3, "the L1's watchdog ended ember",
                     "the guest printed no report")

    def test_l1_panic(self):
        # With panic=-1 the L1 reboots, which -no-reboot turns into QEMU's exit with status 0.
        self.verdict(boot(l1_console=fixtures.text("l1-panic.txt"), monitor_status=None,
                          summary=""),
                     "l1-fault", 4, "the L1 kernel failed under the monitor (Kernel panic - not "
                     "syncing: corrupted stack end detected inside scheduler)")

    def test_l1_soft_lockup_wins_over_the_stop(self):
        self.verdict(boot(l1_console=fixtures.text("l1-soft-lockup.txt"), status=None,
                          stop=Stop("l1-fault", "the L1 kernel failed"), monitor_status=None),
                     "l1-fault", 4, "BUG: soft lockup - CPU#0 stuck for 23s! [vcpu0:141]")

    def test_nested_vcpu_crash(self):
        self.verdict(boot(l1_console=fixtures.text("l1-vcpu-crash.txt"), monitor_status=3,
                          summary="", exit=vcpu_crash_exit()),
                     "vcpu-crash", 4, "ember exited with status 3 (KVM_EXIT_SHUTDOWN on vCPU 1 at "
                     "rip 0xfff0)")

    def test_l1_reset(self):
        # Seen 2026-12-01 in --l1 --no-devices --verbose: the L1 console ends while ember runs,
        # and QEMU (-no-reboot) exits with status 0 at the L1's reset.
        v = self.verdict(boot(l1_console=fixtures.text("l1-reset.txt"), monitor_status=None,
                              summary=""),
                         "l1-reset", 4, "QEMU exited with status 0", "triple-faulted")
        self.assertIn("the guest printed no report", v.problems)

    def test_qemu_failing_without_a_status_is_not_a_flake(self):
        self.verdict(boot(status=1, l1_console="", monitor_status=None, summary=""),
                     "failed", 1, "the L1 did not report ember's exit status (QEMU status 1)")

    def test_a_crash_outside_the_l1_is_a_plain_failure(self):
        self.verdict(boot(mode="direct", status=3, l1_console="", monitor_status=3,
                          exit=vcpu_crash_exit()), "failed", 1, "ember exited with status 3")
        self.verdict(boot(monitor="qemu", monitor_status=3), "failed", 1,
                     "qemu exited with status 3")

    def test_report_printed_but_no_exit(self):
        self.verdict(boot(status=None, stop=Stop("timeout", "timed out after 300 s"),
                          monitor_status=None),
                     "failed", 1, "timed out after 300 s: the guest printed its report but ember "
                     "did not exit")
        self.verdict(boot(status=None, stop=Stop("no-exit", "the guest printed its report but "
                                                 "ember did not exit within 60 s of it"),
                          monitor_status=None), "failed", 1, "within 60 s")

    def test_the_guest_or_the_host_checks_failing(self):
        self.verdict(boot(summary="11 passed, 1 failed"), "failed", 1,
                     "the guest reported: 11 passed, 1 failed")
        self.verdict(boot(summary="0 passed, 0 failed"), "failed", 1, "the guest reported")
        self.verdict(boot(host_failed=1, host_total=5), "failed", 1, "1 of 5 host checks failed")
        self.verdict(boot(summary=""), "failed", 1, "the guest printed no report")

    def test_a_flake_keeps_its_status_when_the_checks_fail_too(self):
        self.verdict(boot(l1_console=fixtures.text("l1-vcpu-crash.txt"), monitor_status=3,
                          summary="", host_failed=2, host_total=5), "vcpu-crash", 4,
                     "2 of 5 host checks failed")

    def test_the_flake_statuses_are_the_ones_retried(self):
        self.assertEqual(set(flake.FLAKES), {flake.STALLED, flake.NESTED_CRASH})


if __name__ == "__main__":
    unittest.main()
