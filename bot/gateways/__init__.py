"""One module per external system. Each method makes its calls and returns plain domain data;
known failure codes become GatewayError with a reason fit to show a user (never a secret)."""


class GatewayError(RuntimeError):
    """A backend answered, but not with what a check needs (missing resource, permission, ...)."""


class NotFound(GatewayError):
    """The named resource does not exist (or is invisible to our credentials)."""
