"""On the Beijing replay: how the re-check's blocks went for the longest-lived alerted sets.

    python benchmarks/beijing_recheck.py [--seed 1001] [--detection.option value ...]

Replays the Beijing data with the scoreboard's injected attacks (injection ``--seed``) and, for
the three alerted sets re-checked over the most blocks (``collusion_recheck``), prints the group,
the blocks, how many passed, failed (the members it was alerted with disagree on their shift) or
could not be tested (fewer than two of them measured over half the block), the longest run of
failures, and the first 60 blocks in order (``.`` pass, ``F`` fail, ``-`` untested). The
detector's ``_disagrees`` is wrapped to record; nothing else changes. About a minute.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

from _replay import BEIJING_SEED, beijing, detection_settings
from monitor import collusion
from monitor.collusion import CollusionDetector
from monitor.evaluation.runner import run_monitor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=BEIJING_SEED, help="seed of the injected attacks")
    args, rest = ap.parse_known_args()
    settings = detection_settings(rest)
    blocks: dict[tuple[int, int], list[str]] = defaultdict(list)
    runs: dict[tuple[int, int], int] = defaultdict(int)
    disagrees, agreement, tested = CollusionDetector._disagrees, collusion._agreement, []

    def testing(shift, var):  # the re-check's test: called only on a block with enough members measured
        common, q = agreement(shift, var)
        tested.append(q)
        return common, q

    def recording(self, s, window, devices, z, scale):
        ends = s.block >= 0 and window - s.block + 1 >= self.confirm
        tested.clear()
        result = disagrees(self, s, window, devices, z, scale)
        if ends:
            key = (s.group, s.nominated)
            blocks[key].append("-" if not tested else "F" if tested[0] > self.homogeneity else ".")
            runs[key] = max(runs[key], s.failed)
        return result

    collusion._agreement = testing
    CollusionDetector._disagrees = recording
    _, data = beijing(args.seed)
    _, _, pipe, *_ = run_monitor(data, settings)
    names = pipe.registry.group_names
    for key, marks in sorted(blocks.items(), key=lambda kv: -len(kv[1]))[:3]:
        c = Counter(marks)
        print(f"{names[key[0]]}: {len(marks)} blocks, {c['.']} passed, {c['F']} failed, {c['-']} untested, "
              f"longest run of failures {runs[key]}")
        print("   " + "".join(marks[:60]))


if __name__ == "__main__":
    main()
