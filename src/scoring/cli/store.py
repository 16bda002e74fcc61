"""The decision store's records kept by hand: API keys, enterprises' consents, the audit log's
check, and the loan outcomes banks reported."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from scoring.cli.output import console, fail, parse_day
from scoring.settings import Settings

keys_app = typer.Typer(help="API keys: create, list, rotate, revoke.", no_args_is_help=True)
consents_app = typer.Typer(
    help="Enterprises' authorizations of banks (授权): grant, list, revoke.", no_args_is_help=True
)
audit_app = typer.Typer(help="The audit log of decisions, refusals and outcomes.", no_args_is_help=True)
outcomes_app = typer.Typer(help="Loan outcomes banks reported through the API.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="bank, analyst, regulator, admin, enterprise or reviewer")],
    bank_id: Annotated[str | None, typer.Option(help="the bank's id (bank keys only)")] = None,
    uscc: Annotated[
        str | None, typer.Option(help="the enterprise's 统一社会信用代码 (enterprise keys only: it reads about itself)")
    ] = None,
    label: Annotated[str | None, typer.Option(help="who holds the key")] = None,
    rate_limit: Annotated[
        int | None, typer.Option(help="requests per minute for this key (default: SCORING_RATE_LIMIT_PER_MINUTE)")
    ] = None,
) -> None:
    """Create an API key; the key is shown once, only its hash is stored."""
    from scoring.serve.schemas import UsccValueError, uscc_shape
    from scoring.store import Role, create_key, engine_for

    try:
        secret, record = create_key(
            engine_for(Settings().decision_url),
            role=Role(role),
            bank_id=bank_id,
            label=label,
            rate_per_minute=rate_limit,
            uscc=uscc_shape(uscc) if uscc else None,
        )
    except UsccValueError as exc:
        raise fail(f"--uscc: {exc}") from exc
    except ValueError as exc:  # an unknown role, or a bank id or USCC given to the wrong role (not ScoringErrors)
        raise fail(str(exc)) from exc
    whose = f" of {record.bank_id}" if record.bank_id else f" of {record.uscc}" if record.uscc else ""
    console.print(f"created {record.role} key {record.key_id}{whose}: {secret}")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (ids, roles, banks; never the keys)."""
    from scoring.store import engine_for, list_keys

    table = Table("key id", "role", "bank / enterprise", "label", "created", "revoked (from)")
    for k in list_keys(engine_for(Settings().decision_url)):
        table.add_row(
            k["key_id"],
            k["role"],
            k["bank_id"] or k.get("uscc") or "",
            k["label"] or "",
            str(k["created_at"])[:19],
            str(k["revoked_at"] or "")[:19],
        )
    console.print(table)


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="the key id shown by `scoring keys list`")],
    overlap_hours: Annotated[
        float, typer.Option(help="how long the old key stays valid beside the new one, in hours")
    ] = 24.0,
) -> None:
    """Issue a new key for a key's holder (same role, bank, label and rate limit); the old key is refused
    once the overlap is over (within SCORING_KEY_CACHE_SECONDS)."""
    from scoring.store import engine_for, rotate_key

    try:
        rotated = rotate_key(engine_for(Settings().decision_url), key_id, dt.timedelta(hours=overlap_hours))
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if rotated is None:
        raise fail(f"no live key {key_id}")
    secret, record, ends = rotated
    console.print(f"created {record.role} key {record.key_id}: {secret}")
    console.print(f"the old key {key_id} is valid until {ends.isoformat(timespec='seconds')} (UTC), refused after")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key id shown by `scoring keys list`")]) -> None:
    """Revoke an API key: a running service refuses it within SCORING_KEY_CACHE_SECONDS (5 s)."""
    from scoring.store import engine_for, revoke_key

    if not revoke_key(engine_for(Settings().decision_url), key_id):
        raise fail(f"no live key {key_id}")
    console.print(f"revoked {key_id}")


