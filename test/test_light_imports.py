"""``synboost --help`` (every command's) and the launch logic load no torch; the help loads no
rclpy either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELPS = (
    [],
    ["infer"],
    ["export", "onnx"],
    ["bench"],
    ["world", "generate"],
    ["train", "seg"],
    ["train", "synth"],
    ["train", "dissim"],
    ["train", "ensemble"],
    ["eval"],
    ["ablation"],
    ["demo", "make-bag"],
    ["demo", "run"],
    ["weights", "combine"],
    ["weights", "calibrate"],
    ["weights", "import"],
)
# Runs the ``synboost`` entry point (``python -m synboost_ros.cli.main``) once per help.
RUN_HELPS = """
import contextlib, io, json, runpy, sys
results = []
for words in json.loads(sys.argv[1]):
    sys.argv = ["synboost", *words, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module("synboost_ros.cli.main", run_name="__main__")
        except SystemExit as done:
            results.append([words, done.code, out.getvalue()])
loaded = {name: name in sys.modules for name in ("torch", "rclpy")}
print(json.dumps({"results": results, **loaded}))
"""
IMPORT_LAUNCH_LOGIC = """
import json, sys
import synboost_ros.ros.launch_logic
print(json.dumps({"torch": "torch" in sys.modules}))
"""


def run_python(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_help_prints_its_usage_without_torch_or_rclpy():
    report = run_python(RUN_HELPS, json.dumps(HELPS))
    assert [words for words, _, _ in report["results"]] == [list(h) for h in HELPS]
    for words, code, text in report["results"]:
        assert code == 0, words
        assert text.startswith(f"usage: {' '.join(['synboost', *words])}"), words
    assert not report["torch"]
    assert not report["rclpy"]
    infer_help = report["results"][1][2]
    for flag in ("--preset", "--weights", "--random-weights", "--backend", "--device"):
        assert flag in infer_help
    assert "--precision {auto,fp32,bf16,fp16,int8}" in infer_help


def test_the_launch_logic_loads_no_torch():
    assert not run_python(IMPORT_LAUNCH_LOGIC)["torch"]
