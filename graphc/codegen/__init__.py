"""Code generation for graphc's compiled backends.

Submodules are imported on demand (``graphc.codegen.llvm_math`` pulls in llvmlite), so importing this
package stays cheap.
"""
