"""Optional decode + NMS appended to an exported FP32 ONNX graph, for deployments that want one self-contained file.

Our own runtimes never use it (CONTRACTS.md: decoding and NMS stay outside the graph, and outside every INT8
graph); it exists for users who ship the ONNX to a runtime without our post-processing.

Added nodes reproduce `pipeline.infer.postprocess.postprocess`: ltrb distances from the anchor points -> xyxy, each
anchor keeps only its best class (the others are zeroed; the first one on ties), then ONNX `NonMaxSuppression`
per class with `score > conf_thres` and suppression at IoU > `iou_thres`. The single output replaces `boxes`/`scores`:

    detections  float32 [K, 7] = (batch_index, x1, y1, x2, y2, score, class) in letterboxed input pixels

grouped by image then class (score-ordered within a class); `max_det` caps the boxes PER CLASS and image
(ONNX `max_output_boxes_per_class`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.export.common import OUTPUT_NAMES, ExportError, check_onnx, load_onnx, save_onnx
from pipeline.infer.postprocess import make_anchors

NMS_OUTPUT = "detections"


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def add_nms(model: onnx.ModelProto, imgsz: int, conf_thres: float = 0.25, iou_thres: float = 0.45,
            max_det: int = 300) -> onnx.ModelProto:
    """Return a copy of `model` (outputs `boxes` [B,N,4], `scores` [B,N,nc]) ending in decode + NMS."""
    if [o.name for o in model.graph.output] != list(OUTPUT_NAMES):
        raise ExportError(f"add_nms: expected graph outputs {OUTPUT_NAMES}, got {[o.name for o in model.graph.output]}")
    if not 0 <= conf_thres < 1 or not 0 < iou_thres <= 1 or max_det < 1:
        raise ValueError(f"add_nms: expected conf_thres in [0, 1), iou_thres in (0, 1], max_det >= 1, got "
                         f"{conf_thres}, {iou_thres}, {max_det}")
    opset = _opset(model)
    if opset < 11:
        raise ValueError(f"add_nms needs opset >= 11 (GatherND), the graph has opset {opset}")
    dims = model.graph.output[1].type.tensor_type.shape.dim
    nc = dims[2].dim_value if len(dims) == 3 else 0
    if not nc:
        raise ExportError("add_nms: the number of classes (last dim of `scores`) is not fixed in the graph")
    out = onnx.ModelProto.FromString(model.SerializeToString())
    g = out.graph
    points, _ = make_anchors(imgsz)
    consts = {
        "nms_points": points[None].astype(np.float32),  # [1, N, 2]
        "nms_0": np.array([0], np.int64), "nms_1": np.array([1], np.int64), "nms_2": np.array([2], np.int64),
        "nms_3": np.array([3], np.int64), "nms_4": np.array([4], np.int64),
        "nms_max_det": np.array([max_det], np.int64), "nms_iou": np.array([iou_thres], np.float32),
        "nms_conf": np.array([conf_thres], np.float32), "nms_col": np.array([-1, 1], np.int64),
        "nms_classes": np.arange(nc, dtype=np.int64),
    }
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    g.node.extend([
        # decode: xyxy = (points - lt, points + rb)
        helper.make_node("Slice", ["boxes", "nms_0", "nms_2", "nms_2"], ["nms_lt"]),
        helper.make_node("Slice", ["boxes", "nms_2", "nms_4", "nms_2"], ["nms_rb"]),
        helper.make_node("Sub", ["nms_points", "nms_lt"], ["nms_x1y1"]),
        helper.make_node("Add", ["nms_points", "nms_rb"], ["nms_x2y2"]),
        helper.make_node("Concat", ["nms_x1y1", "nms_x2y2"], ["nms_xyxy"], axis=2),
        # best class only (the first one on ties, like numpy's argmax): zero every other class of the anchor
        helper.make_node("ArgMax", ["scores"], ["nms_best"], axis=2, keepdims=1),
        helper.make_node("Equal", ["nms_best", "nms_classes"], ["nms_is_best"]),
        helper.make_node("Cast", ["nms_is_best"], ["nms_best_mask"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["scores", "nms_best_mask"], ["nms_scores"]),
        helper.make_node("Transpose", ["nms_scores"], ["nms_scores_t"], perm=[0, 2, 1]),  # [B, nc, N]
        helper.make_node("NonMaxSuppression", ["nms_xyxy", "nms_scores_t", "nms_max_det", "nms_iou", "nms_conf"],
                         ["nms_sel"], center_point_box=0),  # [K, 3] = (batch, class, anchor)
        helper.make_node("Slice", ["nms_sel", "nms_0", "nms_1", "nms_1"], ["nms_b"]),
        helper.make_node("Slice", ["nms_sel", "nms_1", "nms_2", "nms_1"], ["nms_c"]),
        helper.make_node("Slice", ["nms_sel", "nms_2", "nms_3", "nms_1"], ["nms_a"]),
        helper.make_node("Concat", ["nms_b", "nms_a"], ["nms_ba"], axis=1),
        helper.make_node("GatherND", ["nms_xyxy", "nms_ba"], ["nms_kept_boxes"]),  # [K, 4]
        helper.make_node("GatherND", ["nms_scores_t", "nms_sel"], ["nms_kept_scores"]),  # [K]
        helper.make_node("Reshape", ["nms_kept_scores", "nms_col"], ["nms_score_col"]),
        helper.make_node("Cast", ["nms_b"], ["nms_b_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["nms_c"], ["nms_c_f"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["nms_b_f", "nms_kept_boxes", "nms_score_col", "nms_c_f"], [NMS_OUTPUT], axis=1),
    ])
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(NMS_OUTPUT, TensorProto.FLOAT, ["num_detections", 7]))
    return out


def export_nms_onnx(fp32_onnx: str | Path, out_path: str | Path, imgsz: int, conf_thres: float = 0.25,
                    iou_thres: float = 0.45, max_det: int = 300) -> Path:
    """Read the FP32 ONNX written by `export_onnx`, append decode + NMS, check and write it atomically."""
    out_path = Path(out_path)
    model = add_nms(load_onnx(fp32_onnx), imgsz, conf_thres, iou_thres, max_det)
    check_onnx(model, out_path)
    return save_onnx(model, out_path)
