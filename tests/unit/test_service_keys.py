"""Redis keys: namespaced, and every key of one object in the same cluster slot."""

from __future__ import annotations

from redis.crc import key_slot

from service.keys import PREFIX, object_keys


def test_object_keys_share_one_cluster_slot() -> None:
    for oid in ("GOTO_IRAS18547+1254", "ZTF21abcdefg", "a", "x:y.z-1"):
        keys = object_keys(oid).all()
        assert len(set(keys)) == 4
        assert all(k.startswith(f"{PREFIX}:{{o:{oid}}}:") for k in keys)
        assert len({key_slot(k.encode()) for k in keys}) == 1


def test_different_objects_spread_over_slots() -> None:
    slots = {key_slot(object_keys(f"GOTO_{i}").state.encode()) for i in range(200)}
    assert len(slots) > 150
