"""A DMS task's endpoints as DescribeEndpoints returns them: the S3 target's layout settings and the
PostgreSQL source's slot. Pure parsing; the DMS gateway makes the call.

Field meanings and defaults are botocore's service model (botocore/data/dms/2016-01-01/service-2.json,
shapes S3Settings and PostgreSQLSettings) and the DMS user guide, "Using Amazon S3 as a target for AWS
Database Migration Service" (CHAP_Target.S3: "Using date-based folder partitioning" and "Capturing data
changes (CDC) including transaction order on the S3 target")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# S3Settings.DatePartitionSequence values and the date parts each puts in the folder, in order.
PARTITION_SEQUENCES = {
    "YYYYMMDD": ("%Y", "%m", "%d"),
    "YYYYMMDDHH": ("%Y", "%m", "%d", "%H"),
    "YYYYMM": ("%Y", "%m"),
    "MMYYYYDD": ("%m", "%Y", "%d"),
    "DDMMYYYY": ("%d", "%m", "%Y"),
}
# S3Settings.DatePartitionDelimiter: what separates the date parts (SLASH makes one folder a part).
PARTITION_DELIMITERS = {"SLASH": "/", "UNDERSCORE": "_", "DASH": "-", "NONE": ""}


@dataclass(frozen=True)
class S3Target:
    """S3Settings of a DMS target endpoint, with the service model's defaults where a field is absent."""

    endpoint: str  # the endpoint's identifier, for the evidence
    bucket: str = ""
    folder: str = ""  # BucketFolder: tables live under <folder>/<schema>/<table>/
    cdc_path: str = ""
    date_partition: bool = False
    sequence: str = "YYYYMMDD"  # DatePartitionSequence (default YYYYMMDD)
    delimiter: str = "SLASH"  # DatePartitionDelimiter (default SLASH)
    timezone: str = ""  # DatePartitionTimezone, Area/Location; empty: UTC
    preserve_transactions: bool = False
    data_format: str = "csv"  # DataFormat: csv (default) or parquet
    compression: str = "NONE"  # CompressionType: NONE (default) or GZIP
    include_op_for_full_load: bool = False  # IncludeOpForFullLoad (default false)
    timestamp_column: str = ""
    cdc_inserts_only: bool = False

    @property
    def transactions_file(self) -> bool:
        """PreserveTransactions with a CdcPath: every table's changes go to <folder>/<CdcPath>/CDC_TXN-*
        files (the model: DMS "verifies that you have set this parameter [CdcPath]")."""
        return self.preserve_transactions and bool(self.cdc_path)

    def describe(self) -> str:
        parts = [f"target endpoint {self.endpoint}: s3://{self.bucket}/{self.folder.strip('/')}"]
        if self.date_partition:
            parts.append(f"date partitions {self.sequence}/{self.delimiter}"
                         + (f" in {self.timezone}" if self.timezone else ""))
        if self.transactions_file:
            parts.append(f"CDC in {self.cdc_path}/CDC_TXN-* (PreserveTransactions)")
        fmt = self.data_format + (" gzip" if self.compression.upper() == "GZIP" else "")
        parts.append(f"{fmt} files")
        parts.append(f"IncludeOpForFullLoad {'true' if self.include_op_for_full_load else 'false'}")
        return ", ".join(parts)


@dataclass(frozen=True)
class PgSource:
    """PostgreSQLSettings of a DMS source endpoint: what names the task's replication slot."""

    endpoint: str
    slot_name: str = ""  # PostgreSQLSettings.SlotName: a slot created beforehand, used by name
    database: str = ""  # DatabaseName: a logical slot belongs to one database
    plugin: str = ""  # PluginName: pglogical, test_decoding or no-preference


def s3_target(raw: dict[str, Any]) -> S3Target:
    s3 = raw.get("S3Settings") or {}
    sequence = str(s3.get("DatePartitionSequence") or "YYYYMMDD").upper()
    delimiter = str(s3.get("DatePartitionDelimiter") or "SLASH").upper()
    return S3Target(
        endpoint=raw.get("EndpointIdentifier", ""),
        bucket=s3.get("BucketName", "") or "",
        folder=(s3.get("BucketFolder", "") or "").strip("/"),
        cdc_path=(s3.get("CdcPath", "") or "").strip("/"),
        date_partition=_flag(s3.get("DatePartitionEnabled")),
        sequence=sequence if sequence in PARTITION_SEQUENCES else "YYYYMMDD",
        delimiter=delimiter if delimiter in PARTITION_DELIMITERS else "SLASH",
        timezone=s3.get("DatePartitionTimezone", "") or "",
        preserve_transactions=_flag(s3.get("PreserveTransactions")),
        data_format=str(s3.get("DataFormat") or "csv").lower(),
        compression=str(s3.get("CompressionType") or "NONE").upper(),
        include_op_for_full_load=_flag(s3.get("IncludeOpForFullLoad")),
        timestamp_column=s3.get("TimestampColumnName", "") or "",
        cdc_inserts_only=_flag(s3.get("CdcInsertsOnly")),
    )


def pg_source(raw: dict[str, Any]) -> PgSource:
    pg = raw.get("PostgreSQLSettings") or {}
    return PgSource(
        endpoint=raw.get("EndpointIdentifier", ""),
        slot_name=pg.get("SlotName", "") or "",
        database=pg.get("DatabaseName") or raw.get("DatabaseName", "") or "",
        plugin=(pg.get("PluginName", "") or "").lower(),
    )


def _flag(value: Any) -> bool:
    """The model's booleans; extra connection attributes also spell them "y"/"true" as text."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "y", "yes", "1")
    return bool(value)
