"""Channel adapters: each translates one channel's wire format to the conversation service
and back. They hold no business logic."""
