"""MedMPT report model in torch (config, vision, decoder, model); torch-side only."""
