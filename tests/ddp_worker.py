"""Run under torchrun by tests/test_train.py: one DDP epoch on CPU (gloo), each rank saves its weights."""

import sys
from pathlib import Path

import torch

from pipeline.config.augment import AugmentParams
from pipeline.config.train import TrainParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train.distributed import cleanup
from pipeline.train.trainer import Trainer

if __name__ == "__main__":
    data_yaml, out = sys.argv[1], Path(sys.argv[2])
    torch.manual_seed(0)
    data = load_data_yaml(data_yaml)
    p = TrainParams(epochs=1, batch_size=4, imgsz=64, optimizer="AdamW", lr0=0.01, warmup_epochs=0,
                    augment=AugmentParams(mosaic=0.0))
    model = LeafYOLO("leafyolo_u", data.nc)
    torch.save(model.state_dict(), out / "init.pt")
    trainer = Trainer(model, YoloDataset(data.train, data.nc, 64, augment=p.augment), p, data.names, out / "work",
                      progress=False)
    trainer.fit()
    torch.save({"rank": trainer.rank, "world": trainer.world, "state": model.state_dict()},
               out / f"rank{trainer.rank}.pt")
    cleanup()
