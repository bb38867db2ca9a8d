"""Static resources (styles, presets, icons) loaded through importlib.resources. Imports nothing."""
