"""What a first-time user met in a fresh clone (issue 15, "first use"): each case reproduces one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from grasp_ros.control.cli_params import params_from_cli
from grasp_ros.models import load_world_model
from grasp_ros.tools import demo
from grasp_ros.tools import replay as R

ANALYTIC = "grasp_ros.models.analytic:PointWallModel"
TINY = ["--model", ANALYTIC, "--horizon", "6", "--max-ticks", "4"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def three_episodes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert demo.main([*TINY, "--episodes", "3", "--no-gif", "--out", str(out)]) == 0
    return out


def test_replaying_a_multi_episode_demo_bag_reports_every_episode(three_episodes, capsys) -> None:
    summary = json.loads((three_episodes / "summary.json").read_text())
    params = {**params_from_cli(None, []), "model": ANALYTIC, "horizon": 6, "iterations": 2}
    truth = R.replay(three_episodes / "rosbag", params).report["ground_truth"]
    episodes = truth["episodes"]
    assert [e["task_seed"] for e in episodes] == [e["seed"] for e in summary["episodes"]]
    assert [e["recorded_success"] for e in episodes] == [e["success"] for e in summary["episodes"]]
    for replayed, recorded in zip(episodes, summary["episodes"], strict=True):
        assert replayed["final_distance"] == pytest.approx(recorded["final_distance"], abs=1e-4)
    assert truth["recorded_successes"] == sum(e["success"] for e in summary["episodes"])
    capsys.readouterr()
    fast = ["-p", f"model={ANALYTIC}", "-p", "horizon=6", "-p", "iterations=2"]
    assert R.main([str(three_episodes / "rosbag"), "--quiet", *fast]) == 0
    line = capsys.readouterr().out
    wins = truth["recorded_successes"]
    assert f"recorded runs: {wins} of 3 episodes succeeded" in line, line


def test_no_gif_does_not_list_the_gif(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert demo.main([*TINY, "--episodes", "1", "--no-gif", "--out", str(out)]) == 0
    listed = capsys.readouterr().out.splitlines()[-1]
    assert listed.startswith(f"outputs in {out}/") and "demo.gif" not in listed
    assert demo.main([*TINY, "--episodes", "1", "--out", str(out)]) == 0
    assert "demo.gif" in capsys.readouterr().out.splitlines()[-1]


def test_fast_mode_does_not_report_deadline_misses(three_episodes, capsys) -> None:
    summary = json.loads((three_episodes / "summary.json").read_text())
    assert summary["mode"] == "fast" and summary["deadline_misses"] is None
    assert all(e["deadline_misses"] is None for e in summary["episodes"])
    assert demo.main([*TINY, "--episodes", "1", "--no-gif", "--out", str(three_episodes)]) == 0
    printed = capsys.readouterr().out
    assert "deadline misses: not applicable" in printed and "--realtime" in printed


def test_the_progress_bar_total_is_set_once_and_a_cold_tick_says_what_it_does(
    tmp_path, monkeypatch
) -> None:
    bars: list[demo.tqdm] = []

    class Recording(demo.tqdm):
        def __init__(self, *args, **kw) -> None:
            super().__init__(*args, **kw)
            self.totals, self.notes = [self.total], []
            bars.append(self)

        def update(self, n=1):
            self.totals.append(self.total)
            return super().update(n)

        def set_postfix_str(self, s="", refresh=True):
            self.notes.append(s)
            return super().set_postfix_str(s, refresh)

    monkeypatch.setattr(demo, "tqdm", Recording)
    assert demo.main([*TINY, "--episodes", "3", "--no-gif", "--out", str(tmp_path / "o")]) == 0
    (bar,) = bars
    assert len(set(bar.totals)) == 1 and bar.n == bar.totals[0]
    assert any(re.search(r"cold start: .*\d+ iterations", note) for note in bar.notes)


def test_a_corrupt_checkpoint_is_called_corrupt_without_unsafe_advice(tmp_path) -> None:
    good = Path(load_world_model.__code__.co_filename).parent / "checkpoints" / "wall.pt"
    data = good.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(data[:100] + bytes(b ^ 0xFF for b in data[100:400]) + data[400:])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    for path in (cut, flipped, junk):
        with pytest.raises(ValueError) as info:
            load_world_model(path)
        text = str(info.value)
        assert f"{path}: it is corrupt or not a torch checkpoint" in text, text
        assert "weights_only=False" not in text and "file an issue" not in text.lower()


def test_a_checkpoint_with_a_pickled_object_is_refused_safely(tmp_path) -> None:
    path = tmp_path / "pickled.pt"
    torch.save({"format": "x", "model": torch.nn.Linear(2, 2)}, path)
    with pytest.raises(ValueError) as info:
        load_world_model(path)
    text = str(info.value)
    assert "weights_only=False" not in text and "not a grasp_ros world model" not in text
    assert "objects other than tensors" in text and "factory" in text


def test_the_readme_is_true_to_a_first_use() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme and "/work/" not in readme
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link
    assert (ROOT / "docs" / "GRASP.md").is_file() and "docs/GRASP.md" in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
    assert "pip install torch==2.13.0    # or any" not in readme
