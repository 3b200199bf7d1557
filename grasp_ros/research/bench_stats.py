"""Open-loop benchmark statistics: success rates with Wilson intervals, and the claim check.

Pure functions over task outcomes (:class:`~grasp_ros.research.bench_protocol.TaskResult`
dicts); :mod:`~grasp_ros.research.bench_report` turns them into tables and plots.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from grasp_ros.research.bench_protocol import START_GROUPS

#: The issue's acceptance claim: at horizons >= CLAIM_HORIZON, GRASP's success rate at least
#: CLAIM_POINTS above the better of GD and CEM, and its median time at most CLAIM_TIME_RATIO
#: of CEM's.
CLAIM_HORIZON = 50
CLAIM_POINTS = 10.0
CLAIM_TIME_RATIO = 1 / 3


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval for a binomial rate (sound at 0% and 100%, unlike +-1.96 sd)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95% interval for the difference of two rates k1/n1 - k2/n2 (Newcombe's hybrid score
    method, from the two Wilson intervals): whether a gap of some points is resolved."""
    p1, p2 = k1 / max(n1, 1), k2 / max(n2, 1)
    (l1, u1), (l2, u2) = wilson_interval(k1, n1), wilson_interval(k2, n2)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def summarize(tasks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The final plan's success rate and interval, the oracle's beside it, and medians (oracle
    times over the tasks the oracle solved; distances over all tasks)."""
    wins = [t for t in tasks if t["success"]]
    seen = [t for t in tasks if t.get("oracle_success")]
    judged = [t["model_success"] for t in tasks if t.get("model_success") is not None]
    return {
        "tasks": len(tasks),
        "successes": len(wins),
        "success_rate": len(wins) / len(tasks) if tasks else 0.0,
        "ci95": list(wilson_interval(len(wins), len(tasks))),
        "oracle_successes": len(seen),
        "oracle_success_rate": len(seen) / len(tasks) if tasks else 0.0,
        "oracle_ci95": list(wilson_interval(len(seen), len(tasks))),
        "median_oracle_time_to_success": _median([t["oracle_time_to_success"] for t in seen]),
        "median_oracle_iterations": _median([t["oracle_iterations"] for t in seen]),
        "median_iterations": _median([t["iterations"] for t in tasks if "iterations" in t]),
        "median_distance": _median([t["distance"] for t in tasks]),
        "model_success_rate": sum(judged) / len(judged) if judged else None,
        "median_model_distance": _median(
            [t["model_distance"] for t in tasks if t.get("model_distance") is not None]
        ),
    }


def check_claims(
    results: dict[str, Any], capped: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """The issue's claim per environment and start group, at each horizon >= 50 and pooled.

    A group (:data:`START_GROUPS`) is checked where the run has its GRASP and both rivals. The
    success claim compares final-plan success rates (with the 95% interval of the gap); the time
    claim compares the oracle's median times to success against CEM's and is ``None``
    ("undefined", never "holds") when CEM never succeeded. ``capped`` names, per environment, the
    horizons whose tasks are no longer than a shorter horizon's (the world has none that long).
    """
    claims = []
    for env, by_h in results.items():
        long = sorted((int(h), cells) for h, cells in by_h.items() if int(h) >= CLAIM_HORIZON)
        for group, grasp, rivals in START_GROUPS:
            names = (grasp, *rivals)
            if not long or not all(set(names) <= set(c) for _, c in long):
                continue
            pooled = {p: summarize([t for _, c in long for t in c[p]["tasks"]]) for p in names}
            rows = [(str(h), {p: c[p]["summary"] for p in names}) for h, c in long]
            hs, short = [label for label, _ in rows], set((capped or {}).get(env, []))
            for label, s in [*rows, (f">={CLAIM_HORIZON}", pooled)]:
                rival = max(rivals, key=lambda p: s[p]["success_rate"])
                g, r = s[grasp], s[rival]
                gap = difference_interval(g["successes"], g["tasks"], r["successes"], r["tasks"])
                t_grasp = g["median_oracle_time_to_success"]
                t_cem = s[rivals[-1]]["median_oracle_time_to_success"]
                ratio = t_grasp / t_cem if t_grasp is not None and t_cem else None
                time_ok = None if t_cem is None else ratio is not None and ratio <= CLAIM_TIME_RATIO
                claims.append(
                    {
                        "env": env,
                        "group": group,
                        "grasp": grasp,
                        "rival": rival,
                        "horizon": label,
                        "capped": label in short if label in hs else bool(short & set(hs)),
                        "grasp_success": g["success_rate"],
                        "best_rival_success": r["success_rate"],
                        "points_ahead": 100 * (g["success_rate"] - r["success_rate"]),
                        "points_ci95": [100 * gap[0], 100 * gap[1]],
                        "success_ok": 100 * (g["success_rate"] - r["success_rate"]) >= CLAIM_POINTS,
                        "grasp_time": t_grasp,
                        "cem_time": t_cem,
                        "time_ratio": ratio,
                        "time_ok": time_ok,
                    }
                )
    return claims
