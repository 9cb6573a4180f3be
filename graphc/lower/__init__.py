"""Program -> kernel program: fused loop kernels over index-mapped buffers, library calls, and
a memory plan. Shared by every code generator; knows nothing of LLVM or CUDA."""
from .kernel import Accumulator, Buffer, Check, GemmCall, KernelProgram, LoopKernel, Slot, Store
from .lower import lower_program
from .memory import plan_memory

__all__ = ["Accumulator", "Buffer", "Check", "GemmCall", "KernelProgram", "LoopKernel", "Slot", "Store",
           "lower_program", "plan_memory"]
