"""The kernel program as text, like a jaxpr: what the code generators are asked to render.

    kernel program: 2 kernels, workspace 128 bytes
    buffers:
      %0 x         input   float32[8, 4]
      %2 Max       temp    float32[8]        workspace+0
    k0 loop i0<8, i1<4, reduce i1                         # Max 'Max'
        s0 = %0[i0, i1]
        acc0 = max(s0)
        %2[i0] = acc0

Each loop kernel shows its iteration space (loop variables in nesting order, the reduced ones
marked), its reads (a buffer through an index map, masked where a mask applies), its
accumulators, its stores and checks; scalar expressions used twice get a name of their own.
The buffer table is the memory plan: where each temporary lives in the workspace, and which
buffers share storage.
"""
from __future__ import annotations

from collections import Counter

from ..ops.scalar import SExpr
from .index import IExpr
from .kernel import Buffer, BranchStep, GemmCall, HostCall, KernelProgram, LoopKernel, LoopStep, SubProgram


def kernel_listing(kp: KernelProgram) -> str:
    lines = [f"kernel program: {len(kp.kernels)} kernel(s), workspace {kp.workspace_bytes} bytes", "buffers:"]
    lines += ["  " + _buffer_line(b) for b in kp.buffers]
    lines += _kernels_lines(kp.kernels)
    return "\n".join(lines)


def _kernels_lines(kernels: list) -> list[str]:
    lines: list[str] = []
    for k in kernels:
        if isinstance(k, GemmCall):
            lines += _gemm_lines(k)
        elif isinstance(k, HostCall):
            dst, src = (f"%{b.id}" if b is not None else "-" for b in (k.dst, k.src))
            lines += [f"{k.name} host {k.kind} {dst} <- {src} ({k.key}){_origin(k.node)}"]
        elif isinstance(k, LoopStep):
            lines += _step_lines(k)
        elif isinstance(k, BranchStep):
            lines += _branch_lines(k)
        else:
            lines += _loop_lines(k)
    return lines


def _ids(buffers: list[Buffer]) -> str:
    return ", ".join(f"%{b.id}" for b in buffers) or "-"


def _sub_lines(title: str, sub: SubProgram) -> list[str]:
    head = [f"  {title}({_ids(sub.args)}) -> {_ids(sub.results)}:"]
    return head + ["    " + line for line in _kernels_lines(sub.kernels)]


def _step_lines(k: LoopStep) -> list[str]:
    order = " in reverse" if k.reverse else ""
    lines = [f"{k.name} while i < min(%{k.trip.id}{''.join(f', len %{q.id}' for q in k.sequences)}){order}"
             f"{_origin(k.node)}",
             f"  loop values {_ids(k.carries)} -> {_ids(k.finals)}; rows of {_ids(k.sequences)}; "
             f"captured {_ids(k.captures)}; stacked -> {_ids(k.stacked)}; count -> %{k.count.id}"
             + (f"; history -> {_ids(k.history)}" if k.history else "")]
    if k.cond is not None:
        lines += _sub_lines("cond", k.cond)
    return lines + _sub_lines("body", k.body)


def _branch_lines(k: BranchStep) -> list[str]:
    lines = [f"{k.name} if %{k.pred.id} (captured {_ids(k.captures)}) -> {_ids(k.outputs)}{_origin(k.node)}"]
    return lines + _sub_lines("then", k.then_branch) + _sub_lines("else", k.else_branch)


def _buffer_line(b: Buffer) -> str:
    shape = f"{b.dtype.name}[{', '.join(map(str, b.shape))}]"
    where = ""
    if b.alias_of is not None:
        where = f"shares %{b.alias_of.id}"
    elif b.kind == "temp" and b.offset is not None:
        where = f"workspace+{b.offset}"
    return f"%{b.id:<3} {b.name[:28]:<28} {b.kind:<6} {shape:<22} {where}".rstrip()


def _origin(node: object) -> str:
    if node is None:
        return ""
    return f"   # {getattr(node, 'type', '?')} '{getattr(node, 'name', '?')}'"


