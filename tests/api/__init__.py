"""Black-box tests of the public API, written from DESIGN.md alone."""
