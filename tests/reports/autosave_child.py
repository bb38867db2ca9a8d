"""Child process for the crash test: autosaves continuously and reports each committed save.

Usage: python autosave_child.py DB StudyInstanceUID SeriesInstanceUID SEED
Prints 'ready VERSION' after reopening, then 'saved VERSION JSON' after each committed save.
"""

import json
import random
import sys

from app.reports import ReportSession, ReportStore


def main() -> None:
    path, study, series, seed = sys.argv[1:5]
    rng = random.Random(int(seed))
    store = ReportStore(path)
    session = ReportSession.open(store, study, series, "crash-child")
    print(f"ready {session.version} {json.dumps(session.sections)}", flush=True)
    while True:
        n = session.version
        text = {"FINDINGS": f"edit {n} " + "lung " * rng.randint(0, 800), "IMPRESSION": f"impression {n}"}
        version = session.save_draft(text, n)
        print(f"saved {version} {json.dumps(text)}", flush=True)


if __name__ == "__main__":
    main()
