"""colcon builds the package, plainly and with ``--symlink-install``, into temporary folders,
and the installed ``anomaly_node --help`` prints its usage without starting ROS.

colcon-common-extensions is in the ``dev`` extra, so CI (``make test``) always runs these.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("colcon_core") is None,
    reason="colcon is not installed (pip install colcon-common-extensions; the dev extra has it)",
)


def colcon_build(workspace: Path, *options: str) -> subprocess.CompletedProcess:
    """``colcon build`` of this repository with build, install and log folders in
    ``workspace``."""
    command = [
        sys.executable,
        "-m",
        "colcon",
        "--log-base",
        str(workspace / "log"),
        "build",
        "--base-paths",
        str(ROOT),
        "--build-base",
        str(workspace / "build"),
        "--install-base",
        str(workspace / "install"),
        *options,
    ]
    return subprocess.run(
        command, cwd=workspace, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )


def in_install_space(install: Path, command: str) -> subprocess.CompletedProcess:
    """``command`` in a shell that sourced ``install/setup.sh``, away from this checkout (no
    PYTHONPATH to it, another working directory): the install space alone provides the
    package."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    script = f". {shlex.quote(str(install / 'setup.sh'))} && {command}"
    return subprocess.run(
        ["sh", "-c", script],
        cwd=install,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )


@pytest.mark.parametrize("options", [(), ("--symlink-install",)], ids=["plain", "symlink"])
def test_colcon_build_installs_a_working_anomaly_node(tmp_path, options):
    before = sorted(p.name for p in ROOT.iterdir())

    built = colcon_build(tmp_path, *options)

    assert built.returncode == 0, built.stdout + built.stderr
    assert sorted(p.name for p in ROOT.iterdir()) == before  # no build/ install/ log/ egg-info
    install = tmp_path / "install"
    share = install / "synboost_ros" / "share" / "synboost_ros"
    for installed in ("package.xml", "launch/anomaly.launch.py", "config/anomaly.yaml"):
        assert (share / installed).exists(), installed
    node = install / "synboost_ros" / "lib" / "synboost_ros" / "anomaly_node"
    python = shlex.quote(sys.executable)
    where = in_install_space(
        install, f"{python} -c 'import synboost_ros; print(synboost_ros.__file__)'"
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(tmp_path), where.stdout

    helped = in_install_space(install, f"{shlex.quote(str(node))} --help")

    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: anomaly_node [-h] [--ros-args")
    assert "device (default: auto; one of: auto, cpu, cuda, cuda:N; read-only)" in helped.stdout
    assert "ready:" not in helped.stdout + helped.stderr  # the node did not start
