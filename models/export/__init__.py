"""ONNX export of MedMPT graphs and the model-package writer (torch side only)."""
