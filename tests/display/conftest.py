"""Display tests draw with the non-interactive Agg backend (no display needed)."""

import matplotlib

matplotlib.use("Agg")
