"""ONNX QDQ int8 models in: onnxruntime's arithmetic on the chip's NET.npz contract.

:mod:`.avx2`: the saturating accumulators of onnxruntime's default session on x86 CPUs
without VNNI (:func:`ort_saturates`, :func:`saturating_pairs`, :func:`avx2_correction`).
"""

from .avx2 import avx2_correction, ort_saturates, saturating_pairs

__all__ = ["avx2_correction", "ort_saturates", "saturating_pairs"]
