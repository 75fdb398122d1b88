"""syncbot's core: catalog, gateways, diagnostics. Never imports Slack."""
