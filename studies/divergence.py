"""How chaotic is training? The weights of one training section's first steps, run again with a hair changed, set
against a reference run: why another thread count (or CPU) gives another model, and why the seed spread is wide.

    python -m studies.divergence [--params params.yaml] [--section teacher] [--steps 100] [--every 10] [--seed 0]
        [--threads 2] [--data DATA_YAML] [--out studies/results/divergence.md]

Runs, each in this process, of the section's variant trained alone (no teacher) on the params' dataset with the
section's train settings and LR schedule, for `--steps` optimizer steps:

- reference: `--threads` torch threads, `--seed` (initial weights, data order, augmentation)
- same again: the reference repeated (distance 0: the study itself is deterministic)
- other threads: the same seed at another torch thread count (1, or 2 when `--threads` is 1)
- perturbed: the reference with every initial weight scaled by (1 + 1e-6 N(0, 1))
- other seed: `--seed` + 1

Every `--every` steps the distance ||w - w_ref|| / ||w_ref|| of the whole parameter vector to the reference run's
is recorded, with the batch loss of each run.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from bench.stamp import stamp, write_report

PERTURBATION = 1e-6
SECTIONS = ("teacher", "distill")


class _Enough(Exception):
    """Raised from the step hook once the asked steps are taken."""


def train_steps(section: Any, data_yaml: Path, seed: int, threads: int, steps: int, every: int,
                perturb: float = 0.0) -> tuple[list[torch.Tensor], list[float]]:
    """The parameter vector after every `every` steps and the loss of each step, of `section`'s variant trained
    alone for the first `steps` steps of `Trainer.fit` (the section's whole LR schedule, stopped there)."""
    from pipeline.common.seeding import seed_everything
    from pipeline.data.data_yaml import load_data_yaml
    from pipeline.model.leafyolo import LeafYOLO
    from pipeline.train.run import build_datasets
    from pipeline.train.trainer import Trainer

    torch.set_num_threads(threads)
    p = dataclasses.replace(section.train, seed=seed)
    data = load_data_yaml(data_yaml)
    train_set, _ = build_datasets(data, p)
    seed_everything(seed)
    model = LeafYOLO(section.variant, data.nc, act=section.act, seed=seed)
    if perturb:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for q in model.parameters():
                q.mul_(1 + perturb * torch.randn(q.shape, generator=g))
    snapshots: list[torch.Tensor] = []
    losses: list[float] = []

    def record(step: int, loss: float, net: torch.nn.Module) -> None:
        losses.append(loss)
        if (step + 1) % every == 0:
            snapshots.append(torch.cat([q.detach().flatten().clone() for q in net.parameters()]))
        if step + 1 == steps:
            raise _Enough

    with tempfile.TemporaryDirectory() as work:
        trainer = Trainer(model, train_set, p, data.names, work, progress=False)
        total = p.epochs * len(trainer._loader()[0])
        if not 0 < steps <= total:
            raise ValueError(f"--steps {steps} is more than the {total} steps of {p.epochs} epochs"
                             if steps > 0 else f"--steps must be >= 1, got {steps}")
        try:
            trainer.fit(on_step=record)
        except _Enough:
            return snapshots, losses
    raise AssertionError("unreachable: steps <= total was checked")


def distances(reference: list[torch.Tensor], other: list[torch.Tensor]) -> list[float]:
    return [float((o - r).norm() / r.norm()) for r, o in zip(reference, other)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--section", default="teacher", choices=SECTIONS)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=None, help="a data.yaml (default: the params' dataset, generated)")
    parser.add_argument("--out", default="studies/results/divergence.md")
    args = parser.parse_args()
    if not 0 < args.every <= args.steps:
        parser.error(f"--every must be in 1..--steps ({args.steps}), got {args.every}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    from pipeline.config.params import load_section
    from pipeline.config.stages import DistillParams, TeacherParams
    from studies.recipe_spread import dataset_for

    section = load_section(args.params, args.section, {"teacher": TeacherParams, "distill": DistillParams}[args.section])
    header = stamp()
    with tempfile.TemporaryDirectory() as tmp:
        data_yaml = Path(args.data) if args.data else dataset_for(yaml.safe_load(Path(args.params).read_text()),
                                                                   Path(tmp))
        other_threads = 2 if args.threads == 1 else 1
        plan = {"reference": (args.seed, args.threads, 0.0), "same again": (args.seed, args.threads, 0.0),
                f"{other_threads} thread(s)": (args.seed, other_threads, 0.0),
                "perturbed 1e-6": (args.seed, args.threads, PERTURBATION),
                f"seed {args.seed + 1}": (args.seed + 1, args.threads, 0.0)}
        runs = {name: train_steps(section, data_yaml, seed, threads, args.steps, args.every, perturb)
                for name, (seed, threads, perturb) in plan.items()}
    ref = runs["reference"][0]
    rows = [{"run": name, "seed": plan[name][0], "threads": plan[name][1], "perturbation": plan[name][2],
             "distance": distances(ref, snaps), "loss": losses} for name, (snaps, losses) in runs.items()]
    marks = [args.every * (i + 1) for i in range(len(ref))]
    lines = [f"# Training divergence ({args.section} section, {section.variant}, first {args.steps} steps)", "",
             header, "",
             "Relative distance ||w - w_ref|| / ||w_ref|| of all weights to the reference run "
             f"(seed {args.seed}, {args.threads} threads) after each block of optimizer steps, same data and settings.",
             "", "| run | " + " | ".join(f"step {m}" for m in marks) + " |", "|---|" + "---:|" * len(marks)]
    lines += [f"| {r['run']} | " + " | ".join(f"{d:.1e}" for d in r["distance"]) + " |" for r in rows[1:]]
    lines += ["", "Mean batch loss over the last block of steps: "
              + ", ".join(f"{r['run']} {sum(r['loss'][-args.every:]) / args.every:.3f}" for r in rows) + "."]
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
