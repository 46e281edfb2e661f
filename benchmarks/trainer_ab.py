"""The batched 10-fold epoch of this checkout against another commit, in alternating processes.

Timings on a shared machine drift by tens of percent between minutes, so two separate
benchmark runs cannot show a 1.3x change reliably. Here fresh processes of the two
versions take turns, round by round; each times the batched epoch
(``train_batched``) after a warm-up, and the epoch's matrix products alone right after
each fit, and reports medians. The JSON keeps every round.

    .venv/bin/python benchmarks/trainer_ab.py REV [--rounds 4] [--out PATH]

``REV`` is checked out into a temporary git worktree; its ``actmix`` is imported from
there (``PYTHONPATH``), its benchmark's ``train_batched`` from there too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_ROUND = """
import json, statistics, sys, time, torch
sys.path.insert(0, sys.argv[1] + "/benchmarks")
try:
    import trainer_folds as bench  # this project after issue 15
except ImportError:
    import trainer as bench  # before: the fold code lived in trainer.py
import actmix
if not actmix.__file__.startswith(sys.argv[1]):
    raise SystemExit(f"imported actmix from {actmix.__file__}, not {sys.argv[1]}")
torch.set_num_threads(int(sys.argv[2]))
folds, device = bench._fold_arrays(), torch.device("cpu")
bench.train_batched(folds, device)
fits, floors = [], []
for _ in range(int(sys.argv[3])):
    started = time.perf_counter()
    bench.train_batched(folds, device)
    fits.append(time.perf_counter() - started)
    floors.append(bench.matmul_floor(folds, device, 1))
print(json.dumps({"fit_s": statistics.median(fits), "floor_s": statistics.median(floors)}))
"""


def _round(checkout: Path, threads: int, fits: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _ROUND, str(checkout), str(threads), str(fits)],
        env={**os.environ, "PYTHONPATH": str(checkout)},
        cwd=checkout,  # ``-c`` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"a round in {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _git(*arguments: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *arguments], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the commit to compare with, e.g. e081ea9")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--fits", type=int, default=5, help="timed fits per process")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/trainer-ab.json"))
    args = parser.parse_args(argv)
    commit, current = _git("rev-parse", "--short", args.rev), _git("rev-parse", "--short", "HEAD")
    rounds: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="actmix-ab-") as folder:
        worktree = Path(folder) / "before"
        _git("worktree", "add", "--detach", str(worktree), commit)
        try:
            for k in range(args.rounds):
                for name, checkout in (("before", worktree), ("after", ROOT)):
                    rounds[name].append(_round(checkout, args.threads, args.fits))
                    row = rounds[name][-1]
                    print(
                        f"round {k + 1} {name}: epoch {row['fit_s']:.3f} s, "
                        f"products {row['floor_s']:.3f} s",
                        flush=True,
                    )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                check=False,
                capture_output=True,
            )
    result = {
        "before": commit,
        "after": current,
        "threads": args.threads,
        "rounds": rounds,
        "speedup": statistics.median(
            b["fit_s"] / a["fit_s"] for b, a in zip(rounds["before"], rounds["after"], strict=True)
        ),
        "epoch_in_floors": {
            name: statistics.median(r["fit_s"] / r["floor_s"] for r in rows)
            for name, rows in rounds.items()
        },
    }
    print(
        f"{current} vs {commit}: {result['speedup']:.2f}x faster per epoch (median over rounds);"
        f" epoch / matrix products: {result['epoch_in_floors']['before']:.2f} before, "
        f"{result['epoch_in_floors']['after']:.2f} after"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
