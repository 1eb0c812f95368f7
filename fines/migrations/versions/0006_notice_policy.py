"""notice policy: notices that stand, re-judged offences (placeholder: filled in by the change that needs it)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 18:30:00

"""
from typing import Sequence, Union


revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
