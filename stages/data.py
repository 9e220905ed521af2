"""Stage `data`: materialise the dataset (embedded default generated, or a user data.yaml / COCO json validated)
and write a data report (images, boxes per class, box-size histogram)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_section
from pipeline.data.prepare import prepare_dataset
from pipeline.reporting import Steps, stage_args
from pipeline.stage_params import DataParams


def main() -> None:
    args = stage_args(__doc__, ("out", "dataset folder to write (holds data.yaml)"),
                      ("report", "data report JSON to write"))
    p = load_section(args.params, "data", DataParams)
    step = Steps("data", 2)
    step(f"materialising dataset from {p.source!r} into {args.out}")
    data_yaml, report = prepare_dataset(p, Path(args.out))
    splits = report["splits"]
    step(f"{splits['train']['images']} train / {splits['val']['images']} val images, "
         f"{splits['train']['boxes'] + splits['val']['boxes']} boxes in {report['nc']} classes")
    step.write_metrics(args.report, report)
    print(f"data.yaml: {data_yaml}")


if __name__ == "__main__":
    main()
