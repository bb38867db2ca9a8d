"""Entry script of the PyInstaller bundle (installer.spec): runs the workstation's GUI entry."""

import sys

from ui.main import main

if __name__ == "__main__":
    sys.exit(main())
