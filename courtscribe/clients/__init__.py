"""Clients of the courtscribe service: the async streaming client and its command line."""
from .stream_client import StreamResult, stream, stream_file

__all__ = ["StreamResult", "stream", "stream_file"]
