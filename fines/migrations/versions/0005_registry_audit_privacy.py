"""registry audit: keyed plate hash instead of the clear plate, no VIN, retention purge

The clear ``plate`` column goes; ``plate_hash`` (keyed hash, see
``fines.registry_audit.audit_plate_hash``) replaces it. Rows written before this migration are
hashed with the plate hash key (``LEZ_PLATE_HASH_KEY``) that the entry point running the
migrations hands in (``lez migrate``: ``fines.db.alembic_config(url, plate_hash_key=...)``);
without it, a database with such rows is left as it was (ConfigError saying so, before any
change: their plates would be lost); a database without any needs no key. Their ``vin=``
detail is removed. The append-only triggers of 0003 are replaced by triggers that still refuse every UPDATE and every DELETE, except a
DELETE of a row older than the ``before`` of a row in ``registry_audit_purge`` (the controlled
purge path, ``fines.registry_audit.purge_expired``, which holds such a row only inside its own
transaction).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 18:30:00

"""
import re
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import context, op

from fines.db import PLATE_HASH_KEY
from lez.core.errors import ConfigError
from lez.core.plates import plate_hash

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_VIN = re.compile(r" ?vin=\S*")
_PG_GUARD = """
CREATE OR REPLACE FUNCTION registry_audit_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM registry_audit_purge p WHERE OLD.at < p.before
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$ LANGUAGE plpgsql
"""
_SQLITE_NO_DELETE = (
    "CREATE TRIGGER registry_audit_no_delete BEFORE DELETE ON registry_audit "
    "WHEN NOT EXISTS (SELECT 1 FROM registry_audit_purge p WHERE OLD.at < p.before) "
    "BEGIN SELECT RAISE(ABORT, 'registry_audit is append-only'); END"
)
_SQLITE_NO_UPDATE = (
    "CREATE TRIGGER registry_audit_no_update BEFORE UPDATE ON registry_audit "
    "BEGIN SELECT RAISE(ABORT, 'registry_audit is append-only'); END"
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _drop_triggers() -> None:
    if _postgres():
        op.execute("DROP TRIGGER IF EXISTS registry_audit_append_only ON registry_audit")
        op.execute("DROP FUNCTION IF EXISTS lez_append_only()")
        op.execute("DROP TRIGGER IF EXISTS registry_audit_guard ON registry_audit")
        op.execute("DROP FUNCTION IF EXISTS registry_audit_guard()")
    else:
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_delete")


def _plate_hash_key() -> bytes:
    """The key the entry point handed in; ConfigError when there is none and rows have a plate
    to hash."""
    key = context.config.attributes.get(PLATE_HASH_KEY)
    if key:
        return bytes(key)
    rows = op.get_bind().execute(
        sa.text("SELECT count(*) FROM registry_audit WHERE plate IS NOT NULL AND plate <> ''")
    ).scalar_one()
    if not rows:
        return b""
    raise ConfigError(
        f"migration 0005 hashes the plates of {rows} registry audit row(s) written before it "
        "and no plate hash key was handed in: run `lez migrate` with LEZ_PLATE_HASH_KEY set "
        "(the key of the fines stage and the console)"
    )


def _minimise_existing_rows(key: bytes) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, plate, detail FROM registry_audit")).all()
    update = sa.text("UPDATE registry_audit SET plate_hash = :h, detail = :d WHERE id = :i")
    for row_id, plate, detail in rows:
        hashed = plate_hash(key, plate, None) if key and plate else None
        bind.execute(update, {"h": hashed, "d": _VIN.sub("", detail or ""), "i": row_id})


def upgrade() -> None:
    key = _plate_hash_key()
    _drop_triggers()
    op.create_table(
        'registry_audit_purge',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('before', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('registry_audit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plate_hash', sa.String(length=32), nullable=True))
    _minimise_existing_rows(key)
    with op.batch_alter_table('registry_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registry_audit_plate'))
        batch_op.drop_column('plate')
        batch_op.create_index(
            batch_op.f('ix_registry_audit_plate_hash'), ['plate_hash'], unique=False
        )
    if _postgres():
        op.execute(_PG_GUARD)
        op.execute(
            "CREATE TRIGGER registry_audit_guard BEFORE UPDATE OR DELETE ON registry_audit "
            "FOR EACH ROW EXECUTE FUNCTION registry_audit_guard()"
        )
    else:
        op.execute(_SQLITE_NO_UPDATE)
        op.execute(_SQLITE_NO_DELETE)


def downgrade() -> None:
    """Back to 0004's schema; the clear plates do not come back (the column is empty)."""
    _drop_triggers()
    with op.batch_alter_table('registry_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registry_audit_plate_hash'))
        batch_op.drop_column('plate_hash')
        batch_op.add_column(
            sa.Column('plate', sa.String(length=32), nullable=False, server_default='')
        )
        batch_op.create_index(batch_op.f('ix_registry_audit_plate'), ['plate'], unique=False)
    op.drop_table('registry_audit_purge')
    if _postgres():
        op.execute(
            "CREATE OR REPLACE FUNCTION lez_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END "
            "$$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER registry_audit_append_only BEFORE UPDATE OR DELETE ON registry_audit "
            "FOR EACH ROW EXECUTE FUNCTION lez_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER registry_audit_no_{action.lower()} BEFORE {action} "
                "ON registry_audit BEGIN "
                "SELECT RAISE(ABORT, 'registry_audit is append-only'); END"
            )
