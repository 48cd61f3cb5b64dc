"""The knowledge base: FAQ entries and convenience providers, retrieval, import and export."""
