"""--api: the getting-started requests made from the plan, ember's own arguments, the lines
tests/boot/l1-api reads, and the host check of what it said."""
import json
import unittest

from harness import apiplan, hostchecks, options
from harness.output import UsageError

from .test_hostchecks import context
from .test_plan import make


class ApiPlanTest(unittest.TestCase):
    def test_the_sequence_with_a_root_drive_a_network_interface_and_a_balloon(self):
        o, p = make("--api", "--net-balloon", "--cpus", "2", "--memory", "512M")
        reqs = apiplan.requests(o, p)
        self.assertEqual([(m, path) for m, path, _ in reqs], [
            ("PUT", "/boot-source"), ("PUT", "/drives/ember-data"), ("PUT", "/drives/ember-scratch"),
            ("PUT", "/drives/ember-readonly"), ("PUT", "/network-interfaces/eth0"),
            ("PUT", "/balloon"), ("PUT", "/machine-config"), ("PUT", "/actions")])
        boot = reqs[0][2]
        self.assertEqual(boot["kernel_image_path"], "/ember/vmlinux")
        self.assertIn(" ember.cad=1 ember.root-arg=1 ", boot["boot_args"])
        self.assertEqual(reqs[1][2], {"drive_id": "ember-data",
                                      "path_on_host": "@l1disk:ember-l1-disk0",
                                      "is_root_device": True, "is_read_only": False})
        self.assertEqual(reqs[3][2]["is_read_only"], True)
        self.assertEqual(reqs[4][2]["guest_mac"], "52:54:00:e3:be:01")
        self.assertEqual(reqs[5][2], {"amount_mib": 32, "deflate_on_oom": False})
        self.assertEqual(reqs[6][2], {"vcpu_count": 2, "mem_size_mib": 512})
        self.assertEqual(reqs[7][2], {"action_type": "InstanceStart"})
        # ember gets the socket and what the API has no field for.
        self.assertEqual(apiplan.ember_args(p), ["run", "--api-sock", apiplan.SOCKET, "--id",
                                                 "linux-boot-l1", "--rng", "--log-level", "debug"])
        lines = apiplan.text(reqs).splitlines()
        self.assertEqual(len(lines), 8)
        method, path, body = lines[6].split(" ", 2)
        self.assertEqual((method, path, json.loads(body)), ("PUT", "/machine-config", reqs[6][2]))

    def test_what_the_api_cannot_say_is_refused(self):
        for argv in (["--api", "--ioeventfd=off"], ["--api", "--monitor", "qemu", "--no-devices"],
                     ["--api", "--disk", "x.img"], ["--api", "--exec-suite"]):
            with self.assertRaises(UsageError, msg=argv):
                options.parse(argv, {})
        with self.assertRaisesRegex(UsageError, "needs --l1"):
            options.resolve_mode(options.parse(["--api", "--direct"], {}), hardware_virt=True)


class SnapshotTest(unittest.TestCase):
    """--snapshot: the guest's last check, the host check, and what it needs."""

    def said(self, *lines):
        restored = ("ember: info: restore: 2 vCPU(s), 6 PCI device(s) and 512 MiB of RAM from "
                    "/tmp/snapshot/vm.state and /tmp/snapshot/vm.mem in 41.25 ms\r\n")
        return restored + "".join(f"linux-boot-l1: snapshot: {line}\r\n" for line in lines)

    steps = ("PATCH /vm Paused -> 204",
             "PUT /snapshot/create -> 204 in 2.31 s: state 70000 bytes, memory file 536875008 "
             "bytes (9000 KiB on disk)",
             "ember (pid 201) killed with SIGKILL",
             "restored: ember (pid 230) answered GET / -> 200 (Running) 0.52 s after the kill",
             'PATCH /balloon {"amount_mib": 0} -> 204')

    def test_the_check_runs_last_and_needs_the_api_and_the_tap(self):
        o, p = make("--api", "--net-balloon", "--snapshot")
        self.assertEqual(p.checks[-1], "snapshot")
        self.assertIn("-snapshot", p.variant)
        c = context("--api", "--net-balloon", "--snapshot")
        self.assertEqual(hostchecks.names(c)[-3:],
                         ["host-api", "host-snapshot", "host-acpi-poweroff"])
        self.assertNotIn("host-snapshot", hostchecks.names(context("--api", "--net-balloon")))
        for argv in (["--snapshot"], ["--api", "--snapshot"], ["--net-balloon", "--snapshot"]):
            with self.assertRaisesRegex(UsageError, "needs --api and --net-balloon", msg=argv):
                options.parse(argv, {})

    def test_every_step_answered(self):
        c = context("--api", "--net-balloon", "--snapshot", l1_console=self.said(*self.steps))
        self.assertIsNone(hostchecks.host_snapshot(c))

    def test_a_step_that_failed_or_is_missing(self):
        c = context("--api", "--net-balloon", "--snapshot",
                    l1_console=self.said("PATCH /vm Paused -> 400"))
        self.assertIn("step 1 (PATCH /vm Paused -> 204)", hostchecks.host_snapshot(c))
        c.l1_console = self.said(*self.steps[:3])
        self.assertIn("step 4 (restored: ): the L1's API client said: nothing more",
                      hostchecks.host_snapshot(c))
        c.l1_console = self.said(*self.steps[:4], 'PATCH /balloon {"amount_mib": 0} -> 400')
        self.assertIn("PATCH /balloon", hostchecks.host_snapshot(c))
        c.l1_console = self.said(*self.steps).split("\n", 1)[1]
        self.assertIn("no `restore: ... in N ms` line", hostchecks.host_snapshot(c))


