"""What the symbolic dimension names of a graph mean, and which of them are really sizes of the model.

Exporters name dynamic axes freely. Three kinds of names need more than a lookup:

- *derived* names are arithmetic over other names (optimum's ``past_sequence_length + sequence_length``,
  ``past_decoder_sequence_length + 1``): they are never bound themselves, :func:`mapping.shape_binding.resolve_dim`
  evaluates them from their parts;
- *aliases* of such sums (``total_sequence_length`` = past + new tokens; ``encoder_sequence_length_out`` = the
  encoder's length);
- *model sizes* exported as dynamic (``num_channels``, ``height``/``width`` of an image, ``kv_cache_dim`` = head
  size): they are bound from the graph's own evidence (:func:`evidence_dims`): the weight of the Conv reading the
  input, the position-embedding table the patches are added to, the tensor a cache input is concatenated with.
"""

from __future__ import annotations

import ast
import math

from mapping import op_table
from mapping.onnx_graph import Node, OpGraph
from mapping.op_table import OP

#: Words of names that are sizes of the model, not lengths (``kv_cache_dim``, ``num_channels``, ``height``).
_SIZE_WORDS = ("dim", "channel", "height", "width", "hidden", "head", "feature")


def parts(name: str) -> list[str] | None:
    """The names an arithmetic dim is computed from (``a + b`` -> ``[a, b]``), None for a plain name."""
    try:
        tree = ast.parse(name, mode="eval")
    except SyntaxError:
        return None
    if not isinstance(tree.body, ast.BinOp):
        return None
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})


def free_dims(graph: OpGraph) -> dict[str, list[tuple[str, int]]]:
    """The dims a binding must give values to: plain names, and the parts of derived names.

    Each maps to the (input, axis) places it appears at (a part inherits the places of its expressions).
    """
    out: dict[str, list[tuple[str, int]]] = {}
    for name, places in graph.symbolic_dims().items():
        names = parts(name)
        if names is None:
            out.setdefault(name, []).extend(places)
        else:
            for p in names:
                out.setdefault(p, []).extend(places)
    return out


def classify(name: str, kv_dims: set[str]) -> str:
    """Meaning of a symbolic dim name: ``batch``, ``encoder``, ``total``, ``past``, ``seq`` or ``other``.

    ``encoder`` is an encoder's sequence length (also the length of cached cross-attention K/V, which optimum
    calls ``encoder_sequence_length_out``); ``total`` is past + new tokens under one name
    (``total_sequence_length``); ``past`` the cached tokens; ``seq`` new tokens.
    """
    low = name.lower()
    if "batch" in low or low in ("b", "n", "bs"):
        return "batch"
    lengthy = "seq" in low or "len" in low or "token" in low
    if not lengthy and any(w in low for w in _SIZE_WORDS):
        return "other"
    if "encoder" in low and lengthy:
        return "encoder"
    if "total" in low and lengthy:
        return "total"
    if name in kv_dims or "past" in low or "cache" in low:
        return "past"
    if lengthy or low in ("s", "t", "l"):
        return "seq"
    return "other"


#: Ops a size passes through on its way from a Shape to the Range that counts positions (``arange(start + t)``)
#: or to the Trilu of a causal mask built at [t, t] (Expand / ConstantOfShape of the size).
_SIZE_THROUGH = frozenset({OP.Squeeze, OP.Unsqueeze, OP.Reshape, OP.Cast, OP.Identity, OP.Add, OP.Concat, OP.Expand,
                           OP.ConstantOfShape})
_COUNTS_POSITIONS = frozenset({OP.Range, OP.Trilu})


def _shape_axis(graph: OpGraph, node: Node) -> int | None:
    """The one axis whose size a Shape node (or the Gather / Slice of one element that reads it) gives."""
    if node.op_type == OP.Shape:
        start, end = node.attr("start", 0), node.attr("end")
        return start if end is not None and end - start == 1 and start >= 0 else None
    src = graph.producer.get(node.inputs[0]) if node.inputs else None
    if src is None or src.op_type != OP.Shape or src.attr("start", 0) or src.attr("end") is not None:
        return None
    index = graph.tensors.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if index is None or index.value is None or index.value.size != 1:
        return None
    axis = int(index.value.reshape(-1)[0])
    if node.op_type == OP.Slice:  # a slice of one element: [start, start + 1)
        stop = graph.tensors.get(node.inputs[2]) if len(node.inputs) > 2 else None
        if stop is None or stop.value is None or int(stop.value.reshape(-1)[0]) != axis + 1:
            return None
    return axis if node.op_type in (OP.Gather, OP.Slice) else None


