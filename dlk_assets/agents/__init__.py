"""Memory-backed tools for agents (plain typed functions; no LLM needed to use or test them)."""
