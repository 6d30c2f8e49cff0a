"""A Bento can be built from the service."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bentoml_build_packages_the_service(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", str(ROOT), "--output", "tag"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    bentos = [p for p in (tmp_path / "bentoml" / "bentos" / "telcoml").iterdir() if p.is_dir()]
    assert bentos
    packaged = bentos[0]
    assert (packaged / "src" / "serving" / "service.py").exists()
    assert (packaged / "src" / "requirements-runtime.lock").exists()
    # the image installs the runtime lock: the main dependencies' closure, no test tool
    image_requirements = (packaged / "env" / "python" / "requirements.txt").read_text()
    installed = re.findall(r"^([A-Za-z0-9._-]+)==", image_requirements, re.M)
    assert {"bentoml", "feast", "xgboost"} <= set(installed), installed
    assert not {"pytest", "schemathesis", "ipykernel", "ruff", "nbclient"} & set(installed)
    assert not (packaged / "src" / "tests").exists()
    # the service imports from the Bento alone (run where BentoML runs it, in src/): every
    # project module it loads comes from there
    src = str(packaged / "src")
    probe = (
        f"import sys; sys.path.insert(0, {src!r}); import serving.service; "
        "own = ('serving', 'features', 'training', 'monitoring', 'telcoml'); "
        "print([m.__file__ for n, m in list(sys.modules.items()) if n.split('.')[0] in own "
        f"and getattr(m, '__file__', None) and not m.__file__.startswith({src!r})])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=src, env=env, capture_output=True, text=True, timeout=300
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().splitlines()[-1] == "[]", f"modules missing from the Bento: {loaded.stdout}"
