"""Slack glue: parse, ack, call the core, render Block Kit. No backend clients here."""
