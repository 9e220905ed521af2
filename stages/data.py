"""Stage `data`: materialise the dataset (embedded default generated, or a user data.yaml / COCO json validated)
and write a data report (images, boxes per class, box-size histogram)."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.prepare import prepare_dataset
from pipeline.stage.preflight import check_chain, load_chain
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("out", "dataset folder to write (holds data.yaml)"),
                      ("report", "data report JSON to write"))
    step = Steps("data", 3)
    step(f"checking every section of {args.params} (every key present, in range), the teacher weights "
         f"and what later stages need from this machine (Python packages, the web page's npm files)")
    check_chain(args.params)
    p = load_chain(args.params).data
    step(f"materialising dataset from {p.source!r} into {args.out}")
    data_yaml, report = prepare_dataset(p, Path(args.out))
    splits = report["splits"]
    notes = check_chain(args.params, data_yaml)  # what later stages need from this data, before any training
    step(f"{splits['train']['images']} train / {splits['val']['images']} val images, "
         f"{splits['train']['boxes'] + splits['val']['boxes']} boxes in {report['nc']} classes")
    step.write_metrics(args.report, {**report, **notes})
    print(f"data.yaml: {data_yaml}")


if __name__ == "__main__":
    main()
