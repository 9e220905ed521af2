"""Data: YOLO-layout datasets, validation, augmentation, the generated default dataset, COCO import, calibration
images. Import the modules themselves (`pipeline.data.dataset`, ...): this file stays empty so importing one does not
import them all."""
