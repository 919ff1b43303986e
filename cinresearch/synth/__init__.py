"""Synthetic CIN world (placeholder docstring; replaced below)."""

from cinresearch.synth.simulate import SynthWorld, simulate

__all__ = ["SynthWorld", "simulate"]
