from __future__ import annotations

import pytest

from migrator.errors import BadInputError
from migrator.threadlist import parse_shard, read_thread_list


def write(tmp_path, name: str, data: bytes | str):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_plain_list_tolerates_bom_blanks_spaces_and_duplicates(tmp_path):
    path = write(tmp_path, "ids.txt", "\ufeffthread_a1\n\n  thread_b2  \nthread_a1\n")
    assert [e.thread_id for e in read_thread_list(path)] == ["thread_a1", "thread_b2"]


def test_csv_with_thread_id_column_keeps_other_columns_as_metadata(tmp_path):
    path = write(tmp_path, "ids.csv", "user_id,thread_id\nu1,thread_x\nu2,thread_y\n")
    entries = read_thread_list(path)
    assert [(e.thread_id, e.extra) for e in entries] == [
        ("thread_x", {"user_id": "u1"}),
        ("thread_y", {"user_id": "u2"}),
    ]


def test_jsonl_fields_become_metadata(tmp_path):
    path = write(tmp_path, "ids.jsonl", '{"thread_id": "thread_1", "user_id": "u9", "plan": "pro"}\n')
    (entry,) = read_thread_list(path)
    assert entry.thread_id == "thread_1" and entry.extra == {"user_id": "u9", "plan": "pro"}


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    path = write(tmp_path, "ids.txt", "thread_ok\nnot an id\nthread_ok2\nmsg_123\n")
    with pytest.raises(BadInputError) as info:
        read_thread_list(path)
    assert [p.split(": ")[0] for p in info.value.problems] == [f"{path}:2", f"{path}:4"]


def test_csv_without_the_column_is_refused(tmp_path):
    path = write(tmp_path, "ids.csv", "user,thread\nu1,thread_x\n")
    with pytest.raises(BadInputError) as info:
        read_thread_list(path)
    assert info.value.problems == [f"{path}:1: CSV without a thread_id column (columns: user, thread)"]


def test_binary_and_missing_files_are_refused(tmp_path):
    with pytest.raises(BadInputError, match="binary"):
        read_thread_list(write(tmp_path, "x.bin", b"thread_a\x00\x01"))
    with pytest.raises(BadInputError, match="no such file"):
        read_thread_list(tmp_path / "nope.txt")


def test_shards_split_ids_deterministically_and_completely(tmp_path):
    ids = [f"thread_{i:05d}" for i in range(1000)]
    path = write(tmp_path, "ids.txt", "\n".join(ids))
    slices = [{e.thread_id for e in read_thread_list(path, parse_shard(f"{k}/4"))} for k in range(1, 5)]
    assert set().union(*slices) == set(ids)
    assert sum(len(s) for s in slices) == len(ids)
    assert all(150 < len(s) < 350 for s in slices)


@pytest.mark.parametrize("text", ["0/4", "5/4", "a/b", "3"])
def test_bad_shard_specs_are_refused(text):
    with pytest.raises(BadInputError):
        parse_shard(text)


def test_a_thread_list_is_checked_whole_then_streamed_and_the_work_list_keeps_the_first_duplicate(tmp_path):
    from migrator.archive import Archive
    from migrator.threadlist import ThreadList

    path = write(
        tmp_path, "ids.jsonl", '{"thread_id": "thread_a", "u": 1}\n{"thread_id": "thread_a", "u": 2}\n'
    )
    entries = ThreadList(path)
    assert list(entries) == list(entries) == [("thread_a", {"u": 1}), ("thread_a", {"u": 2})]
    with Archive.create(tmp_path / "a.db") as archive:
        assert archive.work.add((e.thread_id, e.extra) for e in entries) == 1
        assert archive.work.extra("thread_a") == {"u": 1}  # first wins, as read_thread_list says
    entries.close()
    with pytest.raises(BadInputError, match="1 unusable"):
        ThreadList(write(tmp_path, "bad.txt", "thread_ok\n" * 3 + "nope\n"))


def test_a_list_longer_than_a_read_block_reports_the_line_and_byte_of_its_fault(tmp_path):
    # The plain list is read in blocks of 8,192 lines: what lies past the first block is numbered and
    # placed exactly as when it was read a line at a time.
    ids = [f"thread_{i:024d}" for i in range(20_000)]
    text = "\n".join(ids[:12_000] + ["not an id"] + ids[12_000:]) + "\n"
    with pytest.raises(BadInputError) as caught:
        read_thread_list(write(tmp_path, "ids.txt", text))
    assert caught.value.problems == ["{}:12001: not a thread id: 'not an id'".format(tmp_path / "ids.txt")]
    raw = ("\n".join(ids) + "\n").encode()
    at = raw.index(ids[15_000].encode()) + 3
    with pytest.raises(BadInputError, match=f"not UTF-8 text \\(invalid start byte at byte {at}\\)"):
        read_thread_list(write(tmp_path, "bad.txt", raw[:at] + b"\xff" + raw[at + 1 :]))
    with pytest.raises(BadInputError, match="binary data"):
        read_thread_list(write(tmp_path, "nul.txt", raw[:at] + b"\x00" + raw[at + 1 :]))
    assert [e.thread_id for e in read_thread_list(write(tmp_path, "ok.txt", raw))] == ids
