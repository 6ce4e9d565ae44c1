"""Data and training: reading SST-2, base models and LoRA, training, evaluation, inference."""
