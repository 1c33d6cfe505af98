"""meta.properties: written by formatting, read back at every start."""

from kafka_compat.storage.meta_properties import FILE_NAME, read_meta_properties, write_meta_properties


def test_a_formatted_log_dir_reads_back_its_node_cluster_and_directory(tmp_path):
    write_meta_properties(tmp_path / "logs", 3, "cluster-aaaaaaaaaaaaaa", "dir-bbbbbbbbbbbbbbbbbbbbb")
    assert read_meta_properties(tmp_path / "logs") == {
        "node.id": "3", "directory.id": "dir-bbbbbbbbbbbbbbbbbbbbb", "version": "1",
        "cluster.id": "cluster-aaaaaaaaaaaaaa"}
    assert [p.name for p in (tmp_path / "logs").iterdir()] == [FILE_NAME]  # no temporary file left


def test_an_unformatted_log_dir_has_none(tmp_path):
    assert read_meta_properties(tmp_path) is None
