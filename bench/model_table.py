"""Parameters and FLOPs of each LEAF-YOLO variant at 320 and 416 input, nc=80, as a Markdown table.

    python -m bench.model_table            # prints the table (used for the README)
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.model.leafyolo import LeafYOLO
from pipeline.model.variants import VARIANTS


def gflops(model: torch.nn.Module, imgsz: int) -> float:
    """Forward FLOPs (2 x multiply-accumulates) of one image, counted by torch's FlopCounterMode."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, imgsz, imgsz))
    return counter.get_total_flops() / 1e9


def rows(nc: int = 80, sizes: tuple[int, ...] = (320, 416)) -> list[dict]:
    out = []
    for name in VARIANTS:
        model = LeafYOLO(name, nc).eval()
        row = {"variant": name, "params": sum(p.numel() for p in model.parameters())}
        row.update({f"gflops_{s}": gflops(model, s) for s in sizes})
        out.append(row)
    return out


def markdown(table: list[dict]) -> str:
    sizes = [k.split("_")[1] for k in table[0] if k.startswith("gflops_")]
    lines = ["| variant | params (nc=80) | " + " | ".join(f"GFLOPs @{s}" for s in sizes) + " |",
             "|---|---:|" + "---:|" * len(sizes)]
    for r in table:
        lines.append(f"| `{r['variant']}` | {r['params']:,} | " +
                     " | ".join(f"{r[f'gflops_{s}']:.3f}" for s in sizes) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("Command: python -m bench.model_table\n")
    print(markdown(rows()))
