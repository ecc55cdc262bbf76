"""stopgrad: self-supervised representation learning without negative pairs, and why it does or
does not collapse."""

__version__ = "0.1.0"
