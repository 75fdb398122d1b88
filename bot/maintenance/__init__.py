"""The runbook's Maintenance section as a report: vacuum, WAL retention, the DMS replication
instance and S3 clean-up, per catalog table and for the whole sync, each with its fix.

    maintenance_report(bot)                 -> MaintenanceReport (on demand: Slack, CLI)
    post_due_maintenance(bot, post, now)    -> the scheduled post, once per period (the worker)
"""
from .collect import collect, maintenance_report
from .report import Finding, MaintenanceReport, Topic
from .schedule import due_period, post_due_maintenance

__all__ = ["Finding", "MaintenanceReport", "Topic", "collect", "due_period", "maintenance_report",
           "post_due_maintenance"]
