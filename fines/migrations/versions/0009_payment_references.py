"""payment_references: a Belgian structured payment reference per notice

Each notice gets ``+++ddd/dddd/ddddd+++``: 10 digits (the row's autoincrement ``number``) and
their check modulo 97 (``fines.structured_ref``); ``digits`` is unique, so a payment file is
matched back to exactly one notice. Existing notices are given theirs, oldest first.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _digits(number: int) -> str:
    """As ``fines.structured_ref.reference_digits`` on the day of this migration."""
    return f'{number:010d}{(number % 97 or 97):02d}'


def upgrade() -> None:
    refs = op.create_table(
        'payment_references',
        sa.Column('number', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            'notice_id', sa.String(length=40), sa.ForeignKey('notices.notice_id'), nullable=False
        ),
        sa.Column('digits', sa.String(length=12), nullable=True),
        sa.UniqueConstraint('notice_id', name='uq_payment_references_notice_id'),
        sa.UniqueConstraint('digits', name='uq_payment_references_digits'),
    )
    conn = op.get_bind()
    notices = conn.execute(
        sa.text('SELECT notice_id FROM notices ORDER BY created_at, notice_id')
    ).scalars().all()
    for number, notice_id in enumerate(notices, start=1):
        conn.execute(
            refs.insert().values(number=number, notice_id=notice_id, digits=_digits(number))
        )
    if notices and conn.dialect.name == 'postgresql':
        conn.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('payment_references', 'number'), :n)"
            ),
            {'n': len(notices)},
        )


def downgrade() -> None:
    op.drop_table('payment_references')
