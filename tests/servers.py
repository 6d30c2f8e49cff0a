"""Real servers in subprocesses (the BentoML service, the console) and schemathesis against them
(serving and abuse tests)."""

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


class _ServerProcess:
    """A server in a subprocess on a free port, its log in the work directory; ready once
    ``ready_path`` answers 200 (a server that never gets ready is stopped: it must not outlive
    the test)."""

    name = "server"
    ready_path = "/readyz"

    def __init__(
        self, workdir: Path, port: int, command: list[str], env: dict, cwd: Path = ROOT, base_path: str = ""
    ):
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}{base_path}"
        self.log_path = workdir / f"{self.name}-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.wait_ready()
        except RuntimeError:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; log: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}{self.ready_path}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready in {timeout}s; log: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Server(_ServerProcess):
    """``bentoml serve`` of the service on ``workdir`` from ``code_root`` (this checkout, or
    another one's code, e.g. a baseline checkout in a benchmark)."""

    def __init__(self, workdir: Path, env: dict | None = None, code_root: Path = ROOT):
        port = free_port()
        full_env = {
            **os.environ,
            "TELCOML_WORKDIR": str(workdir),
            "BENTOML_HOME": str(workdir / "bentoml"),
            **({"PYTHONPATH": str(code_root)} if code_root != ROOT else {}),
            **(env or {}),
        }
        command = [sys.executable, "-m", "bentoml", "serve", "serving.service:TelcomlService"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        super().__init__(workdir, port, command, full_env, cwd=code_root)

    def rss(self) -> int:
        """Resident memory of the server's processes (BentoML's arbiter and its workers), bytes."""
        import psutil

        root = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


class ConsoleServer(_ServerProcess):
    """``telcoml console`` on ``workdir``; ``url`` is the console's root (``.../console``)."""

    name = "console"
    ready_path = "/login"

    def __init__(self, workdir: Path):
        port = free_port()
        telcoml = Path(sys.executable).with_name("telcoml")
        command = [str(telcoml), "console", "--workdir", str(workdir), "--port", str(port)]
        env = {**os.environ, "TELCOML_WORKDIR": str(workdir)}
        super().__init__(workdir, port, command, env, base_path="/console")


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
