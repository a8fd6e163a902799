"""AgentMark Gateway: scoped API keys in front of an app's traces, scores and templates."""

__version__ = "0.1.0"
