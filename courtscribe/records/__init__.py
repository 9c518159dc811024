"""The court record: its data model and the files written from it."""
from .model import SCHEMA_VERSION, Hearing, Participant, Pipeline, Record, Role, Source, Token, Utterance

__all__ = ["SCHEMA_VERSION", "Hearing", "Participant", "Pipeline", "Record", "Role", "Source", "Token", "Utterance"]
