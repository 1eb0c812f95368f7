"""notice policy: notices that stand, re-judged offences, evidence retention

An offence held back by a notice records which one (``offence_candidates.held_by``, state
``held``), so that it is judged again when that notice no longer stands (cancelled, rejected
in review, or corrected to another vehicle). A notice records when it was closed
(``notices.closed_at``): the evidence of closed notices is purged a configured period later.

Existing rows: an offence dropped "within N months of notice X" or "already warned (X)"
becomes ``held`` by X; a closed notice gets the time of its last history entry into its
closed status.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 18:30:00

"""
import re
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_HELD = re.compile(r"(?:within \d+ months of notice |already warned \()([0-9a-fA-F-]{36})")


def _backfill() -> None:
    conn = op.get_bind()
    dropped = conn.execute(
        sa.text("SELECT passage_id, outcome FROM offence_candidates WHERE state = 'dropped'")
    ).all()
    for passage_id, outcome in dropped:
        match = _HELD.search(outcome or "")
        if match is not None:
            conn.execute(
                sa.text(
                    "UPDATE offence_candidates SET state = 'held', held_by = :notice "
                    "WHERE passage_id = :pid"
                ),
                {"notice": match.group(1), "pid": passage_id},
            )
    conn.execute(
        sa.text(
            "UPDATE notices SET closed_at = (SELECT MAX(h.at) FROM notice_history h "
            "WHERE h.notice_id = notices.notice_id AND h.to_status = notices.status) "
            "WHERE status IN ('paid', 'cancelled')"
        )
    )


def upgrade() -> None:
    with op.batch_alter_table('offence_candidates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_by', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_offence_candidates_held_by'), ['held_by'], unique=False)
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_notices_closed_at'), ['closed_at'], unique=False)
    _backfill()


def downgrade() -> None:
    op.execute(
        "UPDATE offence_candidates SET state = 'dropped' WHERE state = 'held'"
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_closed_at'))
        batch_op.drop_column('closed_at')
    with op.batch_alter_table('offence_candidates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offence_candidates_held_by'))
        batch_op.drop_column('held_by')
