"""How results read: terminal text, Markdown and HTML renderings of a verdict or a comparison."""
