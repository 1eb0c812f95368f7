"""PP-OCRv4's recogniser graph with its elementwise steps folded away, the same function.

The recogniser (PP-LCNetV3 and an SVTR neck, exported from Paddle) spends a third of its time
on a one-core CPU in elementwise passes over its activations: each convolution block is
``Conv -> Mul(s) -> Add(b)`` (a learnable affine), a hard-swish written out as
``x * Clip(x + 3, 0, 6) / 6``, and another affine. Three local rewrites, each exact in real
arithmetic (the outputs differ by float rounding, about 1e-6 in a probability):

- **hard-swish**: ``Add(x, 3) -> Clip(0, 6) -> Mul(x) -> Div(6)`` becomes
  ``HardSigmoid(x; 1/6, 1/2) -> Mul(x)`` (opset 6).
- **affine after a convolution**: ``Conv(W, B) -> Mul(s) -> Add(b)`` with scalar ``s`` and
  ``b`` becomes ``Conv(s W, s B + b)``.
- **affine before a pointwise convolution**: ``Mul(s) -> Add(b) -> Conv(W, B)`` where the
  convolution pads nothing and is not grouped becomes ``Conv(s W, B + b sum(W))`` (with
  padding the border would see ``b`` where the original sees 0: such an affine stays).

A pattern whose intermediate value has any other consumer, or whose constant is not a scalar,
is left as it is. :func:`simplify` returns how many of each it folded. The reader loads the model
through it (:class:`plate_reader.ocr.PpOcrRecognizer`): 28, 28 and 12 of PP-OCRv4's blocks,
its recogniser 23% faster on one core; ``tests/ocr/test_ppocr_graph.py`` compares the two
models' outputs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto


@dataclass(frozen=True)
class Folded:
    """How many of each pattern :func:`simplify` rewrote."""

    hard_swish: int
    affine_after_conv: int
    affine_before_conv: int


class _Graph:
    """The model's nodes with their producers, consumers and constants (rebuilt per pass)."""

    def __init__(self, model: ModelProto) -> None:
        from onnx import NodeProto, numpy_helper

        self.model = model
        self.nodes: list[NodeProto] = []
        for node in model.graph.node:
            own = NodeProto()
            own.CopyFrom(node)
            self.nodes.append(own)
        self.dead: set[int] = set()
        self.producer = {out: n for n in self.nodes for out in n.output}
        self.consumers: dict[str, list[NodeProto]] = defaultdict(list)
        for n in self.nodes:
            for name in n.input:
                self.consumers[name].append(n)
        self.outputs = {o.name for o in model.graph.output}
        self.initializers = {i.name: i for i in model.graph.initializer}
        self._to_array = numpy_helper.to_array

    def const(self, name: str) -> npt.NDArray[np.float32] | None:
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return np.asarray(self._to_array(attr.t))
            return None
        if name in self.initializers:
            return np.asarray(self._to_array(self.initializers[name]))
        return None

    def scalar(self, node: NodeProto, op: str) -> tuple[str, float] | None:
        """``node`` as ``op(x, c)`` with a scalar constant ``c`` (either side for Mul and
        Add): ``(x, c)``."""
        if node.op_type != op or len(node.input) != 2:
            return None
        a, b = node.input
        cb = self.const(b)
        if cb is not None and cb.size == 1 and self.const(a) is None:
            return a, float(cb.ravel()[0])
        ca = self.const(a)
        if op in ("Mul", "Add") and ca is not None and ca.size == 1 and cb is None:
            return b, float(ca.ravel()[0])
        return None

    def sole(self, name: str) -> NodeProto | None:
        """The one consumer of ``name`` (``None`` where it has several, or is an output)."""
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in self.outputs else None

    def live(self) -> Iterator[NodeProto]:
        """The nodes not removed yet, in order (a node removed during the walk is skipped)."""
        return (n for n in self.nodes if id(n) not in self.dead)

    def remove(self, *nodes: NodeProto) -> None:
        self.dead.update(id(n) for n in nodes)

    def commit(self) -> int:
        """Write the nodes back into the model, those removed left out; how many were."""
        kept = [n for n in self.nodes if id(n) not in self.dead]
        del self.model.graph.node[:]
        self.model.graph.node.extend(kept)
        return len(self.dead)

    def add_initializer(self, array: npt.NDArray[np.float32], name: str) -> str:
        from onnx import numpy_helper

        taken = {i.name for i in self.model.graph.initializer} | set(self.producer)
        unique, k = name, 0
        while unique in taken:
            k += 1
            unique = f"{name}_{k}"
        self.model.graph.initializer.append(
            numpy_helper.from_array(np.asarray(array, dtype=np.float32), unique)
        )
        return unique

    def conv_params(
        self, conv: NodeProto
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
        """A convolution's constant weights and bias (a zero bias where it has none)."""
        if conv.op_type != "Conv" or len(conv.input) < 2:
            return None
        w = self.const(conv.input[1])
        if w is None:
            return None
        b = self.const(conv.input[2]) if len(conv.input) > 2 else np.zeros(w.shape[0], np.float32)
        return (w, b) if b is not None else None


def _attr(node: NodeProto, name: str, default: object) -> object:
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _hard_swish(g: _Graph) -> int:
    from onnx import helper

    done = 0
    for add in g.live():
        matched = g.scalar(add, "Add")
        if matched is None or matched[1] != 3.0:
            continue
        x = matched[0]
        clip = g.sole(add.output[0])
        if clip is None or clip.op_type != "Clip" or len(clip.input) != 3:
            continue
        lo, hi = g.const(clip.input[1]), g.const(clip.input[2])
        if lo is None or hi is None or float(lo) != 0.0 or float(hi) != 6.0:
            continue
        mul = g.sole(clip.output[0])
        if mul is None or mul.op_type != "Mul" or sorted(mul.input) != sorted([x, clip.output[0]]):
            continue
        div = g.sole(mul.output[0])
        if div is None or g.scalar(div, "Div") != (mul.output[0], 6.0):
            continue
        gate = add.output[0]
        add.CopyFrom(helper.make_node("HardSigmoid", [x], [gate], alpha=1.0 / 6.0, beta=0.5))
        mul.input[:] = [x, gate]
        mul.output[0] = div.output[0]
        g.remove(clip, div)
        done += 1
    return done


@dataclass(frozen=True)
class _Affine:
    """``Mul(x, scale) -> Add(shift)``, the Add the Mul's one consumer."""

    mul: NodeProto
    add: NodeProto
    x: str
    scale: np.float32
    shift: np.float32


def _affine(g: _Graph, mul: NodeProto | None) -> _Affine | None:
    scaled = None if mul is None else g.scalar(mul, "Mul")
    if mul is None or scaled is None:
        return None
    add = g.sole(mul.output[0])
    shifted = None if add is None else g.scalar(add, "Add")
    if add is None or shifted is None:
        return None
    return _Affine(mul, add, scaled[0], np.float32(scaled[1]), np.float32(shifted[1]))


def _affine_after_conv(g: _Graph) -> int:
    done = 0
    for conv in g.live():
        params = g.conv_params(conv)
        affine = None if params is None else _affine(g, g.sole(conv.output[0]))
        if params is None or affine is None:
            continue
        w, b = params
        conv.input[:] = [
            conv.input[0],
            g.add_initializer(w * affine.scale, f"{conv.input[1]}.folded"),
            g.add_initializer(b * affine.scale + affine.shift, f"{conv.output[0]}.bias_folded"),
        ]
        conv.output[0] = affine.add.output[0]
        g.remove(affine.mul, affine.add)
        done += 1
    return done


def _affine_before_conv(g: _Graph) -> int:
    done = 0
    for mul in g.live():
        affine = _affine(g, mul)
        conv = None if affine is None else g.sole(affine.add.output[0])
        params = None if conv is None else g.conv_params(conv)
        if affine is None or conv is None or params is None:
            continue
        pads = _attr(conv, "pads", [])
        if _attr(conv, "group", 1) != 1 or any(int(p) for p in pads):  # type: ignore[attr-defined]
            continue
        if _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            continue
        if conv.input[0] != affine.add.output[0]:
            continue
        w, b = params
        spread = affine.shift * w.sum(axis=tuple(range(1, w.ndim)))
        conv.input[:] = [
            affine.x,
            g.add_initializer(w * affine.scale, f"{conv.input[1]}.folded"),
            g.add_initializer(b + spread, f"{conv.output[0]}.bias_folded"),
        ]
        g.remove(affine.mul, affine.add)
        done += 1
    return done


def simplify(model: ModelProto) -> Folded:
    """Fold the recogniser's elementwise steps (see the module's doc) in ``model``, in place."""
    counts = []
    for fold in (_hard_swish, _affine_after_conv, _affine_before_conv):
        g = _Graph(model)
        counts.append(fold(g))
        g.commit()
    return Folded(*counts)
