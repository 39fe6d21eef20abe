"""vermilion.io."""
