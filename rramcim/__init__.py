"""rramcim: a full-digital RRAM compute-in-memory chip: RTL, golden model, verification."""
__version__ = "0.1.0"
