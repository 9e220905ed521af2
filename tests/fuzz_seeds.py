"""The valid files the fuzz cases (tests/fuzz_cases.py) start from: a tiny YOLO dataset, a second one outside it (for
paths that escape the dataset root), images of every mode, and small valid .pt / .onnx / .tflite models.

The ONNX and TFLite seeds are built by hand (a few hundred bytes: slices of the input reshaped to `boxes` [1, N, 4]
and `scores` [1, N, nc], the project's output contract at 32 px), so a byte mutation mostly hits the file's structure
rather than its weights; the .pt seed is a real `leafyolo_u` checkpoint.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

IMGSZ = 32
NAMES = ["square", "disc"]
N_ANCHORS = sum((IMGSZ // s) ** 2 for s in (8, 16, 32))  # 21 at 32 px


def tiny_tflite(imgsz: int = IMGSZ, nc: int = len(NAMES)) -> bytes:
    """A valid INT8 .tflite: input `images` int8 [1, S, S, 3] (scale 1/255, zero point -128), outputs `boxes`
    [1, N, 4] and `scores` [1, N, nc] cut from the input by SLICE + RESHAPE."""
    from pipeline.io.tflite_file import schema, write_model

    s = schema()
    n = sum((imgsz // st) ** 2 for st in (8, 16, 32))
    buffers, tensors, operators = [s.BufferT()], [], []

    def const(values: list[int]) -> int:
        b = s.BufferT()
        b.data = np.asarray(values, np.int32).tobytes()
        buffers.append(b)
        return len(buffers) - 1

    def tensor(name: str, shape: list[int], ttype: int, buffer: int = 0, quant: bool = False) -> int:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, ttype, buffer
        if quant:
            t.quantization = s.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [1 / 255], [-128]
        tensors.append(t)
        return len(tensors) - 1

    codes = []
    for op in (s.BuiltinOperator.SLICE, s.BuiltinOperator.RESHAPE):
        code = s.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = op
        code.version = 1
        codes.append(code)
    i8, i32 = s.TensorType.INT8, s.TensorType.INT32
    x = tensor("images", [1, imgsz, imgsz, 3], i8, quant=True)
    outputs = []
    for row, (name, channels) in enumerate((("boxes", 4), ("scores", nc))):
        width = n * channels // 3
        begin = tensor(f"{name}_begin", [4], i32, const([0, row, 0, 0]))
        size = tensor(f"{name}_size", [4], i32, const([1, 1, width, 3]))
        flat = tensor(f"{name}_flat", [1, 1, width, 3], i8, quant=True)
        shape = tensor(f"{name}_shape", [3], i32, const([1, n, channels]))
        out = tensor(name, [1, n, channels], i8, quant=True)
        cut = s.OperatorT()
        cut.opcodeIndex, cut.inputs, cut.outputs = 0, [x, begin, size], [flat]
        reshape = s.OperatorT()
        reshape.opcodeIndex, reshape.inputs, reshape.outputs = 1, [flat, shape], [out]
        reshape.builtinOptionsType = s.BuiltinOptions.ReshapeOptions
        reshape.builtinOptions = s.ReshapeOptionsT()
        reshape.builtinOptions.newShape = [1, n, channels]
        operators += [cut, reshape]
        outputs.append(out)
    graph = s.SubGraphT()
    graph.name, graph.tensors, graph.inputs, graph.outputs, graph.operators = "main", tensors, [x], outputs, operators
    model = s.ModelT()
    model.version, model.description = 3, "leafyolo fuzz seed"
    model.subgraphs, model.buffers, model.operatorCodes = [graph], buffers, codes
    return write_model(model)


def tiny_onnx(imgsz: int = IMGSZ, nc: int = len(NAMES)) -> bytes:
    """A valid ONNX: input `images` float32 [1, 3, S, S], outputs `boxes` [1, N, 4] and `scores` (sigmoid)
    [1, N, nc] cut from the input; metadata names and imgsz as the exporters write them."""
    import json

    import onnx
    from onnx import TensorProto, helper

    n = sum((imgsz // st) ** 2 for st in (8, 16, 32))

    def ints(name: str, values: list[int]):
        return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)

    inits = [ints("flat", [1, -1]), ints("b0", [0]), ints("b1", [n * 4]), ints("b2", [n * (4 + nc)]), ints("ax", [1]),
             ints("box_shape", [1, n, 4]), ints("score_shape", [1, n, nc])]
    nodes = [helper.make_node("Reshape", ["images", "flat"], ["x"]),
             helper.make_node("Slice", ["x", "b0", "b1", "ax"], ["bflat"]),
             helper.make_node("Reshape", ["bflat", "box_shape"], ["boxes"]),
             helper.make_node("Slice", ["x", "b1", "b2", "ax"], ["sflat"]),
             helper.make_node("Reshape", ["sflat", "score_shape"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], ["scores"])]
    graph = helper.make_graph(nodes, "fuzz_seed",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
                              [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, n, 4]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n, nc])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    for key, value in (("names", json.dumps(NAMES[:nc])), ("imgsz", str(imgsz)), ("nc", str(nc))):
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def png_with_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (IHDR, CRC fixed up) declares `width` x `height`: a decompression-bomb header."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = 8  # after the signature: length (4), b"IHDR", width, height, ...
    data[ihdr + 8:ihdr + 16] = struct.pack(">II", width, height)
    data[ihdr + 21:ihdr + 25] = struct.pack(">I", zlib.crc32(bytes(data[ihdr + 4:ihdr + 21])))
    return bytes(data)


def bmp_with_size(width: int, height: int) -> bytes:
    """A 1x1 BMP whose header declares `width` x `height` (signed 32-bit fields)."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "BMP")
    data = bytearray(buf.getvalue())
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def write_seeds(root: Path) -> dict[str, Path]:
    """Every seed under `root`: {"dataset": data.yaml, "elsewhere": a second dataset's root, "pt", "onnx",
    "tflite": model files, "image": a 32 px PNG}."""
    import torch

    from leafyolo import LEAFYOLO
    from pipeline.io.file_metadata import embed_tflite_metadata, file_metadata
    from tests.simple_data import write_simple_dataset

    root.mkdir(parents=True, exist_ok=True)
    seeds = {"dataset": write_simple_dataset(root / "dataset", n_images=2, imgsz=IMGSZ, val_is_train=True),
             "elsewhere": write_simple_dataset(root / "elsewhere", n_images=2, imgsz=IMGSZ).parent}
    torch.manual_seed(0)
    LEAFYOLO("leafyolo_u", nc=len(NAMES), names=NAMES, imgsz=IMGSZ).save(root / "model.pt")
    (root / "model.onnx").write_bytes(tiny_onnx())
    (root / "raw.tflite").write_bytes(tiny_tflite())
    embed_tflite_metadata(root / "raw.tflite", root / "model.tflite",
                          file_metadata("leafyolo_u", len(NAMES), NAMES, IMGSZ))
    seeds.update(pt=root / "model.pt", onnx=root / "model.onnx", tflite=root / "model.tflite",
                 image=root / "dataset" / "images" / "val" / "000.png")
    return seeds
