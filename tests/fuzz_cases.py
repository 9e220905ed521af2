"""Fuzzed input (issue 27 item 3): hypothesis strategies that draw a mutation of every kind of file or value a user
hands the project. A drawn case is plain data (picklable); `tests/fuzz_checks.py` turns it into files, runs the
project on them and classifies the outcome; `tests/fuzz_runner.py` runs the cases in a worker process. The test
(tests/test_fuzz.py) and the report (bench/fuzz.py) share all three.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Cases per kind, per run (hypothesis max_examples): 1500 in all, about a minute on 2 cores.
EXAMPLES = {"image": 300, "label": 300, "data_yaml": 150, "coco": 200, "params": 250, "model": 300}

# --- bytes ----------------------------------------------------------------------------------------------------------
_POSITION = st.tuples(st.sampled_from(["any", "head", "tail"]), st.integers(0, 1 << 20))
_U32 = st.sampled_from([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0x10000000, "len", "len+4", "len-4"])

BYTE_MUTATIONS = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(_POSITION, st.integers(0, 255)), min_size=1, max_size=6)),
    st.tuples(st.just("u32"), st.lists(st.tuples(_POSITION, _U32), min_size=1, max_size=3)),  # offsets out of bounds
    st.tuples(st.just("random"), st.binary(max_size=300)),
    st.tuples(st.just("text"), st.text(max_size=120)),
    st.just(("empty",)),
)


def _offset(data: bytes | bytearray, position: tuple[str, int], align: int = 1) -> int:
    region, k = position
    window = min(len(data), 4096)
    at = {"any": k % max(len(data), 1), "head": k % max(window, 1), "tail": len(data) - 1 - k % max(window, 1)}[region]
    return max(0, at - at % align)


def mutate_bytes(data: bytes, mutation: tuple) -> bytes:
    """`data` with one drawn mutation applied (`BYTE_MUTATIONS`)."""
    what = mutation[0]
    if what == "none":
        return data
    if what == "truncate":
        return data[:int(len(data) * mutation[1])]
    if what == "random":
        return mutation[1]
    if what == "text":
        return mutation[1].encode("utf-8", "surrogatepass")
    if what == "empty":
        return b""
    out = bytearray(data)
    if not out:
        return data
    if what == "flip":
        for position, value in mutation[1]:
            out[_offset(out, position)] = value
    else:  # u32: a little-endian field (a flatbuffer offset, a length) set to a value pointing anywhere
        special = {"len": len(out), "len+4": len(out) + 4, "len-4": max(len(out) - 4, 0)}
        for position, value in mutation[1]:
            at = min(_offset(out, position, 4), max(len(out) - 4, 0))
            out[at:at + 4] = (special.get(value, value) & 0xFFFFFFFF).to_bytes(4, "little")[:len(out) - at]
    return bytes(out)


# --- values (params, data.yaml, COCO json) -------------------------------------------------------------------------
WRONG_VALUES = st.sampled_from(["nan", "inf", "-inf", -1, 0, 1, 0.5, -0.5, 10**30, 2**63, 1e308, "x", "", None, [], {},
                                True, False, "1", [1, 2], {"a": 1}])

# --- images ---------------------------------------------------------------------------------------------------------
MODES = {"PNG": ["RGB", "L", "LA", "P", "RGBA", "1", "I;16", "I"], "JPEG": ["RGB", "L", "CMYK"],
         "BMP": ["RGB", "L", "P", "1"], "WEBP": ["RGB", "RGBA"], "TIFF": ["RGB", "L", "P", "CMYK", "I;16", "F", "RGBA"]}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}
BOMB_SIZES = [(30000, 30000), (10000, 10000), (65535, 65535), (2**31 - 1, 1), (1, 2**31 - 1), (0, 0), (20000, 1)]


@st.composite
def image_cases(draw) -> dict:
    fmt = draw(st.sampled_from(sorted(MODES)))
    header = draw(st.one_of(st.none(), st.tuples(st.sampled_from(["PNG", "BMP"]), st.sampled_from(BOMB_SIZES))))
    return {"kind": "image", "format": fmt, "mode": draw(st.sampled_from(MODES[fmt])),
            "size": (draw(st.integers(1, 48)), draw(st.integers(1, 48))),
            "orientation": draw(st.sampled_from([None, 1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 65535])),
            "bomb": header, "mutation": draw(BYTE_MUTATIONS),
            "suffix": draw(st.sampled_from([None, ".jpg", ".png", ".jpeg", ".bmp", ".webp", ".tiff"])),
            "entry": draw(st.sampled_from(["index", "index-decode", "dataset", "predict"])),
            "on_error": draw(st.sampled_from(["raise", "skip"]))}


# --- YOLO label files -----------------------------------------------------------------------------------------------
_FIELD = st.one_of(
    st.sampled_from(["0", "1", "2", "3", "-1", "1.5", "1.0", "-0", "nan", "NaN", "inf", "-inf", "1e999", "-1e999",
                     "0x1", "1_0", "", "0.5", "0.25", "1e-3", "+0.5", ".5", "5.", "١", "0,5"]),
    st.floats(-0.5, 1.5).map(lambda v: f"{v:.6g}"),
    st.floats(0.05, 0.95).map(lambda v: f"{v:.4f}"),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=4),
)
_LINE = st.one_of(
    st.lists(_FIELD, min_size=0, max_size=7),
    st.tuples(st.integers(0, 2), st.floats(0.3, 0.7), st.floats(0.3, 0.7), st.floats(0.05, 0.5), st.floats(0.05, 0.5))
    .map(lambda t: [str(t[0]), *(f"{v:.5f}" for v in t[1:])]),  # a valid line
)


@st.composite
def label_cases(draw) -> dict:
    return {"kind": "label", "lines": draw(st.lists(_LINE, max_size=6)),
            "sep": draw(st.sampled_from([" ", "\t", "  ", " \t"])),
            "newline": draw(st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\n \n"])),
            "bom": draw(st.booleans()), "trailing_newline": draw(st.booleans()),
            "encoding": draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16"])),
            "entry": draw(st.sampled_from(["parse", "index"])), "on_error": draw(st.sampled_from(["raise", "skip"]))}


# --- data.yaml ------------------------------------------------------------------------------------------------------
_YAML_VALUES = st.one_of(
    WRONG_VALUES,
    st.sampled_from(["../..", "..", "/", "dotdot_elsewhere", "abs_elsewhere", "abs_inside", "images/nope",
                     "data.yaml", "images/train/../../images/val"]),
    st.sampled_from([["a"], ["a", "b", "c"], {0: "a", 1: "b"}, {0: "a", 2: "b"}, {"x": "a", "y": "b"}, [1, 2], [None, "b"],
                     [["a"], "b"], ["square", "disc"]]),
)
_TEXT_MUTATIONS = st.one_of(st.none(), st.sampled_from(["invalid", "list", "empty", "latin-1", "aliases", "scalar", "deep"]),
                            st.tuples(st.just("bytes"), BYTE_MUTATIONS))


@st.composite
def data_yaml_cases(draw) -> dict:
    changes = draw(st.lists(st.one_of(
        st.tuples(st.just("set"), st.sampled_from(["path", "train", "val", "nc", "names"]), _YAML_VALUES),
        st.tuples(st.just("delete"), st.sampled_from(["path", "train", "val", "nc", "names"]))), max_size=3))
    return {"kind": "data_yaml", "changes": changes, "text": draw(_TEXT_MUTATIONS),
            "entry": draw(st.sampled_from(["prepare", "prepare", "cli-val"])),
            "on_error": draw(st.sampled_from(["raise", "skip"]))}


# --- COCO json ------------------------------------------------------------------------------------------------------
_COCO_FIELDS = {"image": ["id", "file_name", "width", "height"],
                "annotation": ["id", "image_id", "category_id", "bbox", "iscrowd"], "category": ["id", "name"]}
_COCO_VALUES = st.one_of(
    WRONG_VALUES,
    st.sampled_from(["dotdot_image", "abs_image", "missing_image", "text_file", "corrupt_image", "label_file"]),
    st.sampled_from([[0, 0, 4, 4], [0, 0, -4, 4], [0, 0, 0, 0], [30, 30, 10, 10], [0, 0, 4], [0, 0, 4, 4, 4], "1234",
                     ["1", "2", "3", "4"], [None, 0, 4, 4], 99, 7, 32, 64]),
)


@st.composite
def coco_cases(draw) -> dict:
    changes = draw(st.lists(st.one_of(
        st.tuples(st.just("top"), st.sampled_from(["images", "annotations", "categories"]), WRONG_VALUES),
        st.tuples(st.just("delete_top"), st.sampled_from(["images", "annotations", "categories"])),
        st.sampled_from(sorted(_COCO_FIELDS)).flatmap(lambda target: st.tuples(
            st.just(target), st.integers(0, 3), st.sampled_from(_COCO_FIELDS[target]), _COCO_VALUES)),
        st.tuples(st.sampled_from(["delete_image", "delete_annotation", "delete_category"]), st.integers(0, 3),
                  st.sampled_from(["id", "file_name", "width", "bbox", "name", "image_id", "category_id"])),
        st.tuples(st.just("duplicate"), st.sampled_from(["images", "annotations", "categories"]))), max_size=3))
    return {"kind": "coco", "changes": changes, "text": draw(_TEXT_MUTATIONS),
            "val_fraction": draw(st.sampled_from([0.5, 0.5, 0.0, 1.0, float("nan")]))}


# --- params.yaml sections -------------------------------------------------------------------------------------------
SECTIONS = ("data", "teacher", "distill", "prune", "tflite", "finetune", "calibrate", "onnx", "web", "evaluate", "plots",
            "gate")


@st.composite
def params_cases(draw) -> dict:
    change = draw(st.one_of(
        st.tuples(st.just("set"), st.integers(0, 200), WRONG_VALUES),
        st.tuples(st.just("delete"), st.integers(0, 200)),
        st.tuples(st.just("unknown"), st.integers(0, 200)),
        st.tuples(st.just("section"), WRONG_VALUES),
        st.tuples(st.just("missing_section"))))
    return {"kind": "params", "section": draw(st.sampled_from(SECTIONS)), "changes": [change],
            "more": draw(st.lists(st.tuples(st.just("set"), st.integers(0, 200), WRONG_VALUES), max_size=2)),
            "text": draw(st.one_of(st.none(), st.none(), st.none(), _TEXT_MUTATIONS))}


# --- model files ----------------------------------------------------------------------------------------------------
CKPT_VALUES = {"variant": ["nope", 3, None, ""], "nc": [0, -1, "2", 10**9, 2.5, True, None, 3],
               "names": [["a"], "ab", None, [1, 2], ["a", "b", "c"], {}], "act": ["nope", None, 1, "silu"],
               "imgsz": [0, -32, 33, "x", 10**9, None, 2.5, 64], "model": [{}, None, "x", [1]],
               "pruning_history": ["x", [1, 2], [{"bad": 1}], None, [[1, 2, 3]]]}
ENTRIES = ["api-load", "api-predict", "api-info", "cli-info", "cli-predict", "cli-val", "cli-export"]


@st.composite
def model_cases(draw) -> dict:
    seed = draw(st.sampled_from(["pt", "onnx", "tflite", "tflite", "pt-fields"]))
    if seed == "pt-fields":
        field = draw(st.sampled_from(sorted(CKPT_VALUES)))
        mutation = ("field", field, draw(st.sampled_from([*CKPT_VALUES[field], "<delete>"])))
    else:
        mutation = draw(BYTE_MUTATIONS)
    suffix = draw(st.one_of(st.none(), st.sampled_from([".pt", ".pth", ".onnx", ".tflite", ".txt", ".PT", ".TFLite"])))
    return {"kind": "model", "seed": seed, "mutation": mutation, "suffix": suffix, "entry": draw(st.sampled_from(ENTRIES))}


STRATEGIES = {"image": image_cases(), "label": label_cases(), "data_yaml": data_yaml_cases(), "coco": coco_cases(),
              "params": params_cases(), "model": model_cases()}
