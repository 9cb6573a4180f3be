"""LLVM IR text -> object code for this CPU: the one definition of graphc's optimisation tiers,
used in-process by graphc.runtime.jit and, run as a script, as a compile worker process.

Why a file that imports nothing of graphc: a worker must start in a fraction of a second and
produce exactly the code the parent would (same host CPU, same pipeline), and llvmlite serializes
every LLVM call in a process behind one lock, so the second core only helps from a second
process. The worker reads requests on stdin and answers on stdout until stdin closes (its
parent exited): each request is an 8-byte little-endian length, a tier byte (b"q" quick, b"o"
O3) and the IR text; each answer an 8-byte length and the object code, or a length with the top
bit set and an error message.
"""
from __future__ import annotations

import re
import struct
import sys
import threading
from functools import lru_cache

import llvmlite.binding as llvm

LOOP_SELF = "graphc.loop.self"   # written by graphc.codegen.llvm_loops.loop_id
_LOOP_ID = re.compile(r'^(!\d+) = !\{ ?!"' + re.escape(LOOP_SELF) + '"', re.M)
_init_lock = threading.Lock()
_initialized = False
ERROR_BIT = 1 << 63


def initialize() -> None:
    global _initialized
    with _init_lock:
        if not _initialized:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _initialized = True


# Loop kernels vectorize with 512-bit vectors where the CPU has AVX-512. LLVM's tuning for
# recent Xeons prefers 256-bit ones (to spare the clock), but graphc's own kernels (GEMM,
# convolutions) run 512-bit vectors anyway. In separate processes alternating (graphc /
# onnxruntime, benchmarks/vs_onnxruntime.py, two pairs each): efficientnet_b0 1.079-1.107 ->
# 1.034-1.053 at one thread, 1.098-1.102 -> 1.011-1.077 at two; mobilenet_v2 1.174-1.185 ->
# 1.142-1.143 and 1.197-1.251 -> 1.193-1.216; resnet18 1.128-1.140 -> 1.093-1.117 at two.
WIDE_VECTORS = True


@lru_cache(maxsize=2)
def target_machine(opt: int = 3) -> llvm.TargetMachine:
    initialize()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    features = llvm.get_host_cpu_features().flatten()
    if WIDE_VECTORS and "+avx512f" in features.split(","):
        features += ",-prefer-256-bit"
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=features,
                                        opt=opt, codemodel="jitdefault")


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine | None = None) -> None:
    """LLVM's O3 pipeline with loop and SLP vectorization and interleaving."""
    tm = tm or target_machine()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_interleaving = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)


def resolve_loop_ids(ir_text: str) -> str:
    """Loop metadata as LLVM wants it: `!N = distinct !{!N, ...}` where llvmlite wrote
    `!N = !{!"graphc.loop.self", ...}` (it cannot write a node referring to itself)."""
    if LOOP_SELF not in ir_text:
        return ir_text
    return _LOOP_ID.sub(lambda m: f"{m.group(1)} = distinct !{{{m.group(1)}", ir_text)


def parse(ir_text: str) -> llvm.ModuleRef:
    tm = target_machine()
    module = llvm.parse_assembly(resolve_loop_ids(ir_text))
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    module.verify()
    return module


def compile_ir(ir_text: str, quick: bool = False) -> bytes:
    """Relocatable object code for the host: at O3 with vectorization, or, for `quick`, with
    only SROA, instcombine and CFG simplification and fast instruction selection (about 10x
    sooner, for programs whose whole run is a few microseconds)."""
    module = parse(ir_text)
    if quick:
        tm = target_machine(0)
        pm = llvm.create_new_module_pass_manager()
        pm.add_sroa_pass()
        pm.add_instruction_combine_pass()
        pm.add_simplify_cfg_pass()
        pm.run(module, llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=0)))
        return tm.emit_object(module)
    optimize(module)
    return target_machine().emit_object(module)


def serve(requests, answers) -> None:
    """The worker loop: compile each request until the input ends."""
    while True:
        head = requests.read(9)
        if len(head) < 9:
            return
        (size,), tier = struct.unpack("<Q", head[:8]), head[8:9]
        text = requests.read(size).decode("utf-8")
        try:
            code = compile_ir(text, quick=tier == b"q")
            answers.write(struct.pack("<Q", len(code)) + code)
        except Exception as err:   # noqa: BLE001 - any failure is the parent's to report, not a dead worker
            message = f"{type(err).__name__}: {err}".encode("utf-8", "replace")
            answers.write(struct.pack("<Q", ERROR_BIT | len(message)) + message)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
