import contextlib
import io
import json
import tempfile
import unittest
from pathlib import Path

from harness import record
from harness.record import RecordError

from . import fixtures


def parse(obj):
    return record.parse(obj, "r.json")


class ReadTest(unittest.TestCase):
    def test_a_linux_power_off(self):
        r = record.loads(fixtures.text("record-linux-poweroff.json"), "r.json")
        self.assertEqual((r.version, r.exit.reason, r.exit.status), ("0.1.0", "power-off", 0))
        self.assertEqual([d.id for d in r.devices], ["blk0", "blk1", "blk2", "rng0"])
        blk = r.device("blk1")
        self.assertEqual((blk.type, blk.name, blk.face, blk.ioeventfd, blk.activations),
                         ("virtio-blk", "virtio-blk /dev/vdb", "modern", True, 1))
        self.assertGreater(blk.kicks_ioeventfd, 0)
        self.assertEqual(blk.kicks_userspace, 0)
        self.assertEqual(len(r.vcpus), 2)
        self.assertEqual(set(r.vcpus[1].exits), set(record.VCPU_EXITS))
        self.assertIsNone(r.device("net0"))

    def test_debug_exit_and_a_device_never_activated(self):
        r = record.loads(fixtures.text("record-ioeventfd-off.json"), "r.json")
        self.assertEqual((r.exit.reason, r.exit.debug_exit_value), ("debug-exit", 0))
        self.assertEqual(r.device("blk0").face, "legacy")
        self.assertFalse(r.device("blk0").ioeventfd)
        self.assertIsNone(r.device("rng0").face)

    def test_a_startup_error(self):
        r = record.loads(fixtures.text("record-startup-error.json"), "r.json")
        self.assertEqual((r.exit.reason, r.exit.status, r.vcpus, r.devices),
                         ("startup-error", 1, (), ()))
        self.assertIn("cannot open kernel", r.exit.message)

    def test_a_vcpu_crash_and_a_signal(self):
        obj = fixtures.record("record-startup-error.json")
        obj["exit"] = {"reason": "vcpu-crash", "status": 3, "message": "m", "vcpu": 1,
                       "exit_reason": "KVM_EXIT_SHUTDOWN", "rip": "0xfff0"}
        e = parse(obj).exit
        self.assertEqual((e.vcpu, e.exit_reason, e.rip), (1, "KVM_EXIT_SHUTDOWN", "0xfff0"))
        obj["exit"]["rip"] = None  # ember could not read it
        self.assertIsNone(parse(obj).exit.rip)
        obj["exit"] = {"reason": "signal", "status": 143, "message": "received TERM",
                       "signal": "TERM"}
        self.assertEqual(parse(obj).exit.signal, "TERM")

    def test_extra_keys_are_allowed(self):
        obj = fixtures.record("record-debug-exit.json")
        obj["future"] = 1
        obj["devices"][0]["queues"] = []
        self.assertEqual(parse(obj).device("blk0").requests, 212)


