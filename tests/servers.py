"""A real BentoML server in a subprocess, and schemathesis against it (serving and abuse tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``bentoml serve`` of the service on ``workdir`` from ``code_root`` (this checkout, or
    another one's code, e.g. a baseline checkout in a benchmark)."""

    def __init__(self, workdir: Path, env: dict | None = None, code_root: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / f"server-{self.port}.log", "w")
        full_env = {
            **os.environ,
            "TELCOML_WORKDIR": str(workdir),
            "BENTOML_HOME": str(workdir / "bentoml"),
            **({"PYTHONPATH": str(code_root)} if code_root != ROOT else {}),
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                "serving.service:TelcomlService",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=code_root,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.wait_ready()
        except (
            RuntimeError
        ):  # a server that never got ready must not outlive the test (BentoML restarts its worker)
            self.stop()
            raise

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited; log: {Path(self.log.name).read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready in {timeout}s; log: {Path(self.log.name).read_text()[-3000:]}")

    def rss(self) -> int:
        """Resident memory of the server's processes (BentoML's arbiter and its workers), bytes."""
        import psutil

        root = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def schemathesis_errors(url: str, key: str) -> str | None:
    """Run schemathesis against a server's OpenAPI document (no 5xx allowed); its output on failure."""
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "schemathesis"),
            "run",
            f"{url}/docs.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "-H",
            f"X-API-Key: {key}",
            "--request-timeout",
            "30",
            "--exclude-path",
            "/reload",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return None if result.returncode == 0 else result.stdout[-4000:] + result.stderr[-2000:]
