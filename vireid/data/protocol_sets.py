"""What a test protocol hands the evaluator: a query list and one gallery per trial."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

from vireid.data.protocol import Sample


@dataclass(frozen=True)
class ProtocolSets:
    """Query list and one gallery list per trial.

    ``transposed``: the ranking's roles are swapped: each trial's gallery sample is ranked
    as the queries (rows) against every ``query`` image (columns). LLCM's VIS-to-IR is
    computed so by the reference code (``shared/golden/README.md``)."""

    name: str                          # e.g. "sysu/all/single", "regdb/trial3/v2t"
    query: List[Sample]
    galleries: List[List[Sample]]
    trials: List[int]
    transposed: bool = False

    def ids_without_queries(self, test_ids: Sequence[int] = ()) -> List[int]:
        """Identities of the protocol (``test_ids`` and every gallery's) with no query image:
        they can only be matched against, never searched for."""
        ids = set(int(p) for p in test_ids) | {s.pid for g in self.galleries for s in g}
        return sorted(ids - {s.pid for s in self.query})

    def paths(self) -> List[str]:
        """Every image the protocol needs features of (query first, each once)."""
        seen: Dict[str, None] = {}
        for s in self.query:
            seen.setdefault(s.path)
        for g in self.galleries:
            for s in g:
                seen.setdefault(s.path)
        return list(seen)
