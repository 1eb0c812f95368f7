"""notices and offences are kept per vehicle: the registry's vehicle, not the plate text

``offence_candidates.vehicle_key`` and ``notices.vehicle_key`` name the vehicle the latency
and the one-warning rule are kept per (``lez.core.notices.vehicle_key``): ``VIN:<vin>``
where the registry gives a VIN, else ``<country>:<plate>``.

Existing rows: the key is derived from the vehicle stored with the notice (else with the
passage of the offence) and the plate.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00

"""
import json
from typing import Any, Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ('offence_candidates', 'notices')


def _key(vehicle: Any, plate_norm: str, country: str) -> str:
    """As ``lez.core.notices.vehicle_key`` on the day of this migration (kept here as is)."""
    if isinstance(vehicle, str):
        try:
            vehicle = json.loads(vehicle)
        except ValueError:
            vehicle = None
    vin = str((vehicle or {}).get('vin') or '').strip().upper() if isinstance(vehicle, dict) else ''
    if vin:
        return f'VIN:{vin}'
    return f'{(country or "").strip().upper()}:{plate_norm or ""}'


def _backfill() -> None:
    conn = op.get_bind()
    notices = conn.execute(
        sa.text(
            'SELECT n.notice_id, n.vehicle, p.vehicle, n.plate_norm, n.country FROM notices n '
            'LEFT JOIN passages p ON p.passage_id = n.passage_id'
        )
    ).all()
    for notice_id, vehicle, passage_vehicle, plate_norm, country in notices:
        conn.execute(
            sa.text('UPDATE notices SET vehicle_key = :key WHERE notice_id = :id'),
            {'key': _key(vehicle or passage_vehicle, plate_norm, country), 'id': notice_id},
        )
    candidates = conn.execute(
        sa.text(
            'SELECT c.passage_id, p.vehicle, c.plate_norm, c.country FROM offence_candidates c '
            'JOIN passages p ON p.passage_id = c.passage_id'
        )
    ).all()
    for passage_id, vehicle, plate_norm, country in candidates:
        conn.execute(
            sa.text('UPDATE offence_candidates SET vehicle_key = :key WHERE passage_id = :id'),
            {'key': _key(vehicle, plate_norm, country), 'id': passage_id},
        )


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column('vehicle_key', sa.String(length=64), nullable=False, server_default='')
            )
            batch_op.create_index(batch_op.f(f'ix_{table}_vehicle_key'), ['vehicle_key'], unique=False)
    _backfill()


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_vehicle_key'))
            batch_op.drop_column('vehicle_key')
