"""switch.Session: the BENCH round lines read from the console file, each checked against the
counters the API gives, and the path switched after every round but the last."""
import tempfile
import unittest
from pathlib import Path

from bench import switch
from harness.apiclient import ApiError


class FakeApi:
    """Counts kicks the way ember would: each round's kicks go the way the path is set."""

    def __init__(self, straddle=False):
        self.ioeventfd = True
        self.kicks = [0, 0]  # ioeventfd, userspace
        self.patches = []
        self.straddle = straddle
        self.fail = False

    def run_round(self, count):
        self.kicks[0 if self.ioeventfd else 1] += count
        if self.straddle:
            self.kicks[1 if self.ioeventfd else 0] += count // 2

    def get(self, target):
        if self.fail:
            raise ApiError("GET /ember/counters: status 400: the microVM has stopped")
        assert target == "/ember/counters"
        return {"devices": [{"id": "rng0", "kicks": {"ioeventfd": 9, "userspace": 0}},
                            {"id": "blk0", "kicks": {"ioeventfd": self.kicks[0],
                                                     "userspace": self.kicks[1]}}]}

    def patch(self, target, body):
        assert target == "/ember/devices/blk0"
        self.patches.append(body)
        self.ioeventfd = body["ioeventfd"]


class SessionTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.out = Path(self.dir.name) / "console.out"
        self.out.write_text("ember test guest: tests=bench-kick\n")

    def tearDown(self):
        self.dir.cleanup()

    def guest_round(self, api, n, count=1000, cycles=3_000_000):
        api.run_round(count)
        with open(self.out, "a") as f:
            f.write(f"BENCH kick face=modern round={n} count={count} cycles={cycles} "
                    f"tsc_khz=2596146 tsc=cpuid ns=1.2\n")

    def test_rounds_alternate_and_the_last_is_not_switched(self):
        api = FakeApi()
        s = switch.Session(self.out, api, total=4)
        self.assertIsNone(s.watch(0.0))  # nothing yet
        for n in range(1, 5):
            self.guest_round(api, n, cycles=1_000_000 * n)
            self.assertIsNone(s.watch(0.1 * n))
            self.assertIsNone(s.watch(0.1 * n))  # a line is handled once
        self.assertEqual([r.ioeventfd for r in s.rounds], [True, False, True, False])
        self.assertEqual(api.patches, [{"ioeventfd": False}, {"ioeventfd": True},
                                       {"ioeventfd": False}])
        self.assertTrue(all(r.valid for r in s.rounds))
        self.assertEqual([(r.eventfd_kicks, r.userspace_kicks) for r in s.rounds],
                         [(1000, 0), (0, 1000), (1000, 0), (0, 1000)])
        self.assertEqual(s.rounds[2].cycles, 3_000_000)

    def test_a_line_half_written_waits_for_its_end(self):
        api = FakeApi()
        s = switch.Session(self.out, api, total=2)
        api.run_round(1000)
        with open(self.out, "a") as f:
            f.write("BENCH kick face=modern round=1 count=1000 cycl")
        self.assertIsNone(s.watch(0.0))
        self.assertEqual(s.rounds, [])
        with open(self.out, "a") as f:
            f.write("es=5 tsc_khz=1 tsc=cpuid ns=1\n")
        self.assertIsNone(s.watch(0.1))
        self.assertEqual([r.cycles for r in s.rounds], [5])

    def test_a_round_whose_kicks_went_both_ways_is_not_valid(self):
        api = FakeApi(straddle=True)
        s = switch.Session(self.out, api, total=2)
        self.guest_round(api, 1)
        s.watch(0.0)
        self.assertFalse(s.rounds[0].valid)
        # The ioeventfd count may lag by 1%: still valid.
        self.assertTrue(switch.Round(1, True, 1, 1000, 990, 10).valid)
        self.assertFalse(switch.Round(1, False, 1, 1000, 11, 1000).valid)

    def test_an_api_error_stops_the_run_with_its_line(self):
        api = FakeApi()
        api.fail = True
        s = switch.Session(self.out, api, total=2)
        self.guest_round(api, 1)
        stop = s.watch(0.0)
        self.assertEqual(stop.kind, "api")
        self.assertIn("the microVM has stopped", stop.message)
        self.assertIn("the microVM has stopped", s.error)


if __name__ == "__main__":
    unittest.main()
