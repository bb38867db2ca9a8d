"""Qt-free core of the MedMPT workstation: domain objects, DICOM I/O, services, tasks, CLI.

Must not import PySide6, vtk, torch or models/.
"""

__version__ = "0.1.0"
