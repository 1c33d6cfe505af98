"""Running a deterministic simulator's seeds (kafka_compat.testing.raft_sim, cluster_sim): every
config run, each failure printed with the one-line command that replays it, a summary line, and the
options every simulator's command line shares."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any


def run_many(configs: Sequence[Any], run: Callable, describe: Callable[[Any], str],
             out: Callable[[str], None] = print) -> tuple[list[Any], int]:
    """Run every config (`run(config).events` counts its events); print a failure, with what
    `describe` says of its config, and its replay command. Returns (failed configs, events)."""
    failures, events = [], 0
    for cfg in configs:
        try:
            events += run(cfg).events
        except Exception as e:  # any exception is a finding: print the replay line
            failures.append(cfg)
            out(f"FAIL seed {cfg.seed} ({describe(cfg)}): {type(e).__name__}: {e}")
            out(f"  replay: {cfg.replay_command()}")
    return failures, events


def parser(module: str, doc: str, seeds_help: str, defaults: Any) -> argparse.ArgumentParser:
    """`--seeds`, `--seed`, `--first-seed`, `--chaos-ms`, `--settle-ms` (defaults from the
    simulator's config class); the simulator adds its own options."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n")[0])
    p.add_argument("--seeds", type=int, default=100, help=seeds_help)
    p.add_argument("--seed", type=int, help="run (replay) one seed")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--chaos-ms", type=int, default=defaults.chaos_ms)
    p.add_argument("--settle-ms", type=int, default=defaults.settle_ms)
    return p


def chosen(args: argparse.Namespace) -> Sequence[int]:
    """The seeds the options name: one to replay, or a range."""
    return [args.seed] if args.seed is not None else range(args.first_seed, args.first_seed + args.seeds)


def run_and_report(configs: Sequence[Any], run_many: Callable, what: str = "") -> int:
    """Run the configs and print one summary line; the exit status (1 when any seed failed)."""
    started = time.perf_counter()
    failures, events = run_many(configs)
    elapsed = time.perf_counter() - started
    print(f"{len(configs)} seeds ({configs[0].seed}..{configs[-1].seed}{what}), {len(failures)} failed, "
          f"{events} events, {elapsed:.1f} s"
          + (f"; failing seeds: {' '.join(str(c.seed) for c in failures)}" if failures else ""))
    return 1 if failures else 0
