"""Torch-side tooling: MedMPT definition, phantom data, training, ONNX export, checkpoint conversion.

Never imported by app/, ui/ or inference/ at run time. The packaged models live in models/packages/
as plain files (ONNX + manifest) that the runtime reads by path.
"""
