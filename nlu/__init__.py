"""Natural-language understanding: intent, request type, unit routing, entities, urgency."""
