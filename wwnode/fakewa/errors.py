"""The ways a request to the stand-in can be wrong; the server turns them
into HTTP 400, 403, 404 and 409 with the message as the reason."""


class NotFound(Exception):
    """The thing a control request names does not exist (HTTP 404)."""


class BadRequest(Exception):
    """A control request is malformed (HTTP 400)."""


class Ambiguous(Exception):
    """A control request that names no target fits several (HTTP 409);
    ``choices`` goes into the answer beside the reason, so that the caller
    can name one."""

    def __init__(self, message: str, **choices):
        super().__init__(message)
        self.choices = choices


class Forbidden(Exception):
    """WhatsApp's rules do not let the one who asks do it (HTTP 403): not
    an admin of the group, not in it, the group full."""


def refusing(answer) -> dict:
    """A page's request answered: what ``answer()`` gives, or WhatsApp's
    refusal as the page gets one (``{"refused": status, "error"}``, which
    the page throws as a ServerStatusCodeError) -- not an HTTP error, which
    the browser would log as a failed load where the real page logs none."""
    try:
        return answer()
    except Forbidden as e:
        return {"refused": 403, "error": str(e)}
    except NotFound as e:
        return {"refused": 404, "error": str(e)}
