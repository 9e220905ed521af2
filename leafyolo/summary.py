"""`LEAFYOLO.info`: parameters, FLOPs and a layer summary (or the inputs/outputs of an ONNX / TFLite file)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from pipeline.compress.prune import count_macs
from pipeline.model.count import count_params


def layer_table(model: torch.nn.Module, imgsz: int) -> list[dict[str, Any]]:
    """Each second-level module (backbone.stage3, neck.td4, head.cls_pred, ...): type, parameters and the
    output shape of its first call on one image at `imgsz`."""
    work = copy.deepcopy(model).cpu().eval()
    rows: dict[str, dict[str, Any]] = {}
    hooks = []
    for name, module in work.named_modules():
        if name.count(".") != 1:
            continue
        rows[name] = {"name": name, "type": type(module).__name__, "params": count_params(module), "output": None}

        def hook(_m, _inp, out, row=rows[name]):
            if row["output"] is None and isinstance(out, torch.Tensor):
                row["output"] = list(out.shape)

        hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        work(torch.zeros(1, 3, imgsz, imgsz))
    for h in hooks:
        h.remove()
    return list(rows.values())


def model_info(model: torch.nn.Module, imgsz: int, fused: bool, pruned: bool, verbose: bool = True) -> dict[str, Any]:
    """Parameters, MACs and the layer table of a PyTorch LeafYOLO at `imgsz`."""
    params = count_params(model)
    macs = count_macs(copy.deepcopy(model).cpu(), imgsz)
    info = {"variant": model.variant, "nc": model.nc, "imgsz": imgsz, "params": params, "macs": macs,
            "gflops": 2 * macs / 1e9, "fused": fused, "pruned": pruned, "layers": layer_table(model, imgsz)}
    if verbose:
        print(f"{'layer':<22} {'type':<20} {'params':>10}  output")
        for row in info["layers"]:
            print(f"{row['name']:<22} {row['type']:<20} {row['params']:>10,}  {row['output'] or '-'}")
        print(f"{model.variant}: {params:,} parameters, {info['gflops']:.3f} GFLOPs ({macs:,} MACs) at {imgsz}px, "
              f"nc={model.nc}{', pruned' if pruned else ''}{', fused' if fused else ''}")
    return info


def file_info(path: Any, b: Any, imgsz: int, names: list[str], verbose: bool = True) -> dict[str, Any]:
    """Size, image size, class names, inputs and outputs of an ONNX / TFLite file opened as backend `b`."""
    if hasattr(b, "session"):
        inputs = [{"name": i.name, "shape": i.shape, "dtype": i.type} for i in b.session.get_inputs()]
        outputs = [{"name": o.name, "shape": o.shape, "dtype": o.type} for o in b.session.get_outputs()]
    else:
        it = b.interpreter
        inputs = [{"name": d["name"], "shape": d["shape"].tolist(), "dtype": np.dtype(d["dtype"]).name}
                  for d in it.get_input_details()]
        outputs = [{"name": b.output_names.get(d["index"], d["name"]), "shape": d["shape"].tolist(),
                    "dtype": np.dtype(d["dtype"]).name} for d in it.get_output_details()]
    info = {"path": str(path), "size_bytes": path.stat().st_size, "imgsz": imgsz, "names": names,
            "inputs": inputs, "outputs": outputs}
    if str(path).endswith(".tflite"):
        from pipeline.export.tflite_size import format_breakdown, size_breakdown
        from pipeline.infer.tflm import min_arena_bytes

        info["size_breakdown"] = size_breakdown(path)
        try:
            info["tflm_arena_bytes"] = min_arena_bytes(path)
        except RuntimeError as e:  # an op without a TFLM kernel (float TFLite files have several)
            info["tflm_error"] = str(e)
    if verbose:
        print(f"{path}: {info['size_bytes']:,} bytes, {imgsz}px, classes {names or '(unknown)'}")
        if "size_breakdown" in info:
            print(f"  bytes: {format_breakdown(info['size_breakdown'])}")
        if "tflm_arena_bytes" in info:
            print(f"  TensorFlow Lite Micro: runs in a {info['tflm_arena_bytes']:,}-byte tensor arena")
        elif "tflm_error" in info:
            print(f"  TensorFlow Lite Micro: {info['tflm_error']}")
        for kind, items in (("input", inputs), ("output", outputs)):
            for t in items:
                print(f"  {kind} {t['name']}: {t['shape']} {t['dtype']}")
    return info
