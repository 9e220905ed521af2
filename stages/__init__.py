"""The DVC stages, one module each (`python -m stages.<name>`). Importing this package pins torch's CPU kernels
(`pipeline/common/kernels.py`) before any stage imports torch, so a stage writes the same bytes on any x86-64 CPU."""

from pipeline.common.kernels import pin_portable_kernels

pin_portable_kernels()