class VhostTest(unittest.TestCase):
    """--vhost: the net device's option, the L1's module, and the host check that ember saw
    nothing of the device's traffic."""

    def test_the_plan(self):
        o, p = make("--net-balloon", "--vhost")
        self.assertTrue(p.vhost)
        self.assertEqual(p.checks[p.checks.index("net-from-guest") + 1:][:2],
                         ["net-reload", "balloon"])
        self.assertNotIn("net-reload", make("--net-balloon")[1].checks)
        self.assertIn("-vhost", p.variant)
        net = p.ember_args[p.ember_args.index("--net") + 1]
        self.assertTrue(net.endswith(",vhost=on"), net)
        from harness import initramfs
        self.assertEqual(initramfs.l1_modules(p, True)[-5:],
                         ["tun", "vhost_iotlb", "vhost", "tap", "vhost_net"])
        self.assertNotIn("vhost_net", initramfs.l1_modules(make("--net-balloon")[1], True))
        for argv in (["--vhost"], ["--api", "--net-balloon", "--snapshot", "--vhost"]):
            with self.assertRaises(UsageError, msg=argv):
                options.parse(argv, {})

    def test_ember_must_see_no_kick_or_frame(self):
        from .test_hostchecks import linux_record

        def vhost_net(obj, kicks=0, requests=0):
            import copy
            blk = obj["devices"][0]
            net = dict(copy.deepcopy(blk), id="net0", type="virtio-net", name="virtio-net ember0",
                       kicks={"ioeventfd": kicks, "userspace": 0, "polled": 0}, requests=requests)
            balloon = dict(copy.deepcopy(blk), id="balloon0", type="virtio-balloon",
                           name="virtio-balloon")
            obj["devices"] += [net, balloon]
        for change, ok in ((lambda o: vhost_net(o), True), (lambda o: vhost_net(o, kicks=5), False),
                           (lambda o: vhost_net(o, requests=9), False)):
            c = context("--net-balloon", "--vhost", rec=linux_record(change))
            reason = hostchecks.host_virtio_activation(c)
            if ok:
                self.assertIsNone(reason)
            else:
                self.assertIn("vhost's, yet ember saw", reason or "")


class VsockTest(unittest.TestCase):
    def test_the_plan_and_its_host_check(self):
        o, p = make("--net-balloon", "--vsock")
        self.assertTrue(p.vsock)
        self.assertIn("--vsock", p.ember_args)
        self.assertEqual(p.ember_args[p.ember_args.index("--vsock") + 1], "cid=3")
        self.assertIn("vsock", p.checks)
        self.assertIn("ember.vsock-cid=3", p.cmdline)
        self.assertEqual(p.virtio_modules[-3:], ["vsock", "vmw_vsock_virtio_transport_common",
                                                 "vmw_vsock_virtio_transport"])
        from harness import initramfs
        self.assertEqual(initramfs.l1_modules(p, True)[-2:],
                         ["vmw_vsock_virtio_transport_common", "vhost_vsock"])
        c = context("--net-balloon", "--vsock")
        self.assertEqual(hostchecks.expected_devices(c)[-1].id, "vsock0")
        self.assertFalse(hostchecks.expected_devices(c)[-1].vhost, "the event queue is ember's")
        with self.assertRaises(UsageError):
            options.parse(["--vsock"], {})


class HostApiTest(unittest.TestCase):
    def said(self, *lines):
        return "".join(f"linux-boot-l1: api: {line}\n" for line in lines)

    def sequence(self, last_status="204"):
        c = context("--api")
        reqs = apiplan.requests(c.options, c.plan)
        lines = [f"{m} {path} {json.dumps(body)} -> 204" for m, path, body in reqs]
        lines[-1] = lines[-1][:-3] + last_status
        return c, lines

    def test_every_answer_as_firecracker_gives_it(self):
        c, lines = self.sequence()
        c.l1_console = self.said(*lines, "GET /ember/counters -> 200 (blk0 \"requests\":3)",
                                 'PUT /actions {"action_type": "SendCtrlAltDel"} -> 204 (after 2 '
                                 'refusals)')
        self.assertIn("host-api", hostchecks.names(c))
        self.assertIsNone(hostchecks.host_api(c))

    def test_a_refused_request_or_no_ctrl_alt_del(self):
        c, lines = self.sequence(last_status="400")
        c.l1_console = self.said(*lines)
        self.assertIn("request 6 (PUT /actions)", hostchecks.host_api(c))
        c, lines = self.sequence()
        c.l1_console = self.said(*lines, "GET /ember/counters -> 200 (blk0 \"requests\":3)")
        self.assertIn("SendCtrlAltDel was not answered 204", hostchecks.host_api(c))


if __name__ == "__main__":
    unittest.main()
