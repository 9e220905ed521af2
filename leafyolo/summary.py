"""`LEAFYOLO.info`: parameters, FLOPs and a layer summary (or the inputs/outputs of an ONNX / TFLite file)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline.checkpoint import count_params
from pipeline.prune import count_macs

if TYPE_CHECKING:
    from leafyolo.model import LEAFYOLO


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


def model_info(m: "LEAFYOLO", imgsz: int, verbose: bool = True) -> dict[str, Any]:
    if m.model is None:
        return _file_info(m, verbose)
    params = count_params(m.model)
    macs = count_macs(copy.deepcopy(m.model).cpu(), imgsz)
    info = {"variant": m.variant, "nc": m.nc, "imgsz": imgsz, "params": params, "macs": macs,
            "gflops": 2 * macs / 1e9, "fused": m.fused, "pruned": bool(m.pruning_history),
            "layers": layer_table(m.model, imgsz)}
    if verbose:
        print(f"{'layer':<22} {'type':<20} {'params':>10}  output")
        for row in info["layers"]:
            print(f"{row['name']:<22} {row['type']:<20} {row['params']:>10,}  {row['output'] or '-'}")
        print(f"{m.variant}: {params:,} parameters, {info['gflops']:.3f} GFLOPs ({macs:,} MACs) at {imgsz}px, "
              f"nc={m.nc}{', pruned' if m.pruning_history else ''}{', fused' if m.fused else ''}")
    return info


def _file_info(m: "LEAFYOLO", verbose: bool) -> dict[str, Any]:
    b = m.backend
    if hasattr(b, "session"):
        inputs = [{"name": i.name, "shape": i.shape, "dtype": i.type} for i in b.session.get_inputs()]
        outputs = [{"name": o.name, "shape": o.shape, "dtype": o.type} for o in b.session.get_outputs()]
    else:
        it = b.interpreter
        inputs = [{"name": d["name"], "shape": d["shape"].tolist(), "dtype": np.dtype(d["dtype"]).name}
                  for d in it.get_input_details()]
        outputs = [{"name": b.output_names.get(d["index"], d["name"]), "shape": d["shape"].tolist(),
                    "dtype": np.dtype(d["dtype"]).name} for d in it.get_output_details()]
    info = {"path": str(m.path), "size_bytes": m.path.stat().st_size, "imgsz": m.imgsz, "names": m.names,
            "inputs": inputs, "outputs": outputs}
    if verbose:
        print(f"{m.path}: {info['size_bytes']:,} bytes, {m.imgsz}px, classes {m.names or '(unknown)'}")
        for kind, items in (("input", inputs), ("output", outputs)):
            for t in items:
                print(f"  {kind} {t['name']}: {t['shape']} {t['dtype']}")
    return info
