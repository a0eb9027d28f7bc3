"""Shared state of the recognition passes: the bound graph, tensor classes, and node ownership."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from mapping import op_table
from mapping.ir import Block
from mapping.onnx_graph import Node
from mapping.op_costs import einsum_gemm, expand_ellipsis, tensor_classes
from mapping.op_table import OP
from mapping.shape_binding import BoundGraph

#: Ops that may sit between a projection and the attention matmuls (reshapes, rotary embedding, GQA repeat).
PATH_OPS = op_table.names(joins="qkv_path")

#: Matrix products that can be a linear layer (weight operand at input 1).
LINEAR_OPS = op_table.names(trait="linear")

#: Matrix products whose B operand is not input 1 (QLinearMatMul: a, a_scale, a_zero_point, b, ...; QGemm alike):
#: their linears are registered from that slot (passes/contrib_attention.register_linears).
B_SLOT = {OP.QLinearMatMul: 3, OP.QGemm: 3}


class Context:
    """The graph being recognised, with helpers to walk it and to claim nodes for blocks."""

    def __init__(self, bound: BoundGraph, kv_inputs: set[str]) -> None:
        self.bound = bound
        self.graph = bound.graph
        self.kv_inputs = kv_inputs
        self.klass = tensor_classes(bound, kv_inputs)
        self.nodes = {n.name: n for n in self.graph.nodes}
        self.owner: dict[str, Block] = {}
        self.blocks: list[Block] = []
        self.linear: dict[str, tuple[int, int]] = {}
        for n in self.graph.nodes:
            if n.op_type in LINEAR_OPS and n.op_type not in B_SLOT and len(n.inputs) >= 2:
                if self.klass.get(n.inputs[1]) == "weight" and self.klass.get(n.inputs[0]) in ("act", "kv"):
                    self.linear[n.name] = self._linear_dims(n)
            elif n.op_type == OP.Einsum and len(n.inputs) == 2:
                # a projection written as an Einsum (XLNet's ibh,hnd->ibnd; the weight first as well, oi,bsi->bso):
                # a linear of k inputs and n outputs
                classes = [self.klass.get(i) for i in n.inputs]
                if classes.count("weight") != 1 or not {"act", "kv"} & set(classes):
                    continue
                shapes = [bound.shapes[i] for i in n.inputs]
                dims = einsum_gemm(expand_ellipsis(str(n.attr("equation", "")), shapes), shapes,
                                   b_first=classes[0] == "weight")
                if dims is not None and dims[0] == 1:
                    self.linear[n.name] = (dims[2], dims[3])

    def _linear_dims(self, n: Node) -> tuple[int, int]:
        w = self.bound.shapes[n.inputs[1]]
        if n.op_type in (OP.Gemm, OP.FusedGemm) and n.attr("transB", 0):
            return int(w[1]), int(w[0])
        if n.op_type == OP.MatMulNBits:
            return int(n.attr("K")), int(n.attr("N"))
        return int(w[-2]), int(w[-1])

    # -- graph walking ---------------------------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        """The node writing ``tensor`` (None for inputs and initializers)."""
        return self.graph.producer.get(tensor)

    def consumers(self, tensor: str) -> list[Node]:
        """Nodes reading ``tensor``."""
        return self.graph.consumers.get(tensor, [])

    def is_act(self, tensor: str) -> bool:
        """True for run-time values (activations and KV cache), false for weights and constants."""
        return self.klass.get(tensor) in ("act", "kv")

    def act_inputs(self, node: Node) -> list[str]:
        """The run-time inputs of ``node``."""
        return [i for i in node.inputs if i and self.is_act(i)]

    def walk_back(self, tensor: str, through: set[str], stop: set[str], limit: int = 40) -> list[Node]:
        """Nodes in ``stop`` reachable backwards from ``tensor`` through nodes whose op is in ``through``."""
        found: list[Node] = []
        seen: set[str] = set()
        queue = deque([tensor])
        while queue and len(seen) < limit:
            t = queue.popleft()
            node = self.producer(t)
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            if node.name in stop:
                found.append(node)
                continue
            if node.op_type not in through:
                continue
            queue.extend(self.act_inputs(node))
        return found

    def first_linear_after(self, tensors: Iterable[str], through: set[str], limit: int = 20) -> Node | None:
        """The first linear reached forwards from ``tensors`` through nodes whose op is in ``through`` (the forward
        twin of :meth:`walk_back`), visiting at most ``limit`` consumers; None when there is none."""
        queue = deque(t for t in tensors if t)
        seen: set[str] = set()
        while queue and len(seen) < limit:
            for c in self.consumers(queue.popleft()):
                if c.name in seen:
                    continue
                seen.add(c.name)
                if c.name in self.linear:
                    return c
                if c.op_type in through:
                    queue.extend(o for o in c.outputs if o)
        return None

    def descendants(self, node: Node, limit: int = 200) -> set[str]:
        """Names of nodes reachable forwards from ``node`` (excluding it), at most ``limit``."""
        seen: set[str] = set()
        queue = deque(o for o in node.outputs if o)
        while queue and len(seen) < limit:
            for c in self.consumers(queue.popleft()):
                if c.name not in seen:
                    seen.add(c.name)
                    queue.extend(o for o in c.outputs if o)
        return seen

    def ancestors(self, tensors: Iterable[str], limit: int = 400, stop: set[str] | None = None,
                  data_only: bool = True) -> set[str]:
        """Names of nodes that (transitively) produce ``tensors``, not going past nodes in ``stop``.

        With ``data_only`` the walk follows run-time tensors only, not the shape arithmetic hanging off them.
        """
        seen: set[str] = set()
        queue = deque(t for t in tensors if not data_only or self.is_act(t))
        while queue and len(seen) < limit:
            node = self.producer(queue.popleft())
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            if stop and node.name in stop:
                continue
            queue.extend(i for i in node.inputs if i and (not data_only or self.is_act(i)))
        return seen

    def input_sources(self, tensor: str) -> frozenset[str]:
        """The graph inputs whose run-time values ``tensor`` depends on (computed once for every tensor, in
        topological order; weights and constants are not sources)."""
        if not hasattr(self, "_sources"):
            sources: dict[str, frozenset[str]] = {i: frozenset([i]) for i in self.graph.inputs}
            empty: frozenset[str] = frozenset()
            for node in self.graph.nodes:
                got = empty.union(*(sources.get(i, empty) for i in node.inputs if i))
                for o in node.outputs:
                    if o:
                        sources[o] = got
            self._sources = sources
        return self._sources.get(tensor, frozenset())

    def data_sources(self, tensor: str) -> frozenset[str]:
        """The graph inputs whose values flow into ``tensor`` through run-time data (not through shapes: a learned
        query Tile'd to the batch reads the input's shape only, so it has no data source)."""
        if not hasattr(self, "_data_sources"):
            sources: dict[str, frozenset[str]] = {i: frozenset([i]) for i in self.graph.inputs}
            empty: frozenset[str] = frozenset()
            for node in self.graph.nodes:
                got = empty.union(*(sources.get(i, empty) for i in node.inputs if i and self.is_act(i)))
                for o in node.outputs:
                    if o:
                        sources[o] = got
            self._data_sources = sources
        return self._data_sources.get(tensor, frozenset())

    # -- ownership --------------------------------------------------------------------------------------------
    def claim(self, block: Block, names: Iterable[str]) -> None:
        """Give unowned nodes ``names`` to ``block`` (already owned nodes keep their owner)."""
        for name in names:
            if name not in self.owner:
                self.owner[name] = block
                block.nodes.append(name)

    def add(self, block: Block, names: Iterable[str]) -> Block:
        """Register ``block`` and claim ``names`` for it."""
        self.blocks.append(block)
        self.claim(block, names)
        return block

    def index(self, name: str) -> int:
        """Topological index of node ``name``."""
        return self.nodes[name].index
