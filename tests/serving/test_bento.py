"""A Bento can be built from the service."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bentoml_build_packages_the_service(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
    result = subprocess.run([sys.executable, "-m", "bentoml", "build", str(ROOT), "--output", "tag"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    bentos = [p for p in (tmp_path / "bentoml" / "bentos" / "telcoml").iterdir() if p.is_dir()]
    assert bentos
    packaged = bentos[0]
    assert (packaged / "src" / "serving" / "service.py").exists()
    assert (packaged / "src" / "requirements.lock").exists()
    assert not (packaged / "src" / "tests").exists()
