"""Key rotation: re-encrypt every stored secret with the first ENCRYPTION_KEY key, so that older keys can go."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy import inspect as sa_inspect
from sqlmodel import SQLModel

from bot.crypto import DecryptError, Vault
from bot.store.engine import Store
from bot.store.models import Connection, OAuthAttempt, SlackMessage

# Every column that holds a value sealed with the Vault. A sealed column missing here keeps its old key after a
# rotation and becomes unreadable once that key is removed from ENCRYPTION_KEY.
SEALED: list[tuple[type[SQLModel], str]] = [
    (Connection, "access_token_sealed"),
    (Connection, "refresh_token_sealed"),
    (OAuthAttempt, "verifier_sealed"),
    (SlackMessage, "secret_sealed"),
]

UNDECRYPTABLE = "undecryptable"


async def rotate_keys(store: Store, vault: Vault, *, batch: int = 500) -> dict[str, int]:
    """Re-encrypt every sealed value not yet under the first key; counts per "table.column" and "undecryptable"."""
    counts: dict[str, int] = {}
    undecryptable = 0
    for model, name in SEALED:
        table = cast(Table, sa_inspect(model).local_table)
        column = table.c[name]
        (key,) = table.primary_key.columns
        label = f"{table.name}.{name}"
        counts[label] = 0
        last: Any = None
        while True:
            query = select(key, column).where(column.is_not(None), column != "").order_by(key).limit(batch)
            if last is not None:
                query = query.where(key > last)
            # One transaction per batch, keyset-paged by primary key: a large table is never held locked whole.
            async with store.writing(), store.engine.begin() as connection:
                rows = (await connection.execute(query)).all()
                for row_key, sealed in rows:
                    if vault.is_current(sealed):
                        continue
                    try:
                        fresh = vault.rotate(sealed)
                    except DecryptError:
                        undecryptable += 1
                        continue
                    # Only if the value is still the one read: a token refresh that wrote a new one meanwhile
                    # (sealed with that process's first key) must not be overwritten with the old token.
                    result = await connection.execute(
                        update(table).where(key == row_key, column == sealed).values({name: fresh})
                    )
                    counts[label] += result.rowcount
            if len(rows) < batch:
                break
            last = rows[-1][0]
    counts[UNDECRYPTABLE] = undecryptable
    return counts
