"""Stage `web`: the deployable web bundle, the page in web/page/, the pipeline's ONNX, the class names and the
onnxruntime-web files pinned by web/package-lock.json (installed with `npm ci --prefix web`), in one folder that
`leafyolo serve` (or any static server with the same headers) serves."""

from __future__ import annotations

from pipeline.config.params import load_section
from pipeline.config.stages import WebParams
from pipeline.export.web_bundle import build_bundle
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("onnx", "ONNX model the page runs"),
                      ("data", "data.yaml (class names for an ONNX that carries none)"),
                      ("page", "folder of the page's sources"), ("lock", "package-lock.json pinning onnxruntime-web"),
                      ("out", "bundle folder to write"), ("metrics", "metrics JSON to write"))
    p = load_section(args.params, "web", WebParams)
    step = Steps("web", 2)
    step(f"bundling {args.page}, {args.onnx} and onnxruntime-web into {args.out}")
    m = build_bundle(args.onnx, args.data, args.page, args.lock, args.out, p)
    files = m["files"]
    wasm = sum(f["bytes"] for name, f in files.items() if name.startswith("ort/"))
    step(f"wrote {len(files)} files, {m['total_bytes']:,} bytes: model {files['model.onnx']['bytes']:,} "
         f"({m['precision']}), onnxruntime-web {m['onnxruntime_web']} {wasm:,}")
    step.write_metrics(args.metrics, {"bundle_bytes": m["total_bytes"], "model_bytes": files["model.onnx"]["bytes"],
                                      "ort_bytes": wasm, "precision": m["precision"],
                                      "onnxruntime_web": m["onnxruntime_web"], "files": len(files)})


if __name__ == "__main__":
    main()
