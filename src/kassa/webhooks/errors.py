"""Refusals of webhook actions, each with a stable code (HTTP statuses in kassa.api.problems)."""

from kassa.errors import InvalidRequest, NotFound


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "Webhook endpoint not found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    title = "Webhook delivery not found"


class EventNotFound(NotFound):
    code = "event_not_found"
    title = "Event not found"


class InvalidWebhookEndpoint(InvalidRequest):
    """A URL that is malformed, not HTTPS, or names an address deliveries may not reach."""

    code = "invalid_webhook_endpoint"
    title = "Invalid webhook endpoint"