def _gemm_lines(k: GemmCall) -> list[str]:
    a = f"%{k.a.id}" + ("ᵀ" if k.transpose_a else "")
    b = f"%{k.b.id}" + ("ᵀ" if k.transpose_b else "")
    batch = f" for each of {list(k.batch)}" if k.batch else ""
    if k.window is not None:   # a direct convolution: B is the padded image read through its windows
        w = k.window
        b = f"windows(%{k.b.id}, steps %{w.koff.id}, ow={w.ow}, row_step={w.row_step}, col_step={w.col_step})"
        return [f"{k.name} direct-conv %{k.c.id}[{k.m}x{k.n}] = {a}[{k.m}x{k.k}] @ {b}{batch}{_origin(k.node)}"] + \
            _epilogue_lines(k)
    if k.depthwise is not None:   # each plane of B with its channel's taps, or a max pool over it
        d = k.depthwise
        what = (f"max-pool %{k.c.id}[{k.m}x{d.oh}x{d.ow}] = windows {d.taps[0]}x{d.taps[1]} of"
                if d.combiner == "max" else
                f"depthwise-conv %{k.c.id}[{k.m}x{d.oh}x{d.ow}] = taps {a}[{d.taps[0]}x{d.taps[1]}x{k.m}] *")
        return [f"{k.name} {what} %{k.b.id}[{k.m}x{d.h}x{d.w}] strides {d.strides} dilations {d.dilations} "
                f"pads {d.pads}{' flat' if d.flat_masks is not None else ''}{batch}{_origin(k.node)}"] + \
            _epilogue_lines(k)
    if k.pointwise:   # a 1x1 convolution: A packed in panels of rows, B the image as it lies
        return [f"{k.name} pointwise-conv %{k.c.id}[{k.m}x{k.n}] = {a}[{k.m}x{k.k}] @ %{k.b.id}[{k.k}x{k.n}]{batch}"
                f"{_origin(k.node)}"] + _epilogue_lines(k)
    a += f"(ld {k.lda}, at {k.offsets[0]})" if k.lda else ""
    b += f"(ld {k.ldb}, at {k.offsets[1]})" if k.ldb else ""
    lines = [f"{k.name} gemm %{k.c.id}[{k.m}x{k.n}] = {a}[{k.m}x{k.k}] @ {b}[{k.k}x{k.n}]{batch}{_origin(k.node)}"]
    return lines + _epilogue_lines(k)


def _epilogue_lines(k: GemmCall) -> list[str]:
    """The kernel run on each block of C as it is computed, if any."""
    if k.epilogue is None:
        return []
    return ["  then on each block:"] + ["  " + line for line in _loop_lines(k.epilogue)]


def _index(index: tuple[IExpr, ...] | IExpr) -> str:
    if isinstance(index, IExpr):
        return f"flat {index!r}"
    return ", ".join(repr(i) for i in index)


def _loop_lines(k: LoopKernel) -> list[str]:
    loops = ", ".join(f"i{axis}<{k.space[axis]}" for axis in k.order)
    reduced = f", reduce {', '.join(f'i{a}' for a in k.reduced)}" if k.reduced else ""
    flags = " serial" if k.serial else ""
    lines = [f"{k.name} loop {loops or '(one iteration)'}{reduced}{flags}{_origin(k.node)}"]
    for i, s in enumerate(k.slots):
        read = f"%{s.buffer.id}[{_index(s.index)}]"
        if s.valid is not None:
            read += f" if {s.valid!r} else {s.fill!r}"
        lines.append(f"    s{i} = {read}")
    body = _Body(lines, [a.operand for a in k.accumulators] + [c.condition for c in k.checks]
                 + [s.value for s in k.stores])
    for i, acc in enumerate(k.accumulators):
        body.line(f"acc{i} = {acc.combiner}({body.expr(acc.operand)}) : {acc.dtype.name}")
    for check in k.checks:
        message = check.message if isinstance(check.message, str) else "(computed message)"
        body.line(f"check {body.expr(check.condition)}: {message[:60]}")
    for store in k.stores:
        op = "+=" if store.mode == "add" else "="
        where = " (inside the reduction)" if store.inner else ""
        body.line(f"%{store.buffer.id}[{_index(store.index)}] {op} {body.expr(store.value)}{where}")
    return lines


class _Body:
    """Prints scalar expressions, naming each non-leaf subexpression that is used twice (equal
    subexpressions are one: the code generators merge them by SExpr.key too)."""

    def __init__(self, lines: list[str], roots: list[SExpr]) -> None:
        self.lines = lines
        self.names: dict[object, str] = {}
        self.uses: Counter[object] = Counter()
        self.counted: set[object] = set()
        for root in roots:   # uses across all of the kernel's expressions (a root's own counts)
            self._count(root)

    def line(self, text: str) -> None:
        self.lines.append("    " + text)

    def _count(self, e: SExpr) -> None:
        self.uses[e.key] += 1
        if e.key in self.counted:
            return
        self.counted.add(e.key)
        for a in e.args:
            if isinstance(a, SExpr):
                self._count(a)

    def expr(self, e: SExpr) -> str:
        return self._text(e)

    def _text(self, e: SExpr) -> str:
        if e.key in self.names:
            return self.names[e.key]
        if e.prim == "arg":
            return f"s{e.value}"
        if e.prim == "acc":
            return f"acc{e.value}"
        if e.prim == "index":
            return f"i{e.value}"
        if e.prim == "const":
            return f"{e.value!r}"
        text = f"{e.prim}({', '.join(self._text(a) if isinstance(a, SExpr) else repr(a) for a in e.args)})"
        if self.uses[e.key] > 1:
            name = f"v{len(self.names)}"
            self.names[e.key] = name
            self.line(f"{name} = {text} : {e.dtype.name}")
            return name
        return text
