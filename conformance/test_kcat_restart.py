"""kcat across a broker restart: records kcat sent with acks=all and idempotence (kcat exits 0 only
once every delivery is acknowledged) are all there after a graceful stop (SIGTERM) and after a
crash (SIGKILL right after kcat exits), and kcat appends after them."""

import pytest

from conformance.support import check_partition_order, create_topic, kcat_produce, kcat_read, kcat_records

pytestmark = pytest.mark.timeout(90)
ACKS_ALL = ("-X", "acks=all", "-X", "enable.idempotence=true")


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_acknowledged_records_survive_a_restart(broker_factory, unique, clean):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("kcat-restart"), partitions=2)
    records = kcat_records(40, partitions=2)
    kcat_produce(b.bootstrap, topic, records, *ACKS_ALL)

    b.restart(clean=clean)

    check_partition_order(records, kcat_read(b.bootstrap, topic, {0: 0, 1: 0}, 40))
    more = kcat_records(4, partitions=2, tag="after")
    kcat_produce(b.bootstrap, topic, more, *ACKS_ALL)
    check_partition_order(more, kcat_read(b.bootstrap, topic, {0: 20, 1: 20}, 4), first_offsets={0: 20, 1: 20})
