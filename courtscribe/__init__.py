"""courtscribe: speech recognition for courtrooms.

Public API::

    from courtscribe import load_components, transcribe_file
    record = transcribe_file("hearing.wav", load_components())
"""
__version__ = "0.1.0"
__all__ = ["load_components", "transcribe_audio", "transcribe_file", "__version__"]


def __getattr__(name: str):
    """The pipeline loads on first use: `courtscribe records …`, `tokens …` and the Ray workers that
    only need the record store do not pay for importing the engines (~1 s a process)."""
    if name == "load_components":
        from .components import load_components

        return load_components
    if name in ("transcribe_audio", "transcribe_file"):
        from . import transcribe

        return getattr(transcribe, name)
    raise AttributeError(f"module 'courtscribe' has no attribute {name!r}")
