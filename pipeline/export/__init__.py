"""Export helpers: PyTorch -> ONNX (FP32/FP16), NNCF INT8 QDQ ONNX, onnx2tf full-INT8 TFLite.

Decoding and NMS stay outside every exported graph (CONTRACTS.md).
"""

from pipeline.export.common import ExportError, load_onnx
from pipeline.export.onnx_export import export_onnx, run_onnx
from pipeline.export.quantize import (
    load_calibration_set,
    quantization_report,
    quantize_onnx_int8,
    save_calibration_set,
)
from pipeline.export.tflite_export import export_tflite_int8, run_tflite

__all__ = [
    "ExportError", "export_onnx", "export_tflite_int8", "load_calibration_set", "load_onnx", "quantization_report",
    "quantize_onnx_int8", "run_onnx", "run_tflite", "save_calibration_set",
]
