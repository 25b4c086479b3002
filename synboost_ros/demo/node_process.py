"""``anomaly_node`` as a child process of the demo: its command line, log, exit and stop."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from synboost_ros.demo.drive_bag import IMAGE_TOPIC

NODE_NAME = "synboost_demo"
DIAGNOSTICS_PERIOD_S = 0.5
STOP_WAIT_S = 10.0
LOG_TAIL_LINES = 30


def node_command(
    preset: str,
    weights: str | None,
    random_weights: bool,
    node_name: str = NODE_NAME,
    camera_topic: str = IMAGE_TOPIC,
) -> list[str]:
    """The node's command line: compressed reliable input from ``camera_topic``."""
    command = [
        sys.executable,
        "-m",
        "synboost_ros.ros.node",
        "--ros-args",
        "-r",
        f"__node:={node_name}",
        "-r",
        f"image/compressed:={camera_topic}",
        "-p",
        "input:=compressed",
        "-p",
        "input_qos:=reliable",
        "-p",
        f"preset:={preset}",
        "-p",
        f"diagnostics_period:={DIAGNOSTICS_PERIOD_S}",
    ]
    if random_weights:
        command += ["-p", "random_weights:=true"]
    elif weights:
        command += ["-p", f"weights:={weights}"]
    return command


class NodeProcess:
    """A running node; stdout and stderr go to ``log_path``. Use as a context manager."""

    def __init__(self, command: Sequence[str], log_path: str | Path) -> None:
        self.log_path = Path(log_path)
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        """The process id."""
        return self._process.pid

    def kill(self) -> int:
        """SIGKILL, as a crash would end it; return the exit status."""
        self._process.kill()
        self._log.close()
        return self._process.wait()

    @property
    def exit_code(self) -> int | None:
        """The exit status once the process ended, else None."""
        return self._process.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines the node printed."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int:
        """SIGINT (a clean shutdown), then terminate, then kill; return the exit status."""
        for send in (
            lambda: self._process.send_signal(signal.SIGINT),
            self._process.terminate,
            self._process.kill,
        ):
            if self._process.poll() is not None:
                break
            send()
            try:
                self._process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        return self._process.wait()

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