class MalformedTest(unittest.TestCase):
    def assertRejects(self, obj, message):
        with self.assertRaises(RecordError) as cm:
            parse(obj)
        self.assertIn(message, str(cm.exception))
        self.assertTrue(str(cm.exception).startswith("r.json: "))
        self.assertNotIn("\n", str(cm.exception))

    def test_each_missing_or_wrong_key_is_named(self):
        def case(change):
            obj = fixtures.record("record-debug-exit.json")
            change(obj)
            return obj
        self.assertRejects([], "the record should be an object")
        self.assertRejects(case(lambda o: o.pop("exit")), "exit is missing")
        self.assertRejects(case(lambda o: o["ember"].pop("version")), "ember.version is missing")
        self.assertRejects(case(lambda o: o["exit"].update(reason="halt")), "exit.reason should be")
        self.assertRejects(case(lambda o: o["exit"].update(status="0")),
                           "exit.status should be a non-negative integer, got \"0\"")
        self.assertRejects(case(lambda o: o["exit"].pop("debug_exit_value")),
                           "exit.debug_exit_value is missing")
        self.assertRejects(case(lambda o: o.update(run_time_s="1")), "run_time_s should be")
        self.assertRejects(case(lambda o: o.update(vcpus={})), "vcpus should be an array")
        self.assertRejects(case(lambda o: o["vcpus"][0]["exits"].pop("hlt")),
                           "vcpus[0].exits.hlt is missing")
        self.assertRejects(case(lambda o: o["devices"][1]["kicks"].update(userspace=True)),
                           "devices[1].kicks.userspace should be a non-negative integer, got true")
        self.assertRejects(case(lambda o: o["devices"][0].update(ioeventfd=1)),
                           "devices[0].ioeventfd should be true or false")
        self.assertRejects(case(lambda o: o["devices"][0].update(face="new")),
                           "devices[0].face should be modern, legacy or null")
        self.assertRejects(case(lambda o: o["devices"][0].update(type="virtio-gpu")),
                           "devices[0].type should be one of")
        self.assertRejects(case(lambda o: o["devices"][0].update(id="rng0")),
                           "devices[0].id of a virtio-blk should be blkN")
        self.assertRejects(case(lambda o: o["devices"][1].update(id="blk0", type="virtio-blk")),
                           "devices has an id twice")
        self.assertRejects(case(lambda o: o["devices"][0]["interrupts"].update(msix=-1)),
                           "devices[0].interrupts.msix should be a non-negative integer, got -1")

    def test_a_crash_without_its_details(self):
        obj = fixtures.record("record-startup-error.json")
        obj["exit"] = {"reason": "vcpu-crash", "status": 3, "message": "m", "vcpu": 0,
                       "exit_reason": "KVM_EXIT_SHUTDOWN", "rip": "fff0"}
        self.assertRejects(obj, "exit.rip should be a hex address")
        obj["exit"]["rip"] = "0xfff0"
        del obj["exit"]["vcpu"]
        self.assertRejects(obj, "exit.vcpu is missing")

    def test_a_startup_error_with_devices(self):
        obj = fixtures.record("record-debug-exit.json")
        obj["exit"] = {"reason": "startup-error", "status": 1, "message": "m"}
        self.assertRejects(obj, "a startup-error record should have no vcpus, no devices")


class ExitWordsTest(unittest.TestCase):
    def test_words_for_shell_scripts(self):
        r = record.loads(fixtures.text("record-debug-exit.json"), "r")
        self.assertEqual(record.exit_words(r), "reason=debug-exit status=0 debug_exit_value=0")
        obj = fixtures.record("record-startup-error.json")
        obj["exit"] = {"reason": "vcpu-crash", "status": 3, "message": "m", "vcpu": 0,
                       "exit_reason": "KVM_EXIT_INTERNAL_ERROR", "rip": "0xffffffff8104c1d0"}
        self.assertEqual(record.exit_words(parse(obj)),
                         "reason=vcpu-crash status=3 vcpu=0 exit_reason=KVM_EXIT_INTERNAL_ERROR "
                         "rip=0xffffffff8104c1d0")

    def test_main(self):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            self.assertEqual(record.main([str(fixtures.DIR / "record-startup-error.json")]), 0)
        self.assertEqual(out.getvalue(), "reason=startup-error status=1\n")
        with contextlib.redirect_stderr(io.StringIO()) as err:
            self.assertEqual(record.main(["/nonexistent/r.json"]), 1)
            self.assertEqual(record.main([]), 2)
        self.assertIn("error: /nonexistent/r.json: no run record", err.getvalue())


class FileTest(unittest.TestCase):
    def test_missing_empty_and_not_json(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "r.json"
            with self.assertRaisesRegex(RecordError, r"r\.json: no run record \(ember did not"):
                record.load(path)
            path.write_text("")
            with self.assertRaisesRegex(RecordError, "the run record is empty"):
                record.load(path)
            path.write_text('{"ember": ')
            with self.assertRaisesRegex(RecordError, r"r\.json: not JSON"):
                record.load(path)
            path.write_text(json.dumps(fixtures.record("record-debug-exit.json")) + "\n")
            self.assertEqual(record.load(path).exit.reason, "debug-exit")


if __name__ == "__main__":
    unittest.main()
