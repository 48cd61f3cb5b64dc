"""Local stand-ins for the providers' REST APIs, on 127.0.0.1, for the real client libraries."""
