"""HTTP blueprints: ``webhook`` (Alertmanager), ``incidents`` (read API), ``health`` (probes, metrics)."""

__all__: list[str] = []
