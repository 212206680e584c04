"""A compact, searchable summary of one agent conversation (pure; no storage)."""

from __future__ import annotations

import re
from dataclasses import dataclass

ERROR = re.compile(r"\b(?:[A-Za-z_.]*[A-Z][A-Za-z]*(?:Error|Exception|Warning)|ERR_[A-Z_]+)\b")
COMMAND_BLOCK = re.compile(r"```(?:bash|sh|shell)?\n(.*?)```", re.DOTALL)
RESOLVED = re.compile(r"all tests pass|task is complete|fixed the|successfully", re.IGNORECASE)
FAILED = re.compile(r"still fail|giving up|stopping here|unable to|could not fix", re.IGNORECASE)
SUMMARY_CHARS = 600


@dataclass(frozen=True)
class TraceSummary:
    """What happened in a trace: outcome, errors seen, commands run, and a short text for people."""

    outcome: str  # resolved | failed | unknown
    errors: list[str]
    commands: list[str]
    message_count: int
    text: str


def summarize(messages: list[dict[str, str]]) -> TraceSummary:
    """Outcome from the agent's last word, distinct error names in order, and shell commands run."""
    errors: list[str] = []
    commands: list[str] = []
    for message in messages:
        for name in ERROR.findall(message["content"]):
            if name not in errors:
                errors.append(name)
        if message["role"] == "assistant":
            for block in COMMAND_BLOCK.findall(message["content"]):
                commands += [line.strip() for line in block.splitlines() if line.strip()]
    last = next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), "")
    outcome = "resolved" if RESOLVED.search(last) else "failed" if FAILED.search(last) else "unknown"
    text = (f"{len(messages)} messages, outcome {outcome}. Errors: {', '.join(errors) or 'none'}. "
            f"Commands: {'; '.join(commands[:6]) or 'none'}. Last: {last.strip()}")
    return TraceSummary(outcome, errors, commands, len(messages), text[:SUMMARY_CHARS])
