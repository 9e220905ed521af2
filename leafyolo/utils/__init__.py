"""`prune_model` (leafyolo.utils.pruning) and `quantize_model` (leafyolo.utils.quantization)."""
