"""`openai`: any OpenAI-compatible server, started from a command template or already running."""

from workbench.engines.openai.engine import OpenAIEngine, OpenAIOptions

__all__ = ["OpenAIEngine", "OpenAIOptions"]
