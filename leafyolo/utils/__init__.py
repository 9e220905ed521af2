"""`prune_model` (leafyolo.utils.pruning), `quantize_model` (leafyolo.utils.quantization) and
`compress_with_distillation` (leafyolo.utils.compression)."""
