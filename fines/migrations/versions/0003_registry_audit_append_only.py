"""registry audit trail is append-only (database triggers refuse UPDATE and DELETE)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:20:00

"""
from typing import Sequence, Union

from alembic import op


revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION lez_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
            END
            $$ LANGUAGE plpgsql
            """
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


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS registry_audit_append_only ON registry_audit")
        op.execute("DROP FUNCTION IF EXISTS lez_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_delete")
