"""Reading a Prometheus scrape in tests, through prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    text: str

    def samples(self, name: str | None = None) -> Iterator[Sample]:
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                if name is None or sample.name == name:
                    yield sample

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(s.value for s in self.samples(name) if labels.items() <= s.labels.items())

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples(name) if label in s.labels}

    def help_texts(self) -> dict[str, str]:
        return {f.name: f.documentation for f in text_string_to_metric_families(self.text)}
