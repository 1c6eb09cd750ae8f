"""Signed ledger checkpoints, anchored outside the store (in the spirit of Certificate Transparency).

The ledger is a hash chain, so the hash of entry n commits to every entry before it. A checkpoint is that
pair -- size n and head hash -- with a timestamp, signed with the store's Ed25519 key (created with the first
checkpoint in `keys/ledger-ed25519.pem`, 0600). Checkpoints are left where the store's owner cannot quietly
take them back: as a tag on the MLflow run of every audit and on the model version at each audit and sign-off,
in every exported document's evidence manifest, and in any file an auditor keeps (`aiaudit ledger checkpoint`).
Against one, truncation below its size, a rewrite of an earlier entry with the chain rehashed to the end, and an
entry forged into the covered range are all detected, with or without `records.head`; a checkpoint altered by
hand fails its signature. What it cannot show is what happened after it was made: see docs/security.md.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ValidationError

from .records import Records, now_iso

KEY_FILE = Path("keys") / "ledger-ed25519.pem"
TAG = "aiaudit.ledger_checkpoint"


class Checkpoint(BaseModel):
    size: int
    head: str
    ts: str
    key_id: str
    public_key: str  # raw Ed25519 public key, base64: a holder can check the signature without the store
    signature: str

    def message(self) -> bytes:
        return json.dumps([self.size, self.head, self.ts, self.key_id], separators=(",", ":")).encode()

    def dumps(self) -> str:
        return self.model_dump_json()


def _key(home: Path) -> Any:
    """The store's signing key, created on first use (directory 0700, file 0600, written atomically)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    path = home / KEY_FILE
    if path.is_file():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, path)  # a concurrent first use keeps whichever key landed first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _raw(public: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def store_key_id(home: Path) -> str | None:
    """The id of the store's key (None before the first checkpoint)."""
    if not (home / KEY_FILE).is_file():
        return None
    return hashlib.sha256(_raw(_key(home).public_key())).hexdigest()[:16]


def make(records: Records, home: Path) -> Checkpoint | None:
    """A signed checkpoint of the ledger as it is now (None while it is empty)."""
    with records.connect() as con:
        last = con.execute("SELECT seq, entry_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    if last is None:
        return None
    key = _key(home)
    raw = _raw(key.public_key())
    draft = Checkpoint(size=last["seq"], head=last["entry_hash"], ts=now_iso(),
                       key_id=hashlib.sha256(raw).hexdigest()[:16], public_key=base64.b64encode(raw).decode(),
                       signature="")
    return draft.model_copy(update={"signature": base64.b64encode(key.sign(draft.message())).decode()})


def parse(value: str | dict[str, Any]) -> Checkpoint | None:
    try:
        return Checkpoint.model_validate_json(value) if isinstance(value, str) else Checkpoint.model_validate(value)
    except ValidationError:
        return None


def check(cp: Checkpoint, records: Records, trusted_key_id: str | None) -> str | None:
    """Why the ledger does not extend this checkpoint, or None when it does."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    try:
        raw = base64.b64decode(cp.public_key)
        if hashlib.sha256(raw).hexdigest()[:16] != cp.key_id:
            return f"checkpoint of {cp.ts}: its public key does not match its key id"
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(cp.signature), cp.message())
    except (InvalidSignature, ValueError):
        return f"checkpoint of {cp.ts} (size {cp.size}): the signature does not verify (altered or forged)"
    if trusted_key_id is not None and cp.key_id != trusted_key_id:
        return f"checkpoint of {cp.ts} was signed by key {cp.key_id}, not this store's key {trusted_key_id}"
    with records.connect() as con:
        row = con.execute("SELECT entry_hash FROM ledger WHERE seq = ?", (cp.size,)).fetchone()
        count = con.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
    if row is None:
        return f"checkpoint of {cp.ts} covers {cp.size} entries; the ledger has {count}: truncated"
    if row["entry_hash"] != cp.head:
        return (f"entry {cp.size} differs from the checkpoint of {cp.ts}: the ledger up to it was rewritten "
                "(and rehashed)")
    return None


def anchored(registry: Any) -> Iterator[tuple[str, Checkpoint | None]]:
    """Every checkpoint left in MLflow (runs and model versions), with where it was found."""
    client = registry.client
    for exp in client.search_experiments():
        token = None
        while True:
            runs = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            for run in runs:
                if TAG in run.data.tags:
                    yield f"run {run.info.run_id}", parse(run.data.tags[TAG])
            token = runs.token
            if not token:
                break
    for mv in client.search_model_versions(max_results=10_000):
        if TAG in (mv.tags or {}):
            yield f"models:/{mv.name}/{mv.version}", parse(mv.tags[TAG])


def ledger_items(manifest: dict[str, Any], records: Records, home: Path) -> list[tuple[str, bool, str]]:
    """What `aiaudit verify` reports about the ledger behind a document: the chain, then the ledger against the
    signed checkpoint in the document's manifest."""
    chain = records.verify()
    items = [("ledger", chain.ok, f"{chain.entries} entries, chain intact" if chain.ok else chain.reason or "broken")]
    if "ledger_checkpoint" in manifest:
        cp = parse(manifest["ledger_checkpoint"])
        problem = "unreadable" if cp is None else check(cp, records, store_key_id(home))
        items.append(("ledger checkpoint", problem is None, problem or f"the ledger extends the signed checkpoint of "
                                                                       f"{cp.ts} ({cp.size} entries, key {cp.key_id})"))
    return items