#: ops an index tensor passes through on its way to a gather (``torch.arange(b)`` unsqueezed and paired with indices)
_INDEX_THROUGH = frozenset({OP.Squeeze, OP.Unsqueeze, OP.Reshape, OP.Cast, OP.Identity, OP.Concat, OP.Expand})


def _selects_rows(graph: OpGraph, node: Node) -> bool:
    """Whether a Range's values index an activation (``h[torch.arange(b), last]``: a per-row pick of a
    classifier's pooled token, a Gather/GatherND whose data is computed) rather than count positions: a Range over
    the batch does that, so its axis says nothing about where the sequence is."""
    for c, t in reached(graph, [o for o in node.outputs if o], _INDEX_THROUGH):
        if c.op_type in (OP.Gather, OP.GatherND) and t in c.inputs[1:]:
            data = graph.tensors.get(c.inputs[0])
            if data is not None and data.value is None and c.inputs[0] not in graph.initializers:
                return True
    return False


def ranged_axes(graph: OpGraph) -> set[tuple[str, int]]:
    """(input, axis) places of integer inputs (token ids) whose size reaches a Range or a Trilu: positions are
    counted along the sequence axis (``torch.arange(t)`` for a position table, the ``triu`` of a causal mask); an
    input with more than one such axis (a batch ``arange`` for a mask too) gives none."""
    found: dict[str, set[int]] = {}
    for name in graph.inputs:
        if not graph.tensors[name].dtype.startswith("int"):
            continue  # token ids only: an image's batch may feed a Range too (Swin's window partition)
        for shape in graph.consumers.get(name, []):
            if shape.op_type != OP.Shape:
                continue
            readers = [shape] + [c for o in shape.outputs for c in graph.consumers.get(o, [])
                                 if c.op_type in (OP.Gather, OP.Slice)]
            for reader in readers:
                axis = _shape_axis(graph, reader)
                if axis is None:
                    continue
                for c, _ in reached(graph, [o for o in reader.outputs if o], _SIZE_THROUGH):
                    if c.op_type in _COUNTS_POSITIONS and not _selects_rows(graph, c):
                        found.setdefault(name, set()).add(axis)
    out: set[tuple[str, int]] = set()
    for name, axes in found.items():
        rank = len(graph.tensors[name].dims or ())
        if len(axes) == 1 and rank > 1:
            out.add((name, next(iter(axes))))
    return out


def positional_kind(graph: OpGraph, places: list[tuple[str, int]],
                    ranged: set[tuple[str, int]] | None = None) -> str:
    """Kind of an opaque name (torch.export's ``s31``, ``s53``) from where it sits.

    An axis whose size counts positions (``ranged``: :func:`ranged_axes`) is the sequence; a graph whose token
    input is sequence-first (``nn.Transformer`` with ``batch_first=False``: its axis 0 counted, or
    ``graph.seq_first``, set by recognition when only that layout binds) has the batch on axis 1 and the lengths
    on axis 0 of every input. Otherwise axis 0 of a graph input is the batch; axis 1 of a
    rank-2 integer input (token ids, masks, positions) is the sequence; anything else stays ``other`` (a size of
    the model, bound from evidence or ``--dim``).
    """
    ranged = ranged or set()
    if any(p in ranged for p in places):
        return "seq"
    if graph.seq_first or any(axis == 0 and graph.tensors[n].dtype.startswith("int") for n, axis in ranged):
        for name, axis in places:
            t = graph.tensors[name]
            if t.dims is not None and len(t.dims) in (2, 3) and axis in (0, 1):  # ids [T, B], features [T, B, D];
                return "batch" if axis == 1 else "seq"  # a KV cache keeps its [B, heads, T, head_dim] below
    for name, axis in places:
        t = graph.tensors[name]
        if axis == 0 and t.dims is not None and len(t.dims) >= 2:
            return "batch"
    for name, axis in places:
        t = graph.tensors[name]
        if axis == 1 and t.dims is not None and len(t.dims) == 2 and t.dtype.startswith(("int", "bool")):
            return "seq"
    return "other"


