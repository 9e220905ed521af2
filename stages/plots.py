"""Stage `plots`: image plots for `dvc plots show`, a person's view of the final model: the INT8 TFLite's detections
(class names, scores; ground truth dashed) on the first `plots.n_images` val images, run under LiteRT, and mAP50
with its 95 % interval against file size across the chain, from the evaluate stage's outputs."""

from __future__ import annotations

from pipeline.config.params import load_section
from pipeline.config.stages import PlotsParams
from pipeline.evaluate.figures import predictions_grid, size_map_chart
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("data", "data.yaml (val images, class names)"), ("model", "INT8 TFLite to run"),
                      ("size_plot", "mAP-vs-size data of the evaluate stage"),
                      ("eval_metrics", "metrics JSON of the evaluate stage (the 95 % intervals)"),
                      ("predictions", "PNG to write: detections on val images"),
                      ("size_chart", "PNG to write: mAP50 vs file size"))
    p = load_section(args.params, "plots", PlotsParams)
    step = Steps("plots", 2)
    step(f"drawing the detections of {args.model} on the first {p.n_images} val images")
    grid = predictions_grid(args.model, args.data, args.predictions, p)
    chart = size_map_chart(args.size_plot, args.eval_metrics, args.size_chart)
    step(f"wrote {args.predictions} ({grid['images']} images, {grid['detections']} detections, {grid['bytes']:,} B) "
         f"and {args.size_chart} ({chart['points']} artifacts, {chart['bytes']:,} B)")


if __name__ == "__main__":
    main()
