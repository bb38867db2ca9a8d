"""Checks that the default model package is present and loads (used by --self-test)."""

from __future__ import annotations

from app import paths


def check_default_model() -> tuple[str, str]:
    """Return (status, message); status is "ok", "absent" or "failed"."""
    model_dir = paths.default_model_dir()
    if model_dir is None:
        return "absent", "no bundled default model package (nothing to load)"
    try:
        from inference.runtime import ReportRuntime

        runtime = ReportRuntime.load(model_dir, device="auto")
    except Exception as exc:  # report, never crash
        return "failed", f"default model at {model_dir} did not load: {exc}"
    info = runtime.model_info
    notices = f" ({'; '.join(runtime.notices)})" if runtime.notices else ""
    return "ok", f"loaded {info.display_name} {info.version} [{info.label}] on {runtime.device}{notices}"
