"""The demo network: a 64-32-10 MLP trained on scikit-learn's digits, quantized to int8.

Training uses scikit-learn's bundled digits data (8x8 images, pixels 0..16:
no download). Quantization, per layer, symmetric: inputs ``x_q = round(x *
127 / 16)`` (scale 1/127 of a pixel at full 16), weights ``w_q = round(w /
s_w)`` with ``s_w = max|w| / 127``, biases ``b_q = round(b / (s_x * s_w))``
(int32, the accumulator's scale), and the hidden layer's ReLU output shifted
right by the smallest ``shift`` that brings the training set's largest
activation into int8; the next layer's input scale is ``s_x * s_w * 2**shift``.
The last layer's int32 output is the logits (argmax = the class).
"""

from __future__ import annotations

import math

import numpy as np

from .mlp import Layer, Net

__all__ = ["train_digits"]


def train_digits(seed: int = 0, hidden: int = 32):
    """``(net, X_test int8, y_test, float accuracy, X_train int8)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    d = load_digits()
    X = d.data / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=0.25, random_state=seed, stratify=d.target)
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", max_iter=600, random_state=seed)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(Xtr, ytr)
    float_acc = float(clf.score(Xte, yte))

    def q(x):
        return np.clip(np.round(x * 127), -128, 127).astype(np.int8)
    xtr_q, xte_q = q(Xtr), q(Xte)
    s_x = 1 / 127
    (W0, W1), (b0, b1) = clf.coefs_, clf.intercepts_
    s_w0 = np.abs(W0).max() / 127
    w0 = np.clip(np.round(W0 / s_w0), -127, 127).astype(np.int8)
    bq0 = np.round(b0 / (s_x * s_w0)).astype(np.int64)
    acc0 = xtr_q.astype(np.int64) @ w0.astype(np.int64) + bq0
    top = max(1, int(np.maximum(acc0, 0).max()))
    shift = max(0, math.ceil(math.log2(top / 127))) if top > 127 else 0
    s_h = s_x * s_w0 * 2 ** shift
    s_w1 = np.abs(W1).max() / 127
    w1 = np.clip(np.round(W1 / s_w1), -127, 127).astype(np.int8)
    bq1 = np.round(b1 / (s_h * s_w1)).astype(np.int64)
    net = Net([Layer(w0, bq0.astype(np.int32), shift, 1), Layer(w1, bq1.astype(np.int32), None, 0)])
    return net, xte_q, yte, float_acc, xtr_q
