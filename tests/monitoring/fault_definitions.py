"""A code location with one blocking check that always fails: the end-to-end test's fault."""

from dagster import AssetCheckResult, Definitions, asset, asset_check


@asset
def e2e_checked_asset() -> int:
    return 1


@asset_check(asset=e2e_checked_asset, blocking=True)
def always_fails() -> AssetCheckResult:
    return AssetCheckResult(passed=False, metadata={"reason": "injected by the monitoring test"})


defs = Definitions(assets=[e2e_checked_asset], asset_checks=[always_fails])