#: Ops a value passes through unchanged in meaning (casts, identities, quantize/dequantize).
_CAST_THROUGH = op_table.names(trait="cast_through")


def reached(graph: OpGraph, tensors: str | list[str], through: frozenset[str] | None = None) -> list[tuple[Node, str]]:
    """(consumer node, the tensor it reads) pairs reached forwards from ``tensors``, in visiting order, continuing
    only through ``through`` ops (default: pass-through ops, casts and identities); each node is met once."""
    through = _CAST_THROUGH if through is None else through
    found = []
    frontier = [tensors] if isinstance(tensors, str) else list(tensors)
    seen: set[str] = set()
    while frontier:
        t = frontier.pop()
        for c in graph.consumers.get(t, []):
            if c.name in seen:
                continue
            seen.add(c.name)
            found.append((c, t))
            if c.op_type in through:
                frontier.extend(o for o in c.outputs if o)
    return found


def _image_dims(graph: OpGraph, name: str, dims: tuple) -> dict[str, int]:
    """Channels, height and width of an image input read by a Conv, from the Conv weight and the position table.

    The patch grid is (H - k) / s + 1 per side; a learned position table of P rows added to the flattened
    patches and the learned tokens concatenated in front of them (ViT's [CLS], DeiT's [CLS] and distillation
    token) fixes the grid to sqrt(P - tokens).
    """
    out: dict[str, int] = {}
    for node, _ in reached(graph, name):
        if node.op_type not in (OP.Conv, OP.ConvInteger, OP.QLinearConv):
            continue
        weight = node.inputs[3] if node.op_type == OP.QLinearConv else node.inputs[1]
        p = graph.producer.get(weight)
        if p is not None and p.op_type == OP.DequantizeLinear:  # a QDQ export: the quantized initializer
            weight = p.inputs[0]
        w = graph.tensors.get(weight)
        if w is None or w.dims is None or len(w.dims) != len(dims) or len(w.dims) < 3:
            continue
        if isinstance(dims[1], str):
            out[dims[1]] = int(w.dims[1]) * int(node.attr("group", 1))
        spatial = [d for d in dims[2:] if isinstance(d, str)]
        if not spatial:
            continue
        kernel = [int(k) for k in w.dims[2:]]
        strides = list(node.attr("strides", [1] * len(kernel)))
        grid = _position_grid(graph, int(w.dims[0]))
        if grid is None:
            grid = _interpolated_grid(graph, int(w.dims[0]))
        if grid is None:
            continue
        for axis, d in enumerate(dims[2:]):
            if isinstance(d, str):
                out[d] = (grid - 1) * int(strides[axis]) + kernel[axis]
        break
    return out


def _position_grid(graph: OpGraph, width: int) -> int | None:
    """Patches per side implied by a learned position table [1, P, width] or [P, width] (None if there is none)."""
    for t in graph.tensors.values():
        if t.role not in ("weight", "constant") or t.dims is None or len(t.dims) not in (2, 3) or int(t.dims[-1]) != width:
            continue
        if len(t.dims) == 3 and t.dims[0] != 1:
            continue
        rows = int(t.dims[-2])
        readers = graph.consumers.get(t.name, [])
        readers = readers + [c for r in readers if r.op_type == OP.DequantizeLinear for c in graph.consumers.get(
            r.outputs[0], [])]
        adds = [c for c in readers if c.op_type == OP.Add]
        if rows < 4 or not adds:
            continue
        prefix = next((k for k in (_prefix_tokens(graph, a, width) for a in adds) if k is not None), None)
        for n in ((rows - prefix,) if prefix is not None else (rows - 1, rows)):
            side = math.isqrt(n)
            if side > 1 and side * side == n:
                return side
    return None


_PASS = (OP.Identity, OP.Cast, OP.Dropout, OP.DequantizeLinear)
#: Layout ops between a stored position table and the Resize that interpolates it to the input's patch grid.
_TABLE_LAYOUT = (OP.Identity, OP.Cast, OP.Reshape, OP.Transpose, OP.Unsqueeze, OP.Squeeze)


