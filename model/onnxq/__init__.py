"""ONNX QDQ int8 models in: onnxruntime's arithmetic on the chip's NET.npz contract.

:func:`import_onnx` reads a model quantized by onnxruntime's ``quantize_static``
(QuantFormat.QDQ) and returns an :class:`Imported`: the NET (requant, convolution and pool
layers, :mod:`rramcim.model.mlp`) and the host's QuantizeLinear / DequantizeLinear ends, so that
``imp.dequantize(reference(imp.net, imp.quantize(x)))`` equals onnxruntime's float32 output bit
for bit. What is supported and why it is exact: docs/onnx.md.

:mod:`.avx2`: the saturating accumulators of onnxruntime's default session on x86 CPUs
without VNNI (:func:`ort_saturates`, :func:`saturating_pairs`, :func:`avx2_correction`);
``reference(net, X, acc="avx2")`` reproduces them.

``onnx`` is imported only when a model is read.
"""

from .avx2 import avx2_correction, ort_saturates, saturating_pairs
from .graph import OnnxImportError
from .imported import Imported, IoSide, import_onnx

__all__ = ["Imported", "IoSide", "OnnxImportError", "avx2_correction", "import_onnx", "ort_saturates",
           "saturating_pairs"]
