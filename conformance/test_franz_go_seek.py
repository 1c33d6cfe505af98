"""franz-go seeking without a group, on records it produced (zstd, five a ProduceSync, with
CreateTimes), so lookups and reads land inside compressed batches: consume from an explicit offset
(ConsumePartitions), SetOffsets back on the running consumer, kadm's ListStart/EndOffsets,
ListMaxTimestampOffsets and ListOffsetsAfterMilli (exact hit, between two records, before all;
after all kadm answers the end offset), consume from a time (Offset.AfterMilli), and an offset
past the end surfacing OFFSET_OUT_OF_RANGE as a fetch error (NoResetOffset)."""

import pytest

from conformance.golang import Session, check_error, go_produce, gots
from conformance.support import check_partition_order, create_topic, now_ms, sample_records
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)


def test_seek_by_offset_and_timestamp(broker, unique):
    topic = create_topic(broker.bootstrap, unique("fgo-seek"), partitions=2)
    ts0 = now_ms() - 600_000
    records = sample_records(20, partitions=2, ts0=ts0)  # partition 0: ts0, ts0+2s, ...; partition 1: ts0+1s, ...
    go_produce("franz-go", broker.bootstrap, topic, records, "--codec=zstd", "--chunk=5")
    p0, p1 = [r for r in records if r.partition == 0], [r for r in records if r.partition == 1]

    with Session("franz-go", "admin", broker.bootstrap) as admin, \
            Session("franz-go", "seeker", broker.bootstrap, topic) as seeker:
        def listed(spec) -> dict:
            return {int(p): o for p, o in admin.ask("list_offsets", name=topic, spec=str(spec))["offsets"].items()}

        assert (listed("earliest"), listed("latest")) == ({0: 0, 1: 0}, {0: 10, 1: 10})
        assert listed("max") == {0: 9, 1: 9}  # ListOffsets v7's MAX_TIMESTAMP: the latest CreateTime's record

        seeker.ask("assign", offsets={"0": 7})
        check_partition_order(p0[7:], gots(seeker.ask("poll", n=3)["records"]), first_offsets={0: 7})
        seeker.ask("seek", offsets={"0": 2})
        check_partition_order(p0[2:5], gots(seeker.ask("poll", n=3)["records"]), first_offsets={0: 2})

        assert listed(ts0 + 6000) == {0: 3, 1: 3}  # partition 0: exactly ts0+6s; 1: ts0+7s
        assert listed(ts0 + 6500) == {0: 4, 1: 3}
        assert listed(ts0 - 60_000) == {0: 0, 1: 0}
        assert listed(ts0 + 3_600_000) == {0: 10, 1: 10}  # Kafka answers -1: no record that late

        seeker.ask("assign", times={"0": ts0 + 6500, "1": ts0 + 6500})
        check_partition_order(p0[4:] + p1[3:], gots(seeker.ask("poll", n=13)["records"]), first_offsets={0: 4, 1: 3})

        seeker.ask("assign", offsets={"0": 50})
        check_error(seeker.ask("poll", check=False, n=1), ErrorCode.OFFSET_OUT_OF_RANGE)
