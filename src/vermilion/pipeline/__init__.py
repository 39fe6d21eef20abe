"""vermilion.pipeline."""
