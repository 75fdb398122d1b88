import pytest

from bot.catalog import CatalogError, parse_catalog

MINIMAL = """
[[tables]]
name = "orders"
source = "public.orders"
"""


def test_defaults_follow_the_runbook_conventions():
    spec = parse_catalog(MINIMAL).tables[0]
    assert (spec.staging_table, spec.final_table, spec.pipe, spec.merge_task) == (
        "STAGING.ORDERS_CDC", "PUBLIC.ORDERS", "STAGING.ORDERS_PIPE", "STAGING.ORDERS_MERGE")
    assert spec.dms_task == "aurora-snowflake-cdc"
    # Read from the task itself unless the catalog overrides them (its instance, its S3 target endpoint).
    assert (spec.dms_instance, spec.s3_bucket, spec.s3_prefix) == (None, None, None)
    assert spec.s3_table_prefix == "public/orders/"
    assert spec.freshness_threshold_minutes == 120 and spec.freshness_column == "UPDATED_AT"


def test_defaults_section_and_explicit_fields_override():
    catalog = parse_catalog("""
[defaults]
dms_task = "other-task"
freshness_threshold_minutes = 30

[[tables]]
name = "orders"
source = "sales.orders"
final_table = "ANALYTICS.ORDERS"
""")
    spec = catalog.tables[0]
    assert spec.dms_task == "other-task" and spec.freshness_threshold_minutes == 30
    assert spec.final_table == "ANALYTICS.ORDERS" and spec.staging_table == "STAGING.ORDERS_CDC"


@pytest.mark.parametrize("typed", ["orders", "ORDERS", "public.orders", "PUBLIC.ORDERS", " Orders "])
def test_table_found_by_name_source_or_final_table_case_insensitively(typed):
    assert parse_catalog(MINIMAL).find(typed).name == "orders"


def test_a_name_source_or_final_table_beats_another_tables_bare_final_name():
    catalog = parse_catalog("""
[[tables]]
name = "orders"
source = "public.orders"
final_table = "ARCHIVE.LEGACY"

[[tables]]
name = "legacy"
source = "public.legacy_src"
final_table = "ANALYTICS.LEGACY_FINAL"
""")
    assert catalog.find("legacy").name == "legacy"  # its own name, though "orders" ends in .LEGACY
    assert catalog.find("archive.legacy").name == "orders"
    assert catalog.find("legacy_final").name == "legacy"  # a bare final name still finds its table
    assert catalog.find("public") is None


def test_unknown_table_gets_close_matches():
    catalog = parse_catalog(MINIMAL + '\n[[tables]]\nname = "order_items"\nsource = "public.order_items"\n')
    assert catalog.find("ordrs") is None
    assert "orders" in catalog.suggestions("ordrs")


def test_unknown_key_names_its_line():
    with pytest.raises(CatalogError, match=r"line 5: unknown key `stagng_table`"):
        parse_catalog(MINIMAL + 'stagng_table = "X.Y"\n')


def test_bad_identifier_names_its_line():
    text = MINIMAL.replace('source = "public.orders"', 'source = "public.orders; drop table x"')
    with pytest.raises(CatalogError, match=r"line 4: `source`"):
        parse_catalog(text)


def test_bad_default_points_at_the_defaults_section():
    with pytest.raises(CatalogError, match=r"line 2: `s3_bucket`"):
        parse_catalog('[defaults]\ns3_bucket = "Not A Bucket"\n' + MINIMAL)


def test_duplicate_name_is_refused():
    with pytest.raises(CatalogError, match=r"line 6: duplicate table 'orders'"):
        parse_catalog(MINIMAL + '\n[[tables]]\nname = "Orders"\nsource = "public.orders2"\n')


def test_toml_syntax_error_names_the_line():
    with pytest.raises(CatalogError, match=r"line 3"):
        parse_catalog('[[tables]]\nname = "orders"\nsource = \n')


def test_approvers_must_be_slack_ids():
    with pytest.raises(CatalogError, match="not a Slack user or usergroup id"):
        parse_catalog(MINIMAL + '[access]\napprovers = ["alice@example.com"]\n')


def test_empty_catalog_is_refused():
    with pytest.raises(CatalogError, match="at least one table"):
        parse_catalog("[defaults]\n")


def test_policies_name_known_fixes_and_sane_counts():
    catalog = parse_catalog(MINIMAL + "[access.policies]\nadd_columns = 2\n")
    assert catalog.access.policies == {"add_columns": 2}
    with pytest.raises(CatalogError, match=r"line 6: \[access.policies\] has no fix called `drop_table`"):
        parse_catalog(MINIMAL + "[access.policies]\ndrop_table = 2\n")
    with pytest.raises(CatalogError, match="must be 1..5"):
        parse_catalog(MINIMAL + "[access.policies]\nresync = 9\n")

