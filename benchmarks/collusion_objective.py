"""The collusion tuning objective in one command: the tuning command, the seeds 4-7 check and the harsh fleet.

    python benchmarks/collusion_objective.py [--out DIR] [--jobs 2] [--detection.option value ...]

Runs, on the tuning side only (never the reporting set, the sweep or Beijing):

1. the collusion tuning command (the six tuning fleets, seeds 0, 1 counted twice, then 2, 3);
2. the check: the same fleets but the gross one, with single-device and slow-drift, on seeds 4-7;
3. the harsh honest fleet (`scenarios/diagnostics/harsh.yaml`, seeds 0-7) through
   `benchmarks/false_collusion.py`, whose every collusion alert is a false one.

and prints each run's colluding-set figures within bar 5's scope (sets of at most 30% of their
group, and groups whose sets all are), the first two added up (sets found, alerts and false
alerts summed, then precision, recall and F1 from the sums), and the same with the harsh
fleet's false alerts added to both the alerts and the false alerts: the tuning fleets' honest
world is milder than the reporting set's, so without the harsh fleet precision weighs too
little. The ``--detection`` options go to every run. About four minutes with two jobs (on this
project's machine, 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _replay import detection_options

TUNING = ("honest", "benign-events", "collusion-in-spread", "collusion-variants", "poisoning")
SCOPES = (("bar", "sets of at most 30%"), ("bar_groups", "whole groups"))


def evaluate_args(fleets: tuple[str, ...], seeds: list[str], out: Path) -> list[str]:
    scenarios = ",".join(f"scenarios/tuning/{f}.yaml" for f in fleets)
    args = [sys.executable, "-m", "monitor", "evaluate", "--scenarios", scenarios]
    for s in seeds:
        args += ["--seeds", s]
    return args + ["--baselines", "median_zscore", "--no-sweep", "--beijing", "none", "--out", str(out)]


def as_flags(pairs: list[str]) -> list[str]:
    """``--detection.x value`` pairs as `poison-monitor evaluate` takes them: a true or false value as
    the flag ``--detection.x`` or ``--no-detection.x``.

    >>> as_flags(["--detection.collusion-gap", "0", "--detection.collusion-recur-measure", "false"])
    ['--detection.collusion-gap', '0', '--no-detection.collusion-recur-measure']
    """
    out = []
    for name, value in zip(pairs[::2], pairs[1::2]):
        if value.lower() in ("true", "false"):
            out.append(name if value.lower() == "true" else "--no-" + name.removeprefix("--"))
        else:
            out += [name, value]
    return out


def harsh_args(seeds: str) -> list[str]:
    return [sys.executable, "benchmarks/false_collusion.py", "--scenarios", "scenarios/diagnostics/harsh.yaml",
            "--seeds", seeds]


def figures(found: int, sets: int, alerts: int, false: int) -> str:
    p = (alerts - false) / alerts if alerts else 0.0
    r = found / sets if sets else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return f"{found}/{sets} sets found, {alerts} alerts, {false} false: P {p:.3f} R {r:.3f} F1 {f1:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/collusion-objective", help="directory for the runs' results")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once")
    args, detection = ap.parse_known_args()
    detection_options(detection)  # the benchmarks' one check of --detection pairs (fails with its message)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {
        "tuning": evaluate_args(TUNING + ("collusion-gross",), ["0,1", "0,1", "2,3"], out / "tuning"),
        "check": evaluate_args(TUNING + ("single-device", "slow-drift"), ["4,5,6,7"], out / "check"),
        "harsh 0-3": harsh_args("0,1,2,3"),
        "harsh 4-7": harsh_args("4,5,6,7"),
    }

    def run(name: str) -> str:
        cmd = runs[name] + (detection if name.startswith("harsh") else as_flags(detection))
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if done.returncode:
            raise SystemExit(f"{name} failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
        (out / f"{name.replace(' ', '_')}.log").write_text(done.stdout + done.stderr)
        return done.stdout

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        logs = dict(zip(runs, pool.map(run, runs)))
    harsh = sum(line.count(" FALSE ") for name in ("harsh 0-3", "harsh 4-7") for line in logs[name].splitlines())
    print(f"harsh fleet, seeds 0-7: {harsh} false collusion alerts")
    for key, label in SCOPES:
        total = [0, 0, 0, 0]
        for name in ("tuning", "check"):
            c = json.loads((out / name / "results.json").read_text())["overall"]["collusion"][key]
            row = [c["sets_found"], c["sets"], c["collusion_alerts"], c["false_collusion_alerts"]]
            total = [a + b for a, b in zip(total, row)]
            print(f"{label:20s} {name:7s} {figures(*row)}")
        print(f"{label:20s} added   {figures(*total)}")
        print(f"{label:20s} + harsh {figures(total[0], total[1], total[2] + harsh, total[3] + harsh)}")


if __name__ == "__main__":
    main()
