"""How a client command ended: its exit code, one meaning each, and the text it prints.

The codes are the same for every command of the command line (docs/operating.md,
"Command line", lists them).
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1  # command_failed, or nothing to show (qr)
EXIT_BAD_INPUT = 2  # refused before anything was published, or a bad setting
EXIT_UNREACHABLE = 3  # RabbitMQ or Redis did not answer
EXIT_TIMEOUT = 4  # no outcome within --timeout
EXIT_AUTH_FAILURE = 5  # create: auth_failure_instance
EXIT_ENDED = 6  # create: the session disconnected, failed, stopped or was lost
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_BAD_SETTING = 2  # run, dashboard, any command: a bad setting (the same code as EXIT_BAD_INPUT)


@dataclass
class Outcome:
    code: int
    text: str