@consents_app.command("grant")
def consents_grant(
    uscc: Annotated[str, typer.Option(help="the enterprise's 统一社会信用代码")],
    bank_id: Annotated[str, typer.Option(help="the bank it authorized")],
    purpose: Annotated[str, typer.Option(help="pre_credit or evaluation")] = "pre_credit",
    expires: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: one year from granted)")] = None,
    granted: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today)")] = None,
    evidence: Annotated[str | None, typer.Option(help="the signed authorization's reference")] = None,
) -> None:
    """Record that an enterprise authorized a bank for a purpose (audited)."""
    import getpass

    from scoring.serve.schemas import UsccValueError, uscc_shape
    from scoring.store import Purpose, engine_for, grant_consent

    try:
        code = uscc_shape(uscc)
        granted_on = parse_day(granted, "--granted") if granted else dt.date.today()
        expires_on = parse_day(expires, "--expires") if expires else granted_on.replace(year=granted_on.year + 1)
        row = grant_consent(
            engine_for(Settings().decision_url),
            uscc=code,
            bank_id=bank_id,
            purpose=Purpose(purpose),
            granted_on=granted_on,
            expires_on=expires_on,
            evidence=evidence,
            created_by=f"cli:{getpass.getuser()}",
        )
    except UsccValueError as exc:  # the option is named: the message alone does not say which input
        raise fail(f"--uscc: {exc}") from exc
    except ValueError as exc:  # an unknown purpose, or an expiry before the grant (not ScoringErrors)
        raise fail(str(exc)) from exc
    console.print(
        f"consent {row['consent_id']}: {code} authorized {bank_id} for {purpose} from {granted_on} until {expires_on}"
    )


@consents_app.command("list")
def consents_list(
    uscc: Annotated[str | None, typer.Option(help="only this enterprise")] = None,
    bank_id: Annotated[str | None, typer.Option(help="only this bank")] = None,
) -> None:
    """List consents, newest first."""
    from scoring.store import engine_for, list_consents

    table = Table("consent id", "uscc", "bank", "purpose", "granted", "expires", "revoked", "evidence")
    for c in list_consents(engine_for(Settings().decision_url), uscc=uscc, bank_id=bank_id):
        table.add_row(
            c["consent_id"],
            c["uscc"],
            c["bank_id"],
            c["purpose"],
            str(c["granted_on"]),
            str(c["expires_on"]),
            str(c["revoked_at"] or "")[:19],
            c["evidence"] or "",
        )
    console.print(table)


@consents_app.command("revoke")
def consents_revoke(consent_id: Annotated[str, typer.Argument(help="the consent id")]) -> None:
    """Revoke a consent from now on (audited)."""
    import getpass

    from scoring.store import engine_for, revoke_consent

    if revoke_consent(engine_for(Settings().decision_url), consent_id, by=f"cli:{getpass.getuser()}") is None:
        raise fail(f"no live consent {consent_id}")
    console.print(f"revoked consent {consent_id}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain: a changed or deleted row is reported (exit 1)."""
    from scoring.store import engine_for, verify_chain

    report = verify_chain(engine_for(Settings().decision_url))
    if report.intact:
        console.print(f"audit log intact: {report.rows:,} rows, head at {report.head_seq:,}")
        return
    for problem in report.problems:
        console.print(f"[red]{problem}[/red]")
    raise fail(f"audit log broken: {len(report.problems)} problem(s) in {report.rows:,} rows")


@outcomes_app.command("export")
def outcomes_export(
    out: Annotated[
        Path, typer.Option(help="Parquet file to write in the loans format (its name must start with loans.)")
    ] = Path("var/outcomes/loans.reported.parquet"),
) -> None:
    """Write the latest reported outcome of every loan as a loans table, for `scoring ingest` and retraining."""
    from scoring.store import engine_for, reported_loans

    frame = reported_loans(engine_for(Settings().decision_url))
    if frame.empty:
        raise fail("no outcomes reported yet")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    console.print(f"wrote {len(frame):,} loans from {frame['bank_id'].nunique()} bank(s) to {out}")
