"""Property test: any sequence of appends, rolls, high-watermark moves, truncations, retention,
compaction and reopenings keeps offsets increasing, and reads return exactly what was appended
and not removed (compaction only removes records that a later record with the same key supersedes)."""

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kafka_compat.records.batch import iter_headers
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import validate_records
from kafka_compat.storage import Log, LogConfig, cleaner

NOW = 1_700_000_000_000
CONFIG = LogConfig.from_dict({"segment.bytes": "400", "index.interval.bytes": "64", "cleanup.policy": "compact,delete",
                              "file.delete.delay.ms": "0", "retention.ms": "-1"})
KEYS = st.sampled_from([b"a", b"b", b"c", b"d"])


class LogMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="logprop-"))
        self.log = Log(self.dir / "t-0", CONFIG)
        self.batches: list[list[tuple[int, bytes, bytes]]] = []  # the model: live batches, records in each
        self.start = 0
        self.end = 0
        self.counter = 0

    def teardown(self):
        del self.log
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=5), compressed=st.booleans())
    def append(self, keys, compressed):
        records = []
        for k in keys:
            self.counter += 1
            records.append(Record(k, b"v%d" % self.counter, NOW + self.counter))
        data = build_batch(records, compression=3 if compressed else 0)
        info = self.log.append(validate_records(data, CONFIG, NOW), 0)
        assert info.first_offset == self.end
        self.batches.append([(self.end + i, r.key, r.value) for i, r in enumerate(records)])
        self.end += len(records)

    @rule()
    def roll(self):
        self.log.roll()

    @rule()
    def advance_high_watermark(self):
        self.log.high_watermark = self.log.log_end_offset

    @rule(data=st.data())
    def truncate(self, data):
        hw = self.log.high_watermark
        if hw >= self.end:
            return
        k = data.draw(st.integers(hw, self.end - 1))
        self.log.truncate_to(k)
        straddling = [b[0][0] for b in self.batches if b[0][0] < k <= b[-1][0]]
        self.batches = [b for b in self.batches if b[-1][0] < k]
        self.end = max(min([k] + straddling), self.start)

    @rule(data=st.data())
    def delete_records(self, data):
        hw = self.log.high_watermark
        k = data.draw(st.integers(self.start, hw))
        self.log.advance_log_start_offset(k)
        self.start = max(self.start, k)

    @rule()
    def compact(self):
        cleaner.clean(self.log, NOW, force=True)

    @rule(clean=st.booleans())
    def reopen(self, clean):
        hw, rp = self.log.high_watermark, self.log.recovery_point
        if clean:
            self.log.close()
        cleaned = self.log.clean_offset
        self.log = Log(self.dir / "t-0", CONFIG, recovery_point=rp if clean else 0, log_start_offset=self.start,
                       high_watermark=hw, clean_shutdown=clean)
        self.log.clean_offset = cleaned

    @rule(data=st.data())
    def crash_tearing_the_last_batch(self, data):
        """An unclean stop that leaves the newest (unacknowledged) batch cut short on disk."""
        seg = self.log.active_segment
        if not self.batches or seg.size == 0 or self.batches[-1][0][0] < max(self.log.high_watermark, self.start, 1):
            return
        raw = seg.log_path.read_bytes()
        last_start = [p for p, _ in iter_headers(raw)][-1]
        cut = data.draw(st.integers(last_start, len(raw) - 1))
        hw, path, cleaned = self.log.high_watermark, seg.log_path, self.log.clean_offset
        del self.log, seg
        with open(path, "r+b") as f:
            f.truncate(cut)
        self.end = self.batches.pop()[0][0]
        self.log = Log(self.dir / "t-0", CONFIG, log_start_offset=self.start, high_watermark=hw)
        self.log.clean_offset = cleaned  # the cleaner checkpoint survives a crash

    @invariant()
    def offsets_and_contents_match_the_model(self):
        log = self.log
        assert (log.log_start_offset, log.log_end_offset) == (self.start, self.end)
        data = log.read_bytes(self.start, 1 << 30)
        headers = [h for _, h in iter_headers(data)]
        assert all(a.last_offset < b.base_offset for a, b in zip(headers, headers[1:]))
        got = [(r.offset, r.key, r.value) for p, h in iter_headers(data) for r in iter_records(data, p, h)
               if r.offset >= self.start]
        model = [r for b in self.batches for r in b if r[0] >= self.start]
        assert [o for o, *_ in got] == sorted({o for o, *_ in got})
        assert set(got) <= set(model)
        latest = {}
        for off, key, value in model:
            latest[key] = (off, key, value)
        assert set(latest.values()) <= set(got)
        assert [r for r in got if r[0] >= log.clean_offset] == [r for r in model if r[0] >= log.clean_offset]


LogMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
test_log_behaves_like_its_model = LogMachine.TestCase
