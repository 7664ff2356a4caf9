"""The two ways a request to the stand-in can be wrong; the server turns
them into HTTP 400 and 404 with the message as the reason."""


class NotFound(Exception):
    """The thing a control request names does not exist (HTTP 404)."""


class BadRequest(Exception):
    """A control request is malformed (HTTP 400)."""
