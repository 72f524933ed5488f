"""tests/boot/l1-exec's `run` under busybox sh, with a fake `ember exec` that flakes on demand: the
retries after a stall or a crashed vCPU, their FLAKE lines, and what is not a flake."""
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness.shell import ROOT

SCRIPT = ROOT / "tests/boot/l1-exec"
BUSYBOX = shutil.which("busybox")

# The fake ember: its Nth call (counted in $work/calls) does what line N of $work/plan says:
#   status S          exit S
#   crash             write a run record of a vCPU crash, exit 125
# and it records its arguments (one line per call) in $work/argv.
FAKE = """#!/bin/sh
work="$(dirname "$0")"
n=$(($(cat "$work/calls" 2>/dev/null || echo 0) + 1))
echo "$n" >"$work/calls"
echo "$*" >>"$work/argv"
report=""
while [ $# -gt 0 ]; do
  [ "$1" = --report ] && report="$2"
  shift
done
step="$(sed -n "${n}p" "$work/plan")"
case "$step" in
crash)
  echo '{"exit":{"reason":"vcpu-crash","exit_reason":"KVM_EXIT_SHUTDOWN"}}' >"$report"
  echo "ember exec: the guest's vCPU crashed" >&2
  exit 125 ;;
status*) echo out; exit "${step#status }" ;;
esac
exit 99
"""


@unittest.skipIf(BUSYBOX is None, "needs busybox (busybox-static)")
class RunTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="test-l1-exec."))
        self.ember = self.dir / "ember"
        self.ember.write_text(FAKE)
        self.ember.chmod(0o755)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_case(self, plan: list[str], body: str) -> subprocess.CompletedProcess:
        (self.dir / "plan").write_text("".join(p + "\n" for p in plan))
        env = dict(os.environ, L1_EXEC_FUNCTIONS_ONLY="1", L1_EXEC_EMBER=str(self.ember),
                   L1_EXEC_WORK=str(self.dir))
        script = f'. "{SCRIPT}" /k 6.1.0-x\n{body}\necho "status=$status flakes=$flakes"\n'
        return subprocess.run([BUSYBOX, "sh", "-c", script], env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=60)

    def calls(self) -> int:
        return int((self.dir / "calls").read_text())

    def test_a_run_that_works_runs_once(self):
        r = self.run_case(["status 7"], "run x -- sh -c 'exit 7'")
        self.assertIn("status=7 flakes=0", r.stdout)
        self.assertNotIn("FLAKE", r.stdout)
        self.assertEqual(self.calls(), 1)
        argv = (self.dir / "argv").read_text()
        self.assertIn("exec --kernel /k --log ", argv)
        self.assertIn("--timeout 90 -- sh -c exit 7", argv)
        self.assertEqual((self.dir / "runs/x/out").read_text(), "out\n")

    def test_a_stall_and_a_crash_are_tried_again(self):
        r = self.run_case(["status 124", "crash", "status 0"], "run x -- true")
        self.assertIn("status=0 flakes=2", r.stdout)
        lines = [line for line in r.stdout.splitlines() if line.startswith("FLAKE")]
        self.assertEqual(lines, [
            "FLAKE x: attempt 1 of 3: stalled: ember exec reached its --timeout of 90 s",
            'FLAKE x: attempt 2 of 3: the nested guest\'s vCPU crashed ("exit_reason":"KVM_EXIT_SHUTDOWN")'])
        self.assertEqual(self.calls(), 3)
        self.assertIn("case x: ember exec", r.stderr)  # each flake's run shown on the console

    def test_the_third_flake_is_final(self):
        r = self.run_case(["status 124"] * 4, "run x -- true")
        self.assertIn("status=124 flakes=3", r.stdout)
        self.assertIn("FLAKE x: attempt 3 of 3", r.stdout)
        self.assertEqual(self.calls(), 3)

    def test_a_timeout_the_case_asked_for_is_no_flake(self):
        r = self.run_case(["status 124"], "case_timeout=5 expect_timeout=1\nrun t -- sleep 60")
        self.assertIn("status=124 flakes=0", r.stdout)
        self.assertEqual(self.calls(), 1)
        self.assertIn("--timeout 5 -- sleep 60", (self.dir / "argv").read_text())

    def test_other_failures_are_no_flakes(self):
        r = self.run_case(["status 125"], "run x -- true\nexpect_status x 0")
        self.assertIn("FAIL x: exit status 125, want 0", r.stdout)
        self.assertIn("status=125 flakes=0", r.stdout)
        self.assertEqual(self.calls(), 1)

    def test_the_environment_word(self):
        (self.dir / "plan").write_text("status 0\n")
        self.ember.write_text('#!/bin/sh\necho "$EMBER_VIRTIOFSD"\n')
        r = self.run_case([], "case_env=EMBER_VIRTIOFSD=/nonexistent\nrun x -- true\n"
                              'cat "$dir/out"\ncase_env=""\nrun y -- true\ncat "$dir/out"')
        self.assertEqual(r.stdout.splitlines()[:2], ["/nonexistent", ""])


if __name__ == "__main__":
    unittest.main()
