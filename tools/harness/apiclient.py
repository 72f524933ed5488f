"""A client of ember's API socket (`ember run --api-sock PATH`: Firecracker's REST API and
ember's /ember/ extensions, README.md "Firecracker's API and config file"). HTTP/1.1 is the
standard library's http.client, connected over a unix socket; one connection per request.

    api = ApiClient("/tmp/ember.sock")
    counters = api.get("/ember/counters")           # the JSON answer (200)
    api.patch("/ember/devices/blk0", {"ioeventfd": False})   # 204, or ApiError
"""
from __future__ import annotations

import http.client
import json
import socket
from typing import Any, Optional


class ApiError(Exception):
    """An answer other than the one asked for: the status and Firecracker's fault_message (or
    the connection's failure), in one line."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


class ApiClient:
    def __init__(self, path: str, timeout: float = 10.0):
        self.path = path
        self.timeout = timeout

    def request(self, method: str, target: str, body: Optional[Any] = None) -> tuple[int, Any]:
        """The status and the decoded JSON answer (None for an empty one)."""
        conn = _UnixConnection(self.path, self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, target, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read().decode(errors="replace")
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            raise ApiError(f"{method} {target} on {self.path}: {e}") from e
        finally:
            conn.close()
        try:
            return status, json.loads(text) if text.strip() else None
        except json.JSONDecodeError as e:
            raise ApiError(f"{method} {target}: status {status}, the answer is not JSON: "
                           f"{text[:200]!r}") from e

    def _expect(self, want: int, method: str, target: str, body: Optional[Any] = None) -> Any:
        status, answer = self.request(method, target, body)
        if status != want:
            fault = answer.get("fault_message") if isinstance(answer, dict) else answer
            raise ApiError(f"{method} {target}: status {status}: {fault}")
        return answer

    def get(self, target: str) -> Any:
        return self._expect(200, "GET", target)

    def put(self, target: str, body: Any) -> None:
        self._expect(204, "PUT", target, body)

    def patch(self, target: str, body: Any) -> None:
        self._expect(204, "PATCH", target, body)
