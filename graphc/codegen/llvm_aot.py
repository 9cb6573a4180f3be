"""The C entry points of an ahead-of-time compiled program, added to the very module the JIT
runs (graphc.codegen.llvm.render_module): one lowering, two outputs.

  int NAME_run(const void *const *inputs, void *const *outputs)
      allocates the workspace with malloc (freed before returning), so concurrent calls share
      nothing; returns 0, or the code of the failed check, or AOT_NO_MEMORY.
  int NAME_run_with_workspace(const void *const *inputs, void *const *outputs, void *workspace)
      the same with a caller-provided workspace of NAME_WORKSPACE_BYTES (64-byte aligned not
      required).

The frame the kernels read is built on the stack: the workspace, the error record, then one
pointer per buffer (inputs and outputs from the arguments, constants and frozen variables from
read-only globals in the object, temporaries inside the workspace). Results that are not an
output buffer of their own (a fetched input or constant, the same tensor fetched twice) are
copied into their output after the run. Everything but the two entries is internal.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from llvmlite import ir

from ..errors import CompileError
from ..lower.kernel import LOOP_POOL_SYMBOL, HostCall, KernelProgram, walk_kernels
from . import llvm_types
from .llvm import ModuleInfo
from .llvm_loops import FRAME_BUFFERS, FRAME_ERROR

AOT_NO_MEMORY = -1   # NAME_run could not allocate its workspace


def add_aot_entries(module: ir.Module, info: ModuleInfo, kp: KernelProgram, name: str,
                    input_sources: Sequence[int | np.ndarray]) -> None:
    """input_sources: per kp.inputs entry, the index of the C `inputs` argument it comes from,
    or the array to embed (a frozen variable, a random op's run counter)."""
    hosts = [k for k in walk_kernels(kp.kernels) if isinstance(k, HostCall)]
    if hosts:
        node = hosts[0].node
        raise CompileError(f"{node.type} exchanges data with other processes through graphc's runtime, which a C "
                           "library does not have", op_type=node.type, node_name=node.name, source=node.source,
                           hint="compile the graph without the collectives (the model's forward pass)")
    for fn in module.functions:
        if not fn.is_declaration:
            fn.linkage = "internal"
    pool_words = module.globals.get(LOOP_POOL_SYMBOL)
    if pool_words is not None:   # a library runs its loops' products on the calling thread: zeros
        pool_words.initializer = ir.Constant(pool_words.value_type, None)
        pool_words.linkage = "internal"
    run_all = module.globals[f"{info.name}_run"]
    with_ws = ir.Function(
        module,
        ir.FunctionType(llvm_types.I32, [llvm_types.I8PP, llvm_types.I8PP, llvm_types.I8P]),
        name=f"{name}_run_with_workspace",
    )
    inputs, outputs, workspace = with_ws.args
    b = ir.IRBuilder(with_ws.append_basic_block("entry"))
    frame = b.alloca(llvm_types.I8P, size=ir.Constant(llvm_types.I64, info.frame_size))
    record = b.alloca(llvm_types.I64, size=ir.Constant(llvm_types.I64, 4))
    for i in range(4):
        b.store(ir.Constant(llvm_types.I64, 0), b.gep(record, [ir.Constant(llvm_types.I64, i)]))
    base = b.ptrtoint(workspace, llvm_types.I64)
    aligned = b.and_(b.add(base, ir.Constant(llvm_types.I64, 63)), ir.Constant(llvm_types.I64, ~63))
    b.store(b.inttoptr(aligned, llvm_types.I8P), b.gep(frame, [ir.Constant(llvm_types.I64, 0)]))
    b.store(b.bitcast(record, llvm_types.I8P), b.gep(frame, [ir.Constant(llvm_types.I64, FRAME_ERROR)]))

    def slot(buffer_id: int) -> ir.Value:
        return b.gep(frame, [ir.Constant(llvm_types.I64, FRAME_BUFFERS + buffer_id)])

    def argument(array: ir.Value, index: int) -> ir.Value:
        return b.load(b.gep(array, [ir.Constant(llvm_types.I64, index)]))

    for buffer, source in zip(kp.inputs, input_sources):
        if isinstance(source, int):
            b.store(argument(inputs, source), slot(buffer.id))
        else:
            b.store(_constant(module, f"{info.name}_in{buffer.id}", source), slot(buffer.id))
    for buffer in kp.buffers:
        if buffer.kind == "const":
            b.store(
                _constant(module, f"{info.name}_c{buffer.id}", np.asarray(buffer.value, buffer.dtype.np)),
                slot(buffer.id),
            )
        elif buffer.kind == "temp":
            offset = ir.Constant(llvm_types.I64, buffer.offset or 0)
            b.store(b.inttoptr(b.add(aligned, offset), llvm_types.I8P), slot(buffer.id))
    bound: set[int] = set()
    copies = []
    for j, buffer in enumerate(kp.results):
        if buffer.kind == "output" and buffer.id not in bound:
            bound.add(buffer.id)
            b.store(argument(outputs, j), slot(buffer.id))
        else:
            copies.append((j, buffer))
    b.call(run_all, [frame])
    memcpy = module.declare_intrinsic("llvm.memcpy", [llvm_types.I8P, llvm_types.I8P, llvm_types.I64])
    for j, buffer in copies:
        b.call(
            memcpy,
            [
                argument(outputs, j),
                b.load(slot(buffer.id)),
                ir.Constant(llvm_types.I64, buffer.nbytes),
                ir.Constant(ir.IntType(1), 0),
            ],
        )
    b.ret(b.trunc(b.load(record), llvm_types.I32))

    malloc = ir.Function(module, ir.FunctionType(llvm_types.I8P, [llvm_types.I64]), name="malloc")
    free = ir.Function(module, ir.FunctionType(llvm_types.VOID, [llvm_types.I8P]), name="free")
    run = ir.Function(module, ir.FunctionType(llvm_types.I32, [llvm_types.I8PP, llvm_types.I8PP]), name=f"{name}_run")
    b = ir.IRBuilder(run.append_basic_block("entry"))
    ws = b.call(malloc, [ir.Constant(llvm_types.I64, workspace_bytes(kp))])
    failed = b.icmp_unsigned("==", ws, ir.Constant(llvm_types.I8P, None))
    with b.if_then(failed, likely=False):
        b.ret(ir.Constant(llvm_types.I32, AOT_NO_MEMORY))
    code = b.call(with_ws, [run.args[0], run.args[1], ws])
    b.call(free, [ws])
    b.ret(code)


def workspace_bytes(kp: KernelProgram) -> int:
    """Bytes NAME_run_with_workspace needs (the plan's workspace plus alignment slack)."""
    return kp.workspace_bytes + 64


def _constant(module: ir.Module, name: str, value: np.ndarray) -> ir.Value:
    data = np.ascontiguousarray(value).tobytes() or b"\0"
    t = ir.ArrayType(llvm_types.I8, len(data))
    g = ir.GlobalVariable(module, t, name=name)
    g.linkage = "internal"
    g.global_constant = True
    g.align = 64
    g.initializer = ir.Constant(t, bytearray(data))
    return g.bitcast(llvm_types.I8P)
