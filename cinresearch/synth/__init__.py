"""Synthetic linked CIN / SSDA903 / NPD data (placeholder docstring)."""

from cinresearch.synth.generate import SynthSummary, generate
from cinresearch.synth.simulate import SynthWorld, simulate

__all__ = ["SynthSummary", "SynthWorld", "generate", "simulate"]
