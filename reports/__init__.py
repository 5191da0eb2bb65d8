"""Run folders to SLIs, SLO verdicts and reports (HTML, Markdown, JSON, JUnit)."""

__all__: list[str] = []
