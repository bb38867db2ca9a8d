"""Training, evaluation and bundling of our own MedMPT on synthetic phantoms (torch side)."""
