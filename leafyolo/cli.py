"""`leafyolo predict|train|val|export|info`: the CLI twin of the Python API (same options, same defaults); and
`leafyolo serve`, which serves the web bundle (artifacts/web/bundle) on 127.0.0.1.

Every option of a verb comes from its dataclass in `leafyolo.options` (help text included), so the CLI and
`LEAFYOLO.<verb>(**kwargs)` cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leafyolo.options import ExportOptions, PredictOptions, TrainOptions, ValOptions

MODEL_HELP = "a .pt checkpoint, an .onnx / .tflite file (predict, val, info), or a variant name for a new model"


def _arg_type(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint if hint in (int, float) else str


def add_options(parser: argparse.ArgumentParser, cls: type, required: tuple[str, ...] = ()) -> None:
    """One --flag per dataclass field; unset flags are left out, so the API's defaults apply."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        text = f.metadata["help"]
        if f.default is not None and "default" not in text:
            text += f" (default: {f.default})"
        if hints[f.name] is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=text)
        else:
            parser.add_argument(flag, dest=f.name, type=_arg_type(hints[f.name]), default=argparse.SUPPRESS,
                                help=text, required=f.name in required)


def options_of(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leafyolo", description="LEAF-YOLO: train, predict, validate, export.",
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="{predict,train,val,export,info,serve}")

    def verb(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, allow_abbrev=False, **kwargs)  # so --epoch is rejected, not read as --epochs

    p = verb("predict", help="detect objects in images", description="Detect objects in images; prints one line "
             "per image and, with --save-dir, writes the images with their boxes drawn.")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--source", required=True, nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--save-dir", help="write each image with its detections drawn into this folder")
    p.add_argument("--json", dest="json_out", help="write the detections to this JSON file")
    add_options(p, PredictOptions)

    t = verb("train", help="train (optionally distilling from a teacher)",
             description="Train from the model's current weights and write <project>/<name>/model.pt. "
                         "Augmentation: --augment-strength s multiplies hsv_h/s/v, translate, scale, mosaic, mixup "
                         "and copy_paste of the published recipe (clipped to their ranges); s=0 also turns the "
                         "horizontal flip off.")
    t.add_argument("--model", default="leafyolo_u", help=MODEL_HELP + " (default: leafyolo_u)")
    add_options(t, TrainOptions, required=("data",))

    v = verb("val", help="mAP50, mAP50-95 and per-class AP on a data.yaml split",
             description="COCO-style mAP of the model (.pt, .onnx or .tflite) on a split of a data.yaml.")
    v.add_argument("--model", required=True, help=MODEL_HELP)
    v.add_argument("--json", dest="json_out", help="also write the metrics to this JSON file")
    add_options(v, ValOptions)

    e = verb("export", help="write ONNX, TFLite or TorchScript", description="Export a .pt model to ONNX (FP32, "
             "FP16, INT8 QDQ, dynamic batch, optional NMS in the graph), TFLite (float32, float16, full INT8 "
             "calibrated on --data) or TorchScript (FP32); prints the file and its size.")
    e.add_argument("--model", required=True, help="a .pt checkpoint or a variant name")
    add_options(e, ExportOptions)

    i = verb("info", help="parameters, FLOPs and layer summary",
             description="Print the parameters, FLOPs and a layer summary of a model (inputs and outputs for an "
                         ".onnx / .tflite file).")
    i.add_argument("--model", default="leafyolo_u", help=MODEL_HELP + " (default: leafyolo_u)")
    i.add_argument("--img-size", dest="img_size", type=int, help="image size for FLOPs (default: the model's size)")

    s = verb("serve", help="serve the web bundle on 127.0.0.1",
             description="Serve the web page bundle the `web` stage writes, on 127.0.0.1 only, with the headers "
                         "onnxruntime-web needs for threads (COOP/COEP) and the right MIME types; open the printed URL.")
    s.add_argument("dir", nargs="?", default="artifacts/web/bundle", help="bundle folder (default: artifacts/web/bundle)")
    s.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    return parser


def _predict(model, args: argparse.Namespace) -> None:
    results = model.predict(args.source, **options_of(args, PredictOptions))
    records = []
    for k, r in enumerate(results):
        name = r.path or f"image{k}"
        dets = ", ".join(f"{lab} {s:.2f} [{', '.join(f'{c:.0f}' for c in b)}]"
                         for lab, s, b in zip(r.labels, r.scores.tolist(), r.boxes.tolist()))
        print(f"{name}: {len(r)} detections{': ' + dets if dets else ''}")
        if args.save_dir:
            r.save(Path(args.save_dir) / (Path(name).stem + ".png"))
        records.append({"image": name, "boxes": r.boxes.tolist(), "scores": r.scores.tolist(),
                        "classes": r.classes.tolist(), "labels": r.labels})
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(records, indent=2) + "\n")
    if args.save_dir:
        print(f"saved {len(results)} images to {args.save_dir}")


def _val(model, args: argparse.Namespace) -> None:
    m = model.val(**options_of(args, ValOptions))
    print(f"mAP50 {m['mAP50']:.4f}  mAP50-95 {m['mAP50-95']:.4f}  ({m['images']} images)")
    for name, c in m["per_class"].items():
        print(f"  {name:<20} AP50 {c['AP50']:.4f}  AP50-95 {c['AP50-95']:.4f}  instances {c['instances']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(m, indent=2) + "\n")


def _serve(args: argparse.Namespace) -> int:
    from pipeline.export.web_serve import make_server, url_of

    try:
        server = make_server(args.dir, args.port)
    except OSError as exc:  # no bundle there (FileNotFoundError), or the port is taken
        print(f"leafyolo serve: error: {exc}", file=sys.stderr)
        return 2
    print(f"serving {args.dir} at {url_of(server)} (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "serve":
        return _serve(args)
    from leafyolo.model import LEAFYOLO
    from pipeline.export.common import ExportError

    try:
        model = LEAFYOLO(args.model)
        if args.verb == "predict":
            _predict(model, args)
        elif args.verb == "train":
            opts = options_of(args, TrainOptions)
            result = model.train(**opts)
            print(f"checkpoint: {result['path']}")
        elif args.verb == "val":
            _val(model, args)
        elif args.verb == "export":
            model.export(**options_of(args, ExportOptions))
        else:
            model.info(img_size=args.img_size)
    except (ValueError, FileNotFoundError, ExportError) as exc:
        print(f"leafyolo {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
