"""harness.apiclient against a real HTTP server on a unix socket (the standard library's
http.server), answering as ember's API does: 200 with JSON, 204, 400 with a fault_message."""
import json
import os
import socketserver
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler

from harness.apiclient import ApiClient, ApiError


class _Handler(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):  # quiet
        pass

    def address_string(self):  # a unix socket has no host:port
        return "unix"

    def _answer(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.seen.append(("GET", self.path, None))
        if self.path == "/ember/counters":
            self._answer(200, {"devices": [{"id": "blk0"}]})
        else:
            self._answer(400, {"fault_message": f"no endpoint GET {self.path}"})

    def do_PATCH(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n))
        self.seen.append(("PATCH", self.path, (self.headers.get("Content-Type"), body)))
        if body == {"ioeventfd": False}:
            self._answer(204)
        else:
            self._answer(400, {"fault_message": "ember/devices: ioeventfd must be true or false"})


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class ApiClientTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "api.sock")
        _Handler.seen = []
        self.server = _Server(self.path, _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        self.dir.cleanup()

    def test_get_patch_and_faults(self):
        api = ApiClient(self.path)
        self.assertEqual(api.get("/ember/counters"), {"devices": [{"id": "blk0"}]})
        api.patch("/ember/devices/blk0", {"ioeventfd": False})
        self.assertEqual(_Handler.seen[1],
                         ("PATCH", "/ember/devices/blk0",
                          ("application/json", {"ioeventfd": False})))
        with self.assertRaisesRegex(ApiError, "status 400: ember/devices: ioeventfd must be"):
            api.patch("/ember/devices/blk0", {"ioeventfd": "off"})
        with self.assertRaisesRegex(ApiError, "no endpoint GET /nothing"):
            api.get("/nothing")

    def test_no_server_is_one_error(self):
        api = ApiClient(os.path.join(self.dir.name, "absent.sock"), timeout=2)
        with self.assertRaisesRegex(ApiError, "GET /ember/counters on .*absent.sock"):
            api.get("/ember/counters")


if __name__ == "__main__":
    unittest.main()
