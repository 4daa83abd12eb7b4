"""Plots and report writers (matplotlib, PNG)."""
