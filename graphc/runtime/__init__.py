"""Loading and running compiled code: the LLVM JIT and its disk cache, the thread pool, and
the CPU executable that binds NumPy arrays to a compiled program."""
