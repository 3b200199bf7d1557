"""Which topics a replay reads, uses and copies, chosen and checked before any planning."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grasp_ros.io import sim_topics
from grasp_ros.io.bag_source import BagSource
from grasp_ros.io.bags import BagError, BagWriter, TopicInfo
from grasp_ros.io.messages import (
    ACTION_COMMAND,
    COMPRESSED_IMAGE,
    IMAGE,
    PLANNER_STATUS,
    VIRTUAL_TRAJECTORY,
)

DEFAULT_IMAGE_TOPICS = (sim_topics.CAMERA_TOPIC, "image")
DEFAULT_GOAL_TOPIC = sim_topics.GOAL_TOPIC
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)


def resolve_topic(topics: Mapping[str, str], name: str) -> str | None:
    """``name`` as the bag spells it: ``camera/image_raw`` matches ``/camera/image_raw``."""
    if name in topics:
        return name
    bare = name.lstrip("/")
    return next((t for t in topics if t.lstrip("/") == bare), None)


@dataclass
class Topics:
    """The topics of one replay: the planner's inputs, the ground truth, what is copied."""

    image: str
    goal: str | None
    truth: list[str]
    outputs: dict[str, str]  # "action", "plan", "status" -> topic in the output bag
    copied: dict[str, TopicInfo]  # input topics copied into the output bag
    not_copied: dict[str, str]  # input topic -> why it cannot be copied

    @property
    def used(self) -> list[str]:
        """The topics the replay deserialises: camera, goal and ground truth."""
        return [self.image, *([self.goal] if self.goal else []), *self.truth]

    @property
    def read(self) -> list[str]:
        """The topics read from the bag: those used, then those only copied."""
        return [*self.used, *(t for t in self.copied if t not in self.used)]

    def add_to(self, writer: BagWriter) -> None:
        """Declare the outputs, then the copies; a copy the writer refuses is not copied.

        The outputs come first, so an input recorded with another definition of one of this
        package's types (an older grasp_ros) is the one left out.
        """
        for name, msgtype in (
            ("action", ACTION_COMMAND),
            ("plan", VIRTUAL_TRAJECTORY),
            ("status", PLANNER_STATUS),
        ):
            writer.add_topic(self.outputs[name], msgtype)
        for topic, info in list(self.copied.items()):
            try:
                writer.add_raw_topic(info)
            except BagError as exc:
                del self.copied[topic]
                self.not_copied[topic] = str(exc)


def choose_topics(
    source: BagSource,
    image_topic: str | None,
    goal_topic: str | None,
    goal_image: np.ndarray | None,
    out: str | os.PathLike[str] | None,
    output_prefix: str,
) -> Topics:
    """What to read, use and copy, checked before any planning starts."""
    image, goal = _pick_topics(source, image_topic, goal_topic, goal_image)
    outputs = {n: _qualified(output_prefix + n) for n in ("action", "plan", "status")}
    copied: dict[str, TopicInfo] = {}
    not_copied: dict[str, str] = {}
    if out is not None:
        _check_clashes(outputs, list(source.topics))
        for topic in source.topics:
            try:
                copied[topic] = source.topic_info(topic)
            except BagError as exc:
                not_copied[topic] = str(exc)
    return Topics(image, goal, _truth_topics(source.topics), outputs, copied, not_copied)


def _describe(topics: Mapping[str, str]) -> str:
    return ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "none"


def _pick_topics(
    source: BagSource, image_topic: str | None, goal_topic: str | None, goal_image: Any
) -> tuple[str, str | None]:
    """The bag's camera and goal topics, checked; BagError lists what the bag has instead."""
    images = {t: m for t, m in source.topics.items() if m in IMAGE_TYPES}
    if image_topic is None:
        found = [t for name in DEFAULT_IMAGE_TOPICS if (t := resolve_topic(source.topics, name))]
        if not found:
            raise BagError(
                f"bag {source.path} has none of the default camera topics "
                f"{', '.join(DEFAULT_IMAGE_TOPICS)}; pass --image-topic. Image topics in the "
                f"bag: {_describe(images)}"
            )
        image = found[0]
    else:
        image = _checked_topic(source, image_topic, "--image-topic")
    goal = None
    if goal_image is None:
        if goal_topic is None or resolve_topic(source.topics, goal_topic) is None:
            raise BagError(
                f"bag {source.path} has no goal topic {goal_topic}; pass --goal-topic, or "
                f"--goal-image PNG for a goal from a file. Image topics in the bag: "
                f"{_describe(images)}"
            )
        goal = _checked_topic(source, goal_topic, "--goal-topic")
    return image, goal


def _checked_topic(source: BagSource, name: str, option: str) -> str:
    topic = resolve_topic(source.topics, name)
    if topic is None:
        raise BagError(
            f"bag {source.path} has no topic {name} ({option}); its topics: "
            f"{_describe(source.topics)}"
        )
    if source.topics[topic] not in IMAGE_TYPES:
        raise BagError(
            f"topic {topic} in {source.path} has type {source.topics[topic]}, expected "
            f"{' or '.join(IMAGE_TYPES)}"
        )
    return topic


def _truth_topics(topics: Mapping[str, str]) -> list[str]:
    """The simulator's ground-truth topics present with their contract types."""
    wanted = (
        (sim_topics.TASK_TOPIC, sim_topics.STRING),
        (sim_topics.POSE_TOPIC, sim_topics.POSE_STAMPED),
        (sim_topics.OBJECT_POSE_TOPIC, sim_topics.POSE_STAMPED),
        (sim_topics.EXECUTED_ACTION_TOPIC, ACTION_COMMAND),
    )
    found = [(resolve_topic(topics, name), msgtype) for name, msgtype in wanted]
    return [t for t, msgtype in found if t is not None and topics[t] == msgtype]


def _qualified(topic: str) -> str:
    """The name as ``ros2 bag record`` stores a root-namespace topic: with a leading slash."""
    return "/" + topic.lstrip("/")


def _check_clashes(outputs: Mapping[str, str], inputs: Sequence[str]) -> None:
    taken = {t.lstrip("/"): t for t in inputs}
    for name in outputs.values():
        if name.lstrip("/") in taken:
            raise ValueError(
                f"output topic {name} would clash with the input topic {taken[name.lstrip('/')]}"
                " copied into the output bag; pass --output-prefix, e.g. --output-prefix replay/"
            )
