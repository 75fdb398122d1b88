"""Where a table's CDC files are: the task's S3 target endpoint, with the catalog's s3_bucket / s3_prefix
as overrides, and the catalog alone when the endpoint cannot be read. Pure."""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..catalog import TableSpec
from ..gateways.endpoints import S3Target
from ..gateways.s3 import CdcFiles, CdcLayout

# What the bot's role needs to read the endpoint (README, "Read-only AWS policy").
ENDPOINT_PERMISSION = "dms:DescribeEndpoints"


@dataclass(frozen=True)
class Located:
    """A layout and where it came from, said in the S3 check's evidence."""

    layout: CdcLayout | None  # None: nothing says which bucket
    notes: tuple[str, ...] = ()
    target: S3Target | None = None  # None: the endpoint was not read


@dataclass(frozen=True)
class Listed:
    """The S3 check's input: the layout used and what its bounded listing found."""

    located: Located
    files: CdcFiles | None = None


def locate(spec: TableSpec, target: S3Target | Exception | None) -> Located:
    if not isinstance(target, S3Target):
        why = str(target) if target is not None else "not asked"
        if not spec.s3_bucket:
            return Located(None, (f"Target endpoint not read ({why}) and the catalog names no s3_bucket: "
                                  f"grant {ENDPOINT_PERMISSION}, or set s3_bucket / s3_prefix in the catalog",))
        layout = _layout(spec, spec.s3_bucket, spec.s3_prefix or "", None)
        return Located(layout, (f"Target endpoint not read ({why}): the catalog's s3_bucket / s3_prefix are used "
                                f"(flat layout assumed; grant {ENDPOINT_PERMISSION} to read the real one)",))
    notes = [f"Layout from the {target.describe()}"]
    bucket, folder = target.bucket, target.folder
    if spec.s3_bucket and spec.s3_bucket != target.bucket:
        notes.append(f"The catalog's s3_bucket {spec.s3_bucket!r} overrides the endpoint's {target.bucket!r}")
        bucket = spec.s3_bucket
    if spec.s3_prefix is not None and spec.s3_prefix.strip("/") != target.folder:
        notes.append(f"The catalog's s3_prefix {spec.s3_prefix!r} overrides the endpoint's BucketFolder "
                     f"{target.folder!r}")
        folder = spec.s3_prefix
    if not bucket:
        return Located(None, tuple(notes) + ("The endpoint names no BucketName and the catalog no s3_bucket",), target)
    return Located(_layout(spec, bucket, folder, target), tuple(notes), target)


def _layout(spec: TableSpec, bucket: str, folder: str, target: S3Target | None) -> CdcLayout:
    table_prefix = _join(folder, spec.source_schema, spec.source_table)
    folder = folder.strip("/")
    if target is None:
        return CdcLayout(bucket, table_prefix, table_prefix, folder=folder)
    shared = target.transactions_file
    return CdcLayout(bucket, table_prefix, _join(folder, target.cdc_path) if shared else table_prefix,
                     partition=target.sequence if target.date_partition else "", delimiter=target.delimiter,
                     zone=target.timezone if target.date_partition else "", shared=shared, folder=folder)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/")) + "/"


def resolved(spec: TableSpec, target: S3Target | Exception | None) -> TableSpec:
    """The spec with the bucket and prefix its files really have (for the maintenance report's
    lifecycle check, which reads spec.s3_bucket / s3_table_prefix)."""
    found = locate(spec, target).layout
    return replace(spec, s3_bucket=found.bucket, s3_prefix=found.folder) if found else spec


def instance_for(spec: TableSpec, found: str | Exception | None) -> tuple[str | None, tuple[str, ...]]:
    """The replication instance the task runs on (its ReplicationInstanceArn, read with
    DescribeReplicationInstances), the catalog's dms_instance when that cannot be read, and what the
    evidence says about it. The catalog's value is compared case-insensitively: DMS stores the
    identifier lower-case (botocore: ReplicationInstance.ReplicationInstanceIdentifier)."""
    given = spec.dms_instance
    if isinstance(found, str):
        if given and given.lower() != found.lower():
            return found, (f"Replication instance {found} (the task's ReplicationInstanceArn); the catalog's "
                           f"dms_instance {given!r} is another instance: the task was moved, followed it",)
        return found, ()
    why = str(found) if found is not None else "not asked"
    if given:
        return given.lower(), (f"Replication instance not read ({why}): the catalog's dms_instance {given!r} is used",)
    return None, (f"Replication instance not read ({why}) and the catalog names no dms_instance",)
