"""LEAF-YOLO's Python API: `LEAFYOLO(...).train/predict/val/export/fuse/info`, `prune_model`, `quantize_model`,
`compress_with_distillation` (in `leafyolo.utils`).

A thin facade over `pipeline/`, the same code the DVC stages run (one implementation, two front doors).
"""

from leafyolo.model import LEAFYOLO
from pipeline.infer.predict import Detections as Results

__all__ = ["LEAFYOLO", "Results"]
