"""The clerk's, caption and dictation pages' assets (``static/``): served by ``server/pages.py``."""
