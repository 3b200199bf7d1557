"""The test's own ROS node: subscribe, publish, call services and spin, in one ROS domain.

Each test gets its own rclpy context with its own domain id, so the nodes of one test never
see those of another (or the messages they left behind).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile


class Probe:
    """One rclpy node in ``domain_id``, spun only when the test asks."""

    def __init__(self, domain_id: int, name: str = "grasp_ros_test") -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def collect(self, msg_type: type, topic: str, qos: QoSProfile | int = 100) -> list:
        """Every message on ``topic`` from now on, appended to the returned list while spinning.

        Each item is ``(receive time.monotonic(), message)``.
        """
        got: list[tuple[float, Any]] = []
        self.node.create_subscription(
            msg_type, topic, lambda m: got.append((time.monotonic(), m)), qos
        )
        return got

    def spin_until(self, done: Callable[[], Any], timeout: float) -> bool:
        """Spin until ``done()`` is true or ``timeout`` seconds passed; the last ``done()``."""
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)
        return bool(done())

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.02, max(0.0, end - time.monotonic())))

    def call(
        self,
        srv_type: type,
        name: str,
        request: Any,
        timeout: float = 60.0,
        retry_every: float | None = None,
    ) -> Any:
        """Call a service once it exists; its response (AssertionError on a time-out).

        A service is seen (its request path matched) a little before its reply path is, and a
        reply sent before that is lost: so a pause first, and for calls that may be repeated
        safely (queries), ``retry_every`` seconds a new request.
        """
        client = self.node.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"no service {name}"
            self.spin_for(0.5)
            end = time.monotonic() + timeout
            while True:
                future = client.call_async(request)
                wait = min(retry_every or timeout, max(0.0, end - time.monotonic()))
                if self.spin_until(future.done, wait):
                    return future.result()
                assert retry_every and time.monotonic() < end, f"{name} did not answer"
        finally:
            self.node.destroy_client(client)
