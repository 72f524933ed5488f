"""tests/boot/l1-exec under busybox sh, with a fake `ember exec` that flakes on demand: `run`'s
retries after a stall or a crashed vCPU, their FLAKE lines, and what is not a flake; the
arguments of a resumed suite (--skip, --value), the cases skipped with them, and the case table
against the checks the cases print."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness import execsuite
from harness.shell import ROOT

from . import fixtures

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


class L1Exec(unittest.TestCase):
    """The fake ember in a scratch directory, and l1-exec's functions sourced with it."""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="test-l1-exec."))
        self.ember = self.dir / "ember"
        self.ember.write_text(FAKE)
        self.ember.chmod(0o755)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_case(self, plan: list[str], body: str,
                 args: str = "/k 6.1.0-x") -> subprocess.CompletedProcess:
        (self.dir / "plan").write_text("".join(p + "\n" for p in plan))
        env = dict(os.environ, L1_EXEC_FUNCTIONS_ONLY="1", L1_EXEC_EMBER=str(self.ember),
                   L1_EXEC_WORK=str(self.dir))
        script = f'. "{SCRIPT}" {args}\n{body}\necho "status=$status flakes=$flakes"\n'
        return subprocess.run([BUSYBOX, "sh", "-c", script], env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=60)

    def calls(self) -> int:
        return int((self.dir / "calls").read_text())


@unittest.skipIf(BUSYBOX is None, "needs busybox (busybox-static)")
class RunTest(L1Exec):
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
        # Each run says on the L1's console that it starts: the host sees the L1 alive.
        self.assertEqual(re.findall(r"run x: attempt ([0-9]) of 3 at [0-9.]+ s of uptime", r.stderr),
                         ["1", "2", "3"])

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



# The case table (run_cases) as `FUNCTION CHECK...` lines, with suite_case replaced.
TABLE = 'suite_case() { echo "$*"; }\nrun_cases'


@unittest.skipIf(BUSYBOX is None, "needs busybox (busybox-static)")
class ResumeTest(L1Exec):
    """A suite resumed after an L1 that did not finish: --skip, --value and suite_case."""

    def counts(self, r: subprocess.CompletedProcess) -> str:
        return re.findall(r"^passed=.*$", r.stdout, re.M)[-1]

    def test_the_arguments(self):
        r = self.run_case([], 'echo "verbose=$verbose skip=[$skip_checks] k=$kernel r=$release"\n'
                          'echo "a=$(earlier_value a) b=$(earlier_value b) c=$(earlier_value c)"',
                          "--verbose --skip uname --value a=1 --skip out-err --value b=x,y /k 6.1.0-x")
        self.assertIn("verbose=1 skip=[ uname out-err ] k=/k r=6.1.0-x", r.stdout)
        self.assertIn("a=1 b=x,y c=", r.stdout)

    def test_a_wrong_command_line(self):
        r = self.run_case([], "", "--skip uname /k")
        self.assertEqual(r.returncode, 2)
        self.assertIn("l1-exec: usage: l1-exec [--verbose] [--skip CHECK]...", r.stderr)

    def test_a_case_whose_checks_all_passed_is_not_run(self):
        r = self.run_case(["status 3"], 'suite_case case_status_and_env status-3 cwd-env-ids\n'
                          'echo "passed=$passed failed=$failed skipped=$skipped"',
                          "--skip status-3 --skip cwd-env-ids /k 6.1.0-x")
        self.assertEqual([line for line in r.stdout.splitlines() if line.startswith("SKIP")], [
            "SKIP status-3: passed in an earlier attempt",
            "SKIP cwd-env-ids: passed in an earlier attempt"])
        self.assertEqual(self.counts(r), "passed=2 failed=0 skipped=2")
        self.assertFalse((self.dir / "calls").exists())  # no ember exec at all

    def test_a_case_with_a_check_not_passed_yet_runs_whole(self):
        # status-3 passed but cwd-env-ids did not print (the L1 froze between them): both run.
        r = self.run_case(["status 3"], 'suite_case case_status_and_env status-3 cwd-env-ids\n'
                          'echo "passed=$passed failed=$failed skipped=$skipped"',
                          "--skip status-3 /k 6.1.0-x")
        self.assertNotIn("SKIP", r.stdout)
        self.assertIn("PASS status-3", r.stdout)
        self.assertIn("FAIL cwd-env-ids", r.stdout)  # the fake prints 'out', not the environment
        self.assertEqual(self.counts(r), "passed=1 failed=1 skipped=0")
        self.assertEqual(self.calls(), 1)

    def test_panic_takes_exec_trues_median_from_an_earlier_attempt(self):
        body = 'case_panic\necho "limit=$limit"'
        self.assertIn("limit=28.5", self.run_case(
            ["status 255"], body, "--value exec-true-wall-s=8.5 /k 6.1.0-x").stdout)
        # This attempt's own median wins; with neither, the 40 s default.
        self.assertIn("limit=23.0", self.run_case(
            ["status 255"], "true_median=3\n" + body, "--value exec-true-wall-s=8.5 /k 6.1.0-x").stdout)
        self.assertIn("limit=60.0", self.run_case(["status 255"], body).stdout)

    def test_the_table_is_the_suites_checks_in_order(self):
        table = [line.split() for line in self.run_case([], TABLE).stdout.splitlines()
                 if line.startswith("case_")]
        checks = [c for _, *cs in table for c in cs]
        report = execsuite.parse(fixtures.text("exec-suite-passed.txt"))
        self.assertEqual(checks, [name for name, _ in report.results])
        # And each check is one its function prints (pass/fail NAME or expect_* NAME).
        script = SCRIPT.read_text()
        for function, *names in table:
            body = re.search(rf"^{function}\(\) {{\n(.*?)^}}", script, re.M | re.S)
            self.assertIsNotNone(body, function)
            for name in names:
                self.assertRegex(body.group(1), rf"\b(pass|fail|expect_status|expect_setup_error) "
                                 rf"{re.escape(name)}\b", (function, name))


if __name__ == "__main__":
    unittest.main()
