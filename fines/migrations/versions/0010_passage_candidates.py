"""passages.candidates: the candidate vehicles of a passage, typed

The FIDUS adapter's decision names each registered vehicle the read could also be (another
country its format fits, a look-alike plate) as data besides the review reasons' text
(``lez.core.events.CandidateVehicle``); the review queue shows one row per candidate from
them. NULL on the passages recorded before: the queue reads those from the reasons' text.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('passages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('candidates', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('passages', schema=None) as batch_op:
        batch_op.drop_column('candidates')
