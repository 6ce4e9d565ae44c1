"""Where the report server listens: its options checked, its socket bound, before it starts.

Kept apart from :mod:`sentiment_lora.reporting.server` (which loads matplotlib and pandas) so
that ``sentiment-lora serve-reports`` answers a bad ``--host`` or ``--port`` at once.
"""

import errno
import os
import socket
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sentiment_lora.cli_options import OptionError


class ServerOptions(BaseModel):
    """Where ``sentiment-lora serve-reports`` listens (checked before anything is bound)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str = Field("127.0.0.1", description="address to listen on (127.0.0.1: this machine)")
    port: int = Field(8765, ge=1, le=65535, description="TCP port, 1 to 65535")

    @field_validator("host")
    @classmethod
    def _one_word(cls, host: str) -> str:
        if not host or host.split() != [host]:
            raise ValueError("must be a host name or an IP address, e.g. 127.0.0.1")
        return host


def server_options(host: Any, port: Any) -> ServerOptions:
    """:class:`ServerOptions`, or :class:`OptionError` naming ``--host`` or ``--port``."""
    try:
        return ServerOptions(host=host, port=port)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0])
        value = {"host": host, "port": port}[name]
        message = error["msg"].removeprefix("Value error, ")
        raise OptionError(f"--{name} {value!r}: {message}") from None


def bind(options: ServerOptions) -> socket.socket:
    """A listening socket for ``options``, or :class:`OptionError` naming the option at fault."""
    host, port = options.host, options.port
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid name"
        raise OptionError(f"--host {host}: not a known host name or address ({reason})") from None
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.EADDRINUSE:
            message = f"--port {port}: address already in use; stop the server there or pick "
            raise OptionError(message + "another port") from None
        if exc.errno == errno.EACCES:
            message = f"--port {port}: {reason}; use a port from 1024 to 65535"
            raise OptionError(message) from None
        raise OptionError(
            f"--host {host}: cannot listen there ({reason}); use an address of this machine, "
            "e.g. 127.0.0.1"
        ) from None
