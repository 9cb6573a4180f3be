"""One body function per distinct kernel body in a module.

Why: a model repeats its blocks (resnet's stages, mobilenet's inverted residuals, shufflenet's
units), and two kernels of the same block at the same shapes differ only in which buffers they
touch. Each kernel is an entry `P_k<i>(frame, start, end)` that loads its buffer pointers from
the frame and calls `P_k<i>_body(pointers..., error, start, end)`; the bodies of such kernels are
identical instruction for instruction. LLVM's O3 pipeline and instruction selection cost tens of
milliseconds per body, so compiling each distinct body once (and letting the entries share it)
cut the first call of shufflenet_v2 from 186 bodies to 55, of resnet18 from 83 to 48.

Bodies are compared by their IR text with their own name left out, so sharing is exact: equal
text is equal code. The text is rendered only when a cheap shape key (signature, blocks,
instructions) matches an earlier body's. A shared body is marked noinline: inlined into each
entry, it would be optimized once per entry again.
"""
from __future__ import annotations

from llvmlite import ir


def _shape_key(fn: ir.Function) -> tuple:
    return (str(fn.function_type), len(fn.blocks), sum(len(block.instructions) for block in fn.blocks),
            tuple(sorted(fn.attributes)))


def _text(fn: ir.Function) -> str:
    return str(fn).replace(f'@"{fn.name}"', "@SELF").replace(f"@{fn.name}(", "@SELF(")


class SharedBodies:
    """Collects the kernels' body functions as a module is rendered, keeping one per distinct text."""

    def __init__(self, module: ir.Module) -> None:
        self.module = module
        self.by_shape: dict[tuple, list[list]] = {}   # shape key -> [[function, text or None], ...]

    def add(self, entry: ir.Function, body: ir.Function) -> None:
        """Register `body`, which `entry` calls; if an equal body exists, point the entry's call
        at it and drop `body` from the module."""
        same_shape = self.by_shape.setdefault(_shape_key(body), [])
        text = None
        for known in same_shape:
            if text is None:
                text = _text(body)
            if known[1] is None:
                known[1] = _text(known[0])
            if known[1] == text:
                self._redirect(entry, body, known[0])
                return
        same_shape.append([body, text])

    def _redirect(self, entry: ir.Function, body: ir.Function, keep: ir.Function) -> None:
        calls = [instr for block in entry.blocks for instr in block.instructions
                 if isinstance(instr, ir.CallInstr) and instr.callee is body]
        if not calls:   # an entry of another form: leave both (correct, just not shared)
            return
        for call in calls:
            call.replace_callee(keep)
            call.operands[0] = keep
        keep.attributes.add("noinline")
        del self.module.globals[body.name]
