"""PySide6 + VTK user interface: windows, viewports, panels, Qt workers. Thin: logic lives in app/.

Must not import inference/ or models/ (talks to app/ services only).
"""
