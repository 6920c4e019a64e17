"""`unified-system top`: a terminal UI over the control API (Textual). The supervisor's
resident process never imports this package; only the `top` command does."""
