"""Issue 20 on the RTL: onnxruntime QDQ models imported and run on the chip's Verilog (its AXI ports),
every window's cycles and results equal to the cycle-exact model's (run_plan checks them), the outputs
equal to the numpy reference and, dequantized, to onnxruntime's float32 outputs bit for bit.

A requantized MLP runs as a pipeline (sequences with rq: the requant lanes of the sequence sender); a CNN
runs layer by layer (im2col on the host, outq rq=1: the lanes of the packet sender), with onnxruntime's
saturation addend where this CPU's onnxruntime saturates."""

import numpy as np
import onnxruntime as ort
import pytest
from onnxruntime.quantization import QuantType

from rramcim.model.config import PRESETS
from rramcim.model.mlp import reference
from rramcim.model.onnxq import import_onnx, ort_saturates
from rramcim.sim.backends.jobs import pipeline_runs_on, run_net
from tests.onnx_models import cnn, mlp, quantized

ort.set_default_logger_severity(3)
ACC = "avx2" if ort_saturates() else "exact"


def _ort(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("sim, name", [("verilator", "default"), ("icarus", "tiny")])
def test_requantized_mlp_pipeline(tmp_path, sim, name):
    """Exact accumulators: the resident pipeline (sequences with rq; sizes that fit the tiles); every hidden and
    the last layer requantized on the tiles."""
    rng = np.random.default_rng(21)
    dims = [20, 24, 10] if name == "default" else [8, 7, 5]        # tiny: one 8x8 tile a layer
    x = rng.standard_normal((24, dims[0])).astype(np.float32)
    imp = import_onnx(quantized(tmp_path, mlp(rng, dims), [x[:16]], act=QuantType.QUInt8))
    xq = imp.quantize(x[16:20])
    Y, rep = run_net(PRESETS[name], imp.net, xq, sim, acc="exact")
    assert pipeline_runs_on(sim) is None
    assert rep["placement"] == "pipeline" and rep["backend"] == sim, rep["placement_reason"]
    assert np.array_equal(Y, reference(imp.net, xq, acc="exact"))


def test_cnn_layer_by_layer_equals_onnxruntime(tmp_path):
    rng = np.random.default_rng(22)
    x = rng.random((20, 1, 6, 6)).astype(np.float32)
    path = quantized(tmp_path, cnn(rng, cin=1, hw=6, c1=4, c2=8, pool=((2, 2), (1, 1), (0, 0, 0, 0))), [x[:16]],
                     per_channel=True, pow2=True)
    imp = import_onnx(path)
    xq = imp.quantize(x[16:19])
    Y, rep = run_net(PRESETS["default"], imp.net, xq, "verilator", acc=ACC)
    assert rep["placement"] == "layer-by-layer" and rep["backend"] == "verilator"
    assert np.array_equal(Y, reference(imp.net, xq, acc=ACC))
    got, want = imp.dequantize(Y), _ort(path, x[16:19])
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
