"""``rramcim import MODEL.onnx -o NET.npz``: the NET file an onnxruntime QDQ model becomes (docs/onnx.md),
for inspection or for ``rramcim run --net`` (int8 in, int8 out as int32; the ``io_*`` fields hold the
float ends)."""

from __future__ import annotations

import io

from .common import CliError
from .outputs import Outputs


def add_parser(sub):
    sp = sub.add_parser("import", help="convert an int8 QDQ ONNX model to a NET.npz",
                        description="Convert an ONNX model quantized by onnxruntime's quantize_static (QDQ int8: "
                                    "Conv, Gemm, MatMul, Relu/Clip, MaxPool, Flatten, Reshape) to the NET.npz the "
                                    "chip runs: per layer w{i}, b{i} (input zero point folded in), scale{i}, zp{i}, "
                                    "lo{i}, hi{i}, conv{i}, pool{i}, and io_* fields for the float ends. An "
                                    "unsupported graph is one line naming the node and why (docs/onnx.md).")
    sp.add_argument("model", metavar="MODEL.onnx")
    sp.add_argument("-o", "--out", metavar="NET.npz", required=True, help="the NET file to write")
    sp.set_defaults(func=main)


def main(args):
    from .onnx_run import load_model
    outputs = Outputs([("-o", args.out)], inputs=[("MODEL.onnx", args.model)])
    imp = load_model(args.model)
    buf = io.BytesIO()
    try:
        imp.save(buf)
    except (OSError, ValueError) as e:
        raise CliError(f"{args.out}: cannot write it ({e})") from None
    net = imp.net
    for i, L in enumerate(net.layers):
        what = "conv" if L.conv is not None else "dense"
        print(f"  layer {i}: {what} K={L.w.shape[0]} N={L.w.shape[1]}"
              + (f", maxpool {L.pool.kh}x{L.pool.kw}" if L.pool is not None else "")
              + (f", requant zp {L.rq.zp} [{L.rq.lo}, {L.rq.hi}]" if L.rq is not None else ""))
    outputs.stage("-o", args.out, buf.getvalue())
    print(f"rramcim import: {args.model}: {len(net.layers)} layers, input {list(imp.input_shape[1:])} -> "
          f"{net.inputs} int8, output {net.outputs} int8 -> {list(imp.output_shape[1:])}; wrote {args.out}")
    outputs.commit()
