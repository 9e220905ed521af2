"""Export: PyTorch -> ONNX (FP32/FP16), NNCF INT8 QDQ ONNX, onnx2tf full-INT8 TFLite. Decoding and NMS stay outside every
exported graph (CONTRACTS.md). Import the modules themselves; this file stays empty."""
