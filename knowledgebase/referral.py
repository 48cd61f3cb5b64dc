"""Referring non-government requests (a locksmith, movers, a plumber) to registered providers."""

from __future__ import annotations

from collections import defaultdict

from knowledgebase.models import Provider


class ProviderDirectory:
    def __init__(self, providers: list[Provider]) -> None:
        self.providers = providers
        self._by_keyword: dict[str, set[str]] = defaultdict(set)
        for p in providers:
            for word in p.keywords:
                self._by_keyword[word].add(p.category)

    def match(self, text: str, area: str | None = None, limit: int = 3) -> list[Provider]:
        """Providers of the category the text asks for, those of the citizen's area first."""
        votes: dict[str, int] = defaultdict(int)
        for word, categories in self._by_keyword.items():
            if word in text:
                for category in categories:
                    votes[category] += len(word)
        if not votes:
            return []
        category = max(votes, key=lambda c: votes[c])
        chosen = [p for p in self.providers if p.category == category]
        chosen.sort(key=lambda p: (p.area != area, p.area != "全市", p.id))
        return chosen[:limit]
