"""ONNX Runtime model runtime on numpy arrays.

Must not import PySide6, vtk, pydicom, SimpleITK, highdicom, torch, app/, ui/ or models/.
"""
