"""migrate: move every conversation off the OpenAI Assistants API without losing one."""

__version__ = "0.1.0"
