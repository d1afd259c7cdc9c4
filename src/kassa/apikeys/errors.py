"""API key refusals. `Unauthenticated` and `Forbidden` are the API's 401 and 403."""

from kassa.errors import InvalidRequest, KassaError, NotFound


class Unauthenticated(KassaError):
    code = "unauthenticated"
    title = "Unauthenticated"


class Forbidden(KassaError):
    code = "forbidden"
    title = "Forbidden"


class InvalidScope(InvalidRequest):
    code = "invalid_scope"
    title = "Invalid scope"


class InvalidKeyName(InvalidRequest):
    code = "invalid_key_name"
    title = "Invalid key name"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "API key not found"
