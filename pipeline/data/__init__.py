"""Data layer: YOLO-layout datasets, validation, augmentation, the synthetic default dataset, COCO import."""

from pipeline.data.augment import AugmentParams
from pipeline.data.coco import coco_to_yolo
from pipeline.data.data_yaml import DataConfig, load_data_yaml
from pipeline.data.dataset import GroundTruth, YoloDataset, collate, ground_truth
from pipeline.data.errors import DatasetError
from pipeline.data.labels import label_path_for, labels_for, load_image, parse_labels
from pipeline.data.letterbox import letterbox
from pipeline.data.synthetic import CLASS_NAMES, describe_dataset, generate_dataset

__all__ = [
    "AugmentParams", "CLASS_NAMES", "DataConfig", "DatasetError", "GroundTruth", "YoloDataset", "coco_to_yolo",
    "collate", "describe_dataset", "generate_dataset", "ground_truth", "label_path_for", "labels_for", "letterbox",
    "load_data_yaml", "load_image", "parse_labels",
]