def _interpolated_grid(graph: OpGraph, width: int) -> int | None:
    """Patches per side of a learned position table that a Resize interpolates to the input's grid (DINOv2,
    YOLOS: any image size runs; the table's own grid is the resolution the model was made for, the default).
    The table is stored [1, width, g, g] (folded by the exporter) or [1, g*g (+1), width] (reshaped first)."""
    for node in graph.nodes:
        if node.op_type != OP.Resize:
            continue
        t = node.inputs[0]
        p = graph.producer.get(t)
        while p is not None and p.op_type in _TABLE_LAYOUT:
            t = p.inputs[0]
            p = graph.producer.get(t)
        table = graph.tensors.get(t)
        if p is not None or table is None or table.role not in ("weight", "constant") or table.dims is None:
            continue
        dims = [int(d) for d in table.dims]
        if len(dims) == 4 and dims[:2] == [1, width] and dims[2] == dims[3] > 1:
            return dims[2]
        if len(dims) in (2, 3) and dims[-1] == width and (len(dims) == 2 or dims[0] == 1):
            for n in (dims[-2], dims[-2] - 1):
                side = math.isqrt(n)
                if side > 1 and side * side == n:
                    return side
    return None


def _prefix_tokens(graph: OpGraph, add: object, width: int) -> int | None:
    """Rows of learned tokens ([1, n, width] parameters, expanded to the batch) concatenated with the patches
    that ``add`` adds the position table to; None when the other operand is no such Concat."""
    concat = None
    for i in add.inputs:  # type: ignore[attr-defined]
        p = graph.producer.get(i)
        while p is not None and p.op_type in _PASS:
            p = graph.producer.get(p.inputs[0])
        if p is not None and p.op_type == OP.Concat:
            concat = p
    if concat is None:
        return None
    total = 0
    for i in concat.inputs:
        t, p = i, graph.producer.get(i)
        while p is not None and p.op_type in _PASS + (OP.Expand, OP.Tile):
            t, p = p.inputs[0], graph.producer.get(p.inputs[0])
        w = graph.tensors.get(t)
        if p is None and w is not None and w.role in ("weight", "constant") and w.dims is not None and \
                len(w.dims) == 3 and int(w.dims[0]) == 1 and int(w.dims[-1]) == width:
            total += int(w.dims[1])
    return total


def _concat_dims(graph: OpGraph, names: set[str]) -> dict[str, int]:
    """Dims of graph inputs fixed by what they are concatenated with (a cache's head size, ``kv_cache_dim``).

    ONNX's own symbolic shape inference gives the other operand of each Concat a size on every axis it knows;
    an input's named axis off the concatenation axis must equal it.
    """
    known = graph.inferred_dims()
    out: dict[str, int] = {}
    for node in graph.nodes:
        if node.op_type != OP.Concat:
            continue
        for i in node.inputs:
            if i not in graph.inputs:
                continue
            dims = graph.tensors[i].dims or ()
            rank = len(dims)
            axis = int(node.attr("axis", 0))
            axis = axis + rank if axis < 0 else axis
            for a, d in enumerate(dims):
                if not isinstance(d, str) or d not in names or a == axis:
                    continue
                for other in node.inputs:
                    s = known.get(other)
                    if other != i and s is not None and len(s) == rank and s[a]:
                        out[d] = int(s[a])
                        break
    return out


def evidence_dims(graph: OpGraph, kinds: dict[str, str]) -> dict[str, int]:
    """Values of the ``other`` dims that are sizes of the model, from the graph's evidence (see module doc)."""
    wanted = {d for d, k in kinds.items() if k == "other"}
    if not wanted:
        return {}
    out: dict[str, int] = {}
    for name in graph.inputs:
        dims = graph.tensors[name].dims or ()
        if len(dims) >= 3 and any(isinstance(d, str) and d in wanted for d in dims[1:]):
            out.update({k: v for k, v in _image_dims(graph, name, dims).items() if k in wanted})
    rest = wanted - set(out)
    if rest:
        out.update(_concat_dims(graph, rest))
    return out
