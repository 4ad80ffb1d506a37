"""The offline sandbox: a Gemini- and OpenAI-compatible loopback server, its composer and its fault
scripts, and its project quota."""

from .composer import compose, read_prompt
from .faults import Fault, FaultScript, parse_faults
from .quota import Quota, QuotaStats
from .server import RecordedRequest, SandboxServer, default_sandbox

__all__ = [
    "Fault",
    "FaultScript",
    "Quota",
    "QuotaStats",
    "RecordedRequest",
    "SandboxServer",
    "compose",
    "default_sandbox",
    "parse_faults",
    "read_prompt",
]
