"""Beam building blocks of the stylization job: they know Beam, and call `models` for pixels."""
