"""courtscribe: speech recognition for courtrooms.

Public API::

    from courtscribe import load_components, transcribe_file
    record = transcribe_file("hearing.wav", load_components())
"""
from .transcribe import load_components, transcribe_audio, transcribe_file

__version__ = "0.1.0"
__all__ = ["load_components", "transcribe_audio", "transcribe_file", "__version__"]
