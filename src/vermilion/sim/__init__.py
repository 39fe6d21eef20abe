"""vermilion.sim."""
