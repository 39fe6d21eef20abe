"""vermilion.repo."""
