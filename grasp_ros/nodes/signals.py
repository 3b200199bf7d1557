"""SIGINT and SIGTERM as a request to stop, never as an exception. Standard library only.

A terminal's Ctrl-C reaches every process of its group, and `ros2 launch` forwards it again, so
each node gets SIGINT twice, then SIGTERM when it is slow to exit. Python's default turns each
one into a KeyboardInterrupt raised wherever the main thread happens to be; the second one lands
in the clean-up (a traceback, exit code -2, and, while a tick held the lock, no stop command).
Here every signal only sets a flag that the spin loop polls (`grasp_ros.nodes.ros.run`), so the
first one starts the shutdown and the others are absorbed by it.

Installing the handler also undoes an inherited SIG_IGN: a node started in the background by a
non-interactive shell ignores SIGINT, and would outlive the launch that started it. The node
scripts call :func:`catch` before importing rclpy and torch, so a signal during start-up (model
loading takes seconds) stops the node as soon as it is up, rather than with a traceback.
"""

from __future__ import annotations

import signal
import threading

_stop = threading.Event()


def catch() -> None:
    """Route SIGINT and SIGTERM to :func:`stop_requested`, whatever was installed before."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)


def stop_requested() -> bool:
    """Whether SIGINT or SIGTERM has arrived since :func:`catch`."""
    return _stop.is_set()


def ignore_until_exit() -> None:
    """Ignore SIGINT and SIGTERM from now on: call when only the interpreter's exit is left.

    While Python finalizes (a second or so with torch and rclpy loaded) it puts the default
    action back for every signal that has a Python handler, so a late second Ctrl-C would kill
    the process (exit code -2) after a clean shutdown. An ignored signal is left ignored.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def _on_signal(signum: int, frame: object) -> None:
    _stop.set()
