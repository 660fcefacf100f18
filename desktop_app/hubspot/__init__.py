"""HubSpot client (requests): auth, endpoints, errors, rate limiter; the trimmed OpenAPI copy is in ``spec``."""
