"""The test server itself: findAndModify is atomic, as FireWorks' id counters need."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pymongo


def test_concurrent_find_and_modify_hands_out_unique_ids(mongo_server):
    counter = pymongo.MongoClient(mongo_server.uri("atomic")).get_default_database().ids
    counter.delete_many({})
    counter.insert_one({"next_launch_id": 1})

    def take(n: int) -> list[int]:
        client = pymongo.MongoClient(mongo_server.uri("atomic"))  # one connection per worker
        coll = client.get_default_database().ids
        got = [
            coll.find_one_and_update({}, {"$inc": {"next_launch_id": 1}})["next_launch_id"] for _ in range(n)
        ]
        client.close()
        return got

    with ThreadPoolExecutor(4) as pool:
        ids = [i for chunk in pool.map(take, [150] * 4) for i in chunk]
    assert sorted(ids) == list(range(1, 601))
