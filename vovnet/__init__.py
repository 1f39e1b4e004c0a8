"""VoVNet: value-of-vision policies for Qwen3-VL, as a DVC pipeline."""

__version__ = "0.1.0"


class VovnetError(Exception):
    """A user-facing error: printed as one line by the stage CLIs, never as a traceback."""
